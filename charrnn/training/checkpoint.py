"""Checkpoints: self-contained, safe to open, written atomically; `Checkpoint` is the schema.

A checkpoint is one `torch.save` file holding only tensors, numbers, strings,
bytes, lists and dicts. `Checkpoint` (below) is its one reader and writer: the
trainer's own fields (weights, the model / data / training configs, optimizer
state, step and data position, RNG states, the best validation loss and the last
evaluation), what the task adds (its `TaskState`, tasks/state.py: for language
models the tokenizer and the carried hidden state), the format version and the
migrations from every earlier format, and the `Summary` that `charrnn info`,
`charrnn runs` and `Model.info` print. No other module reads the file's keys
(tests/test_package.py checks it).

Formats: 1 kept the task's keys beside the trainer's at the top level; 2 keeps
them in one "task" section; 3 (now) is 2, but a classifier's option left at its
default means today's default (in a format-2 file, the default of its day). `load`
migrates an older file in memory, step by step (`MIGRATIONS`), so every file an
earlier charrnn wrote loads, samples the same text and resumes (tests/data, tests/test_checkpoint.py).

It is opened with `torch.load(weights_only=True)`, so opening a file never runs
code, and it is written to a temporary file in the same folder, fsynced and
renamed over the old one, so a kill at any moment leaves either the old
checkpoint or the new one, whole.

A run folder holds `last.pt`, `best.pt` and `metrics.jsonl`.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from ..data.labels import LabelSet
from ..data.tokenizer import Tokenizer, tokenizer_from_state
from ..errors import CharRNNError, CheckpointError, ConfigError
from ..runtime.hardware import precision_name
from ..tasks import task_spec
from ..tasks.state import TaskState
from .summary import Summary, summarize
from . import space

FORMAT = "charrnn-checkpoint"
VERSION = 4
LAST, BEST = "last.pt", "best.pt"
REQUIRED = ("model_config", "model", "step", "task")  # after migration
TRAINER_KEYS = ("model_config", "data_config", "train_config", "trained_on", "trained_precision", "model", "frozen",
                "optimizer", "step", "epoch", "batch_in_epoch", "elapsed_s", "rng", "best_val_loss", "best_val_bpc",
                "last_eval")  # fmt: skip


def _v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """Format 1 kept the task's keys (tokenizer, carried_state, labels, corpus, ...) at the top level."""
    keep = {"format", "version", *TRAINER_KEYS}
    return {**{k: v for k, v in raw.items() if k in keep}, "task": {k: v for k, v in raw.items() if k not in keep}, "version": 2}


# --task classify's defaults as format 2 knew them, for the options whose default has changed since
V2_CLASSIFY_DEFAULTS = {"pool": "last"}


def _v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
    """A format-2 classifier that left an option at its default took the default of its day
    (--pool last); issue 24 changed it, so the old value is written in."""
    cfg = raw.get("model_config")
    if isinstance(cfg, dict) and cfg.get("task") == "classify":
        raw = {**raw, "model_config": {**cfg, "options": {**V2_CLASSIFY_DEFAULTS, **(cfg.get("options") or {})}}}
    return {**raw, "version": 3}


def _v3_to_v4(raw: dict[str, Any]) -> dict[str, Any]:
    """A format-3 binary Tree-LSTM read each operator's arguments as an open fold; issue 24
    closed the fold with a JOIN node, so such a model is told to read trees as it was trained."""
    cfg = raw.get("model_config")
    if isinstance(cfg, dict) and cfg.get("cell") == "bintreelstm":
        raw = {**raw, "model_config": {**cfg, "options": {"open_folds": True, **(cfg.get("options") or {})}}}
    return {**raw, "version": 4}


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}  # format n -> format n + 1


@dataclass
class Checkpoint:
    """One checkpoint, typed. `load` reads one (migrating older formats), `save` writes one."""

    model_config: ModelConfig
    weights: dict[str, torch.Tensor]  # the model's state_dict, on the CPU
    task: TaskState  # what the run's task adds (its own subclass)
    step: int
    data_config: DataConfig = field(default_factory=DataConfig)
    train_config: TrainConfig = field(default_factory=TrainConfig)
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_s: float = 0.0
    optimizer: dict[str, Any] | None = None
    rng: dict[str, torch.Tensor] = field(default_factory=dict)  # "torch", and "cuda" for a run on a GPU
    best_val_loss: float | None = None
    best_val_bpc: float | None = None
    last_eval: dict[str, Any] | None = None  # the last evaluation's metrics.jsonl record (telemetry.EvalEvent.record)
    trained_on: str | None = None  # the device
    trained_precision: str | None = None  # what --precision auto chose
    frozen: list[str] = field(default_factory=list)  # parameters that do not train (a reservoir's weights)
    version: int = VERSION  # the format of the file it was read from

    # ------------------------------------------------------------- the file

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION,
            "model_config": to_dict(self.model_config), "data_config": to_dict(self.data_config),
            "train_config": to_dict(self.train_config), "trained_on": self.trained_on,
            "trained_precision": self.trained_precision, "model": self.weights, "frozen": list(self.frozen),
            "optimizer": self.optimizer, "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "elapsed_s": self.elapsed_s, "rng": self.rng, "best_val_loss": self.best_val_loss,
            "best_val_bpc": self.best_val_bpc, "last_eval": self.last_eval, "task": self.task.to_dict(),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, raw: Any, path: Path | str = "checkpoint") -> Checkpoint:
        """A checkpoint from what `torch.load` returned: checked, migrated to this format, typed."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CheckpointError(f"{path} is a PyTorch file but not a charrnn checkpoint.")
        version = raw.get("version")
        if isinstance(version, int) and version < min(MIGRATIONS):
            raise CheckpointError(f"{path} is damaged: checkpoint format {version} is not one charrnn ever wrote.")
        if not isinstance(version, int) or version > VERSION:
            raise CheckpointError(
                f"{path} was written by a newer charrnn (checkpoint format {version}; this one reads up to {VERSION}). Upgrade charrnn."
            )
        d = raw
        for v in range(version, VERSION):
            d = MIGRATIONS[v](d)
        missing = [k for k in REQUIRED if k not in d] + (["tokenizer"] if "tokenizer" not in d.get("task", {}) else [])
        if missing:
            raise CheckpointError(f"{path} is damaged: it lacks {', '.join(missing)}.")
        try:
            model_cfg = from_dict(ModelConfig, d["model_config"])
            state_type = task_spec(model_cfg.task).load().State
            return cls(
                model_config=model_cfg, data_config=from_dict(DataConfig, d.get("data_config") or {}),
                train_config=from_dict(TrainConfig, d.get("train_config") or {}), weights=d["model"],
                task=state_type.from_dict(d["task"]), step=int(d["step"]), epoch=int(d.get("epoch") or 0),
                batch_in_epoch=int(d.get("batch_in_epoch") or 0), elapsed_s=float(d.get("elapsed_s") or 0.0),
                optimizer=d.get("optimizer"), rng=d.get("rng") or {}, best_val_loss=d.get("best_val_loss"),
                best_val_bpc=d.get("best_val_bpc"), last_eval=d.get("last_eval"), trained_on=d.get("trained_on"),
                trained_precision=d.get("trained_precision"), frozen=list(d.get("frozen") or ()), version=version,
            )  # fmt: skip
        except CharRNNError as e:
            raise CheckpointError(f"{path} holds a run this charrnn cannot read: {e}") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{path} is damaged ({str(e).splitlines()[0][:120]}).") from None

    # ---------------------------------------------------------- what it holds

    @property
    def task_name(self) -> str:
        return self.model_config.task

    def tokenizer(self) -> Tokenizer:
        return tokenizer_from_state(self.task.tokenizer)

    def labels(self) -> LabelSet | None:
        """The LabelSet its model tells apart or is conditioned on (None: none)."""
        return self.task.label_set()

    def summary(self, path: Path | str) -> Summary:
        """What `charrnn info` and `charrnn runs` print (no model is built)."""
        return summarize(self, path)


def save(path: Path, ck: Checkpoint) -> None:
    """Write `ck` to `path` atomically. Refuses non-finite weights."""
    for name, t in ck.weights.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"refusing to save a checkpoint whose weight {name} is not finite.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = ck.to_dict()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, (OSError, RuntimeError)):
            reason = space.disk_full(e, path.parent, space.nbytes(payload) + space.OVERHEAD, resumable=path.exists())
            reason = reason or (e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0])
            kept = " The previous checkpoint is intact." if path.exists() else ""
            raise CheckpointError(f"could not write checkpoint {path}: {reason}.{kept}") from None
        raise


def copy(src: Path, dst: Path) -> None:
    """Make `dst` a second name for the finished file `src`, atomically: a hard link
    renamed into place (a later save of `src` writes a new file, so `dst` keeps
    this one). Where links are not allowed, a copy."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        os.unlink(tmp)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        _fsync_dir(dst.parent)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        reason = space.disk_full(e, dst.parent, src.stat().st_size) or e.strerror or e
        raise CheckpointError(f"could not write checkpoint {dst}: {reason}.") from None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: Path | str, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Open a checkpoint without executing anything; clear errors for everything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}.")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; the error below says it plainly
            warnings.simplefilter("ignore")
            raw = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} is not a charrnn checkpoint: it holds Python objects that charrnn will not load (opening it could run code)."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is damaged or not a checkpoint ({reason[:120]}).") from None
    return Checkpoint.from_dict(raw, path)


def of_trainer(t: Any, task: TaskState) -> Checkpoint:
    """What a checkpoint of Trainer `t` holds: the trainer's own fields and its task's section."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if t.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(t.device)
    return Checkpoint(
        model_config=t.model_cfg, data_config=t.data_cfg, train_config=t.cfg, trained_on=str(t.device),
        trained_precision=precision_name(t.amp), weights={k: v.detach().cpu() for k, v in t.model.state_dict().items()},
        frozen=[n for n, p in t.model.named_parameters() if not p.requires_grad], optimizer=t.optimizer.state_dict(),
        step=t.step, epoch=t.epoch, batch_in_epoch=t.batch_i, elapsed_s=t._elapsed(), rng=rng,
        best_val_loss=t.best_val, best_val_bpc=t.best_bpc, last_eval=t.last_eval, task=task,
    )  # fmt: skip


def restore(t: Any, ck: Checkpoint) -> None:
    """Put Trainer `t` where the checkpoint left off: weights, optimizer, position, RNG."""
    t.model.load_state_dict(ck.weights)
    try:
        t.optimizer.load_state_dict(ck.optimizer)
    except (ValueError, KeyError, RuntimeError, TypeError, AttributeError) as e:
        raise CharRNNError(f"the checkpoint's optimizer state does not fit this model ({e}).") from None
    t.step = ck.step
    t.epoch, t.batch_i = t.task.restore(ck.task, ck.epoch, ck.batch_in_epoch)
    t.elapsed0 = ck.elapsed_s
    t.best_val, t.best_bpc, t.last_eval = ck.best_val_loss, ck.best_val_bpc, ck.last_eval
    if t.dist.active:
        torch.manual_seed(t.cfg.seed + 7919 * t.dist.rank + t.step)
    elif "torch" in ck.rng:
        torch.set_rng_state(ck.rng["torch"])
    if "cuda" in ck.rng and t.device.type == "cuda" and not t.dist.active:
        torch.cuda.set_rng_state(ck.rng["cuda"], t.device)


def model_from(ck: Checkpoint, path: Path | str = "checkpoint") -> tuple[torch.nn.Module, Tokenizer]:
    """The model (on the CPU, in eval mode) and tokenizer a checkpoint holds."""
    cfg = ck.model_config
    tok = ck.tokenizer()
    try:
        model = task_spec(cfg.task).load().model_for(cfg)
        model.load_state_dict(ck.weights)
    except CharRNNError as e:
        raise CheckpointError(f"{path} holds a model this charrnn cannot build: {e}") from None
    except (RuntimeError, TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path} is damaged: its weights do not fit its model ({str(e).splitlines()[0][:120]}).") from None
    if tok.vocab_size != cfg.vocab_size:
        raise CheckpointError(f"{path} is damaged: its tokenizer has {tok.vocab_size} tokens, its model {cfg.vocab_size}.")
    return model.eval(), tok


def require_task(ck: Checkpoint, path: Path | str, task: str, why: str) -> None:
    """A ConfigError unless the checkpoint holds a run of `task`; `why` says what needs one and what to use instead."""
    if ck.task_name != task:
        raise ConfigError(f"{path} holds a {ck.task_name} run; {why}")


def find(target: str | Path | None, root: Path | str = "checkpoints", prefer: str = BEST) -> Path:
    """A checkpoint file from a file, a run folder (its best.pt, else last.pt,
    or the other way round) or nothing (the newest run under `root`)."""
    other = LAST if prefer == BEST else BEST
    if target is None:
        root = Path(root)
        runs = [p for p in root.glob("*/") if (p / LAST).is_file() or (p / BEST).is_file()] if root.is_dir() else []
        if not runs:
            raise CheckpointError(f"no runs under {root}/; train one with `charrnn train`, or name a checkpoint.")
        target = max(runs, key=lambda p: max(f.stat().st_mtime for f in (p / LAST, p / BEST) if f.is_file()))
    p = Path(target)
    if p.is_dir():
        for name in (prefer, other):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p} holds no checkpoint ({LAST} or {BEST}).")
    if not p.exists():
        # a bare run name is looked up under the checkpoints folder
        q = Path(root) / p
        if q.is_dir():
            return find(q, root, prefer)
        raise CheckpointError(f"no checkpoint or run at {target}.")
    return p


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
