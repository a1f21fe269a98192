"""Checkpoints: self-contained, safe to open, written atomically.

A checkpoint is one `torch.save` file holding only tensors, numbers, strings,
bytes, lists and dicts: weights, the model / data / training configs, optimizer
state, step and data position, RNG states, the best validation loss and the last
evaluation (`payload` below), and what the task adds (for language models the
tokenizer, char table or sentencepiece model bytes, and the carried hidden
state). This module is the schema: `payload` writes it, `restore` reads it back
into a Trainer, `model_from` builds the model it holds. It is opened with `torch.load(weights_only=True)`, so
opening a file never runs code, and it is written to a temporary file in the
same folder, fsynced and renamed over the old one, so a kill at any moment
leaves either the old checkpoint or the new one, whole.

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
from pathlib import Path
from typing import Any

import torch

from ..config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from ..data.tokenizer import Tokenizer, tokenizer_from_state
from ..errors import CharRNNError, CheckpointError, ConfigError
from . import space
from .hardware import precision_name

FORMAT = "charrnn-checkpoint"
VERSION = 1
LAST, BEST = "last.pt", "best.pt"
REQUIRED = ("model_config", "tokenizer", "model", "step")


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically. Refuses non-finite weights."""
    for name, t in payload["model"].items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"refusing to save a checkpoint whose weight {name} is not finite.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, **payload}
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


def load(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Open a checkpoint without executing anything; clear errors for everything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}.")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; the error below says it plainly
            warnings.simplefilter("ignore")
            ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} is not a charrnn checkpoint: it holds Python objects that charrnn will not load (opening it could run code)."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, IndexError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is damaged or not a checkpoint ({reason[:120]}).") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a charrnn checkpoint.")
    version = ck.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer charrnn (checkpoint format {version}; this one reads up to {VERSION}). Upgrade charrnn."
        )
    missing = [k for k in REQUIRED if k not in ck]
    if missing:
        raise CheckpointError(f"{path} is damaged: it lacks {', '.join(missing)}.")
    return ck


def payload(t: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint of Trainer `t` holds: the trainer's own fields and the task's `extra`."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if t.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(t.device)
    return {
        "model_config": to_dict(t.model_cfg),
        "data_config": to_dict(t.data_cfg),
        "train_config": to_dict(t.cfg),
        "trained_on": str(t.device),
        "trained_precision": precision_name(t.amp),  # what --precision auto chose
        "model": {k: v.detach().cpu() for k, v in t.model.state_dict().items()},
        "frozen": [n for n, p in t.model.named_parameters() if not p.requires_grad],  # e.g. a reservoir's weights
        "optimizer": t.optimizer.state_dict(),
        "step": t.step,
        "epoch": t.epoch,
        "batch_in_epoch": t.batch_i,
        "elapsed_s": t._elapsed(),
        "rng": rng,
        "best_val_loss": t.best_val,
        "best_val_bpc": t.best_bpc,
        "last_eval": t.last_eval,
        **extra,
    }


def restore(t: Any, ck: dict[str, Any]) -> None:
    """Put Trainer `t` where the checkpoint left off: weights, optimizer, position, RNG."""
    t.model.load_state_dict(ck["model"])
    try:
        t.optimizer.load_state_dict(ck["optimizer"])
    except (ValueError, KeyError, RuntimeError) as e:
        raise CharRNNError(f"the checkpoint's optimizer state does not fit this model ({e}).") from None
    t.step, epoch, batch_i = int(ck["step"]), int(ck.get("epoch", 0)), int(ck.get("batch_in_epoch", 0))
    t.epoch, t.batch_i = t.task.restore(ck, epoch, batch_i)
    t.elapsed0 = float(ck.get("elapsed_s", 0.0))
    t.best_val, t.best_bpc, t.last_eval = ck.get("best_val_loss"), ck.get("best_val_bpc"), ck.get("last_eval")
    rng = ck.get("rng", {})
    if t.dist.active:
        torch.manual_seed(t.cfg.seed + 7919 * t.dist.rank + t.step)
    elif "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if "cuda" in rng and t.device.type == "cuda" and not t.dist.active:
        torch.cuda.set_rng_state(rng["cuda"], t.device)


def model_from(ck: dict[str, Any], path: Path | str = "checkpoint") -> tuple[torch.nn.Module, Tokenizer]:
    """The model (on the CPU, in eval mode) and tokenizer a checkpoint holds."""
    from ..tasks import task_spec

    tok = tokenizer_from_state(ck["tokenizer"])
    try:
        cfg = from_dict(ModelConfig, ck["model_config"])
        model = task_spec(cfg.task).load().model_for(cfg)
        model.load_state_dict(ck["model"])
    except CharRNNError as e:
        raise CheckpointError(f"{path} holds a model this charrnn cannot build: {e}") from None
    except (RuntimeError, TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path} is damaged: its weights do not fit its model ({str(e).splitlines()[0][:120]}).") from None
    if tok.vocab_size != cfg.vocab_size:
        raise CheckpointError(f"{path} is damaged: its tokenizer has {tok.vocab_size} tokens, its model {cfg.vocab_size}.")
    return model.eval(), tok


def require_task(ck: dict[str, Any], path: Path | str, task: str, why: str) -> None:
    """A ConfigError unless the checkpoint holds a run of `task`; `why` says what needs one and what to use instead."""
    have = from_dict(ModelConfig, ck["model_config"]).task
    if have != task:
        raise ConfigError(f"{path} holds a {have} run; {why}")


def configs_from(ck: dict[str, Any]) -> tuple[ModelConfig, DataConfig, TrainConfig]:
    return (
        from_dict(ModelConfig, ck["model_config"]),
        from_dict(DataConfig, ck.get("data_config", {})),
        from_dict(TrainConfig, ck.get("train_config", {})),
    )


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
