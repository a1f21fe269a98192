"""Every default in one place.

The CLI reads its option defaults from these dataclasses, so `--help` shows the
values the code really uses, and a checkpoint stores them as plain dicts that
round-trip through `to_dict` / `from_dict`. This module imports nothing heavy:
`charrnn --help` must not pay for torch.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ConfigError


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class DocState(str, enum.Enum):
    """What the recurrent state does at an end-of-document token."""

    reset = "reset"  # zero the state: each document starts fresh, as in sampling
    carry = "carry"  # let it flow on: the model must learn to forget by itself


class Precision(str, enum.Enum):
    auto = "auto"  # bf16 autocast where it is measured faster, else fp32
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"  # CUDA only


class TokenizerKind(str, enum.Enum):
    char = "char"
    spm = "spm"  # sentencepiece subwords


class SpmType(str, enum.Enum):
    unigram = "unigram"
    bpe = "bpe"


LABEL_SOURCES = ("file", "folder", "prefix", "tsv")  # where a document's label comes from (--label-from)


class LabelFrom(str, enum.Enum):
    file = "file"  # the file's name without its extension
    folder = "folder"  # the file's parent folder
    prefix = "prefix"  # each document begins label<TAB>text
    tsv = "tsv"  # each line is one document, label<TAB>text


class Unknown(str, enum.Enum):
    error = "error"
    skip = "skip"


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # a model kind from charrnn.models.registry
    layers: int = 2
    hidden: int = 256
    embed: int = 64
    dropout: float = 0.1
    vocab_size: int = 0  # set from the tokenizer
    task: str = "lm"  # a task from charrnn.tasks
    # The chosen kind's and task's own settings by field name (e.g. a leaky unit's
    # tau_max); each is checked against the dataclass of options the kind or the
    # task declares, and missing ones take its defaults.
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def validate(self) -> "ModelConfig":
        from .models import registry
        from .tasks import task_spec

        kind, task = registry.get(self.cell), task_spec(self.task)
        if kind.structure != task.structure:
            fits = ", ".join(registry.names(task.structure, self.task))
            reads = "composes trees" if kind.structure == registry.TREE else "reads sequences"
            raise ConfigError(f"--cell {self.cell} {reads}; --task {self.task} takes --cell {fits}.")
        if kind.tasks is not None and self.task not in kind.tasks:
            fits = ", ".join(registry.names(task.structure, self.task))
            raise ConfigError(f"--cell {self.cell} serves --task {', '.join(kind.tasks)} only; --task {self.task} takes --cell {fits}.")
        owned = set(kind.option_fields()) | set(task.option_fields())
        stray = sorted(set(self.options) - owned)
        if stray:
            flags = ", ".join(option_flag(k) for k in stray)
            raise ConfigError(f"{flags} {'does' if len(stray) == 1 else 'do'} not fit --cell {self.cell} with --task {self.task}.")
        self.cell_options()
        self.task_options()
        _positive("--layers", self.layers)
        _positive("--hidden", self.hidden)
        _positive("--embed", self.embed)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}.")
        return self

    def summary(self) -> str:
        """One line: 'lstm 2x256, embedding 64, dropout 0.1' and the kind's and task's own settings."""
        extra = "".join(f", {k.replace('_', '-')} {_shown(v)}" for k, v in sorted(self.options.items()))
        task = "" if self.task == "lm" else f" ({self.task})"
        return f"{self.cell} {self.layers}x{self.hidden}{task}, embedding {self.embed}, dropout {self.dropout}{extra}"

    def cell_options(self) -> Any:
        """The kind's options dataclass with this config's values (None for a kind with none)."""
        from .models import registry

        return _options(registry.get(self.cell).options, self.options)

    def task_options(self) -> Any:
        from .tasks import task_spec

        return _options(task_spec(self.task).options, self.options)


def _shown(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _options(cls: type | None, values: dict[str, Any]) -> Any:
    """cls(**the values it owns), validated when it has a validate() method."""
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    opts = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})
    check = getattr(opts, "validate", None)
    return check() if check is not None else opts


@dataclass(frozen=True)
class DataConfig:
    paths: tuple[str, ...] = ()
    glob: str = "*"
    encoding: str = "utf-8"
    errors: str = "strict"
    doc_sep: str | None = None  # None | "line" | "blank" | "file" | a literal separator line
    val_frac: float = 0.1
    tokenizer: str = "char"  # "char" | "spm"
    vocab_size: int | None = None  # sentencepiece only
    spm_type: str = "unigram"  # sentencepiece only: "unigram" | "bpe"
    label_from: str | None = None  # labelled documents: "file" | "folder" | "prefix" | "tsv" (data/labels.py)

    def validate(self) -> "DataConfig":
        if not 0.0 <= self.val_frac < 1.0:
            raise ConfigError(f"--val-frac must be in [0, 1), got {self.val_frac}.")
        if self.errors not in ("strict", "replace", "ignore"):
            raise ConfigError(f"--errors must be strict, replace or ignore, got {self.errors!r}.")
        if self.doc_sep is not None and (self.doc_sep == "" or "\n" in self.doc_sep):
            raise ConfigError("--doc-sep must be line, blank, file or a one-line separator such as %.")
        if self.tokenizer not in {t.value for t in TokenizerKind}:
            raise ConfigError(f"--tokenizer must be char or spm, got {self.tokenizer!r}.")
        if self.tokenizer == "char" and self.vocab_size is not None:
            raise ConfigError("--vocab-size is for --tokenizer spm; a char model's vocabulary is its corpus' characters.")
        if self.tokenizer == "char" and self.spm_type != "unigram":
            raise ConfigError("--spm-type is for --tokenizer spm.")
        if self.spm_type not in {t.value for t in SpmType}:
            raise ConfigError(f"--spm-type must be unigram or bpe, got {self.spm_type!r}.")
        if self.vocab_size is not None and self.vocab_size < 2:
            raise ConfigError(f"--vocab-size must be a whole number >= 2, got {self.vocab_size}.")
        if self.label_from is not None and self.label_from not in LABEL_SOURCES:
            raise ConfigError(f"--label-from must be one of {', '.join(LABEL_SOURCES)}, got {self.label_from!r}.")
        if self.doc_sep is not None and "\x00" in self.doc_sep:
            raise ConfigError("--doc-sep must not contain a NUL character.")
        import codecs

        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"unknown --encoding {self.encoding!r}; try utf-8, latin-1 or cp1252.") from None
        return self


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = 32
    batch_size: int = 32
    lr: float = 3e-3
    min_lr: float = 2e-4
    warmup: int = 50
    weight_decay: float = 0.1
    clip: float = 1.0
    steps: int | None = None
    epochs: float | None = None
    time: str | None = None  # "90s", "3m", "1h30m"; DEFAULT_TIME when no other limit is set
    eval_every: int = 250
    eval_tokens: int = 32_768  # a fixed slice of the validation split, during training
    final_eval_tokens: int = 2_000_000  # the end-of-run evaluation; covers the whole split up to this
    sample_chars: int = 200
    save_every: int | None = None  # steps; None: at every evaluation
    save_interval: float = 60.0  # seconds of wall clock between checkpoints at the latest (0: only the above)
    doc_state: str = DocState.reset.value
    seed: int = 1337
    device: str = Device.auto.value
    precision: str = Precision.auto.value
    threads: int | None = None
    max_bad_steps: int = 5  # non-finite losses in a row before the run stops
    # the settings this run took from FP32_CPU_RECIPE instead of the defaults above
    # (training/recipe.py; empty for a run in bf16, on a GPU, or given them all)
    recipe: tuple[str, ...] = ()
    # what `--precision auto` resolved to on this CPU and why, when a probe chose it
    # (training/autoprecision.py); the run then trains in the precision it names
    auto_choice: str = ""

    def validate(self) -> "TrainConfig":
        _positive("--seq-len", self.seq_len)
        _positive("--batch-size", self.batch_size)
        for name, v in (("--lr", self.lr), ("--min-lr", self.min_lr)):
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"{name} must be a finite number >= 0, got {v}.")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}.")
        if self.min_lr > self.lr:
            raise ConfigError(f"--min-lr ({self.min_lr}) must not exceed --lr ({self.lr}).")
        if self.warmup < 0:
            raise ConfigError(f"--warmup must be >= 0, got {self.warmup}.")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight-decay must be >= 0, got {self.weight_decay}.")
        if not self.clip > 0:
            raise ConfigError(f"--clip must be > 0, got {self.clip}.")
        if self.steps is not None:
            _positive("--steps", self.steps)
        if self.epochs is not None and not self.epochs > 0:
            raise ConfigError(f"--epochs must be > 0, got {self.epochs}.")
        if self.time is not None:
            parse_duration(self.time)
        _positive("--eval-every", self.eval_every)
        _positive("--eval-tokens", self.eval_tokens)
        _positive("--final-eval-tokens", self.final_eval_tokens)
        if self.save_every is not None:
            _positive("--save-every", self.save_every)
        if not (self.save_interval >= 0 and math.isfinite(self.save_interval)):
            raise ConfigError(f"--save-interval must be a number of seconds >= 0, got {self.save_interval}.")
        if self.sample_chars < 0:
            raise ConfigError(f"--sample-chars must be >= 0, got {self.sample_chars}.")
        if self.doc_state not in {d.value for d in DocState}:
            raise ConfigError(f"--doc-state must be reset or carry, got {self.doc_state!r}.")
        if self.device not in {d.value for d in Device}:
            raise ConfigError(f"--device must be auto, cpu, cuda or mps, got {self.device!r}.")
        if self.precision not in {p.value for p in Precision}:
            raise ConfigError(f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}.")
        if self.threads is not None:
            _positive("--threads", self.threads)
        if set(self.recipe) - set(FP32_CPU_RECIPE):
            raise ConfigError(f"unknown recipe settings {sorted(set(self.recipe) - set(FP32_CPU_RECIPE))}.")
        return self

    @property
    def time_s(self) -> float | None:
        """The wall-clock budget in seconds, DEFAULT_TIME when no limit is given."""
        if self.time is not None:
            return parse_duration(self.time)
        if self.steps is None and self.epochs is None:
            return parse_duration(DEFAULT_TIME)
        return None


@dataclass(frozen=True)
class SampleConfig:
    prime: str = ""
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    length: int = 500
    num: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_at_eos: bool = True
    unknown: str = Unknown.error.value

    def validate(self) -> "SampleConfig":
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ConfigError(f"--temperature must be a finite number >= 0, got {self.temperature}.")
        if self.top_k is not None:
            _positive("--top-k", self.top_k)
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"--top-p must be in (0, 1], got {self.top_p}.")
        if self.length < 0:
            raise ConfigError(f"--length must be >= 0, got {self.length}.")
        _positive("--num", self.num)
        if any(s == "" for s in self.stop):
            raise ConfigError("--stop needs a non-empty string.")
        if self.unknown not in {u.value for u in Unknown}:
            raise ConfigError(f"--unknown must be error or skip, got {self.unknown!r}.")
        return self


# TrainConfig fields a resumed run may change (everything else is the run's own);
# the limits change together: a new one replaces all the old ones
RESUMABLE = ("steps", "epochs", "time", "eval_every", "eval_tokens", "final_eval_tokens", "sample_chars", "save_every",
             "save_interval", "device", "precision", "threads")  # fmt: skip
LIMITS = ("steps", "epochs", "time")

DEFAULT_TIME = "3m"

# The defaults above were tuned where bf16 autocast runs (a CPU with native bf16, or
# a GPU): there 3 minutes buy ~10k steps and a 2x256 LSTM overfits, so dropout and a
# gentle lr win. A CPU training in fp32 runs 4-5x slower: 3 minutes buy under two
# epochs, and a wider step size and one layer win (bench/RESULTS.md, issue 17). A new
# LSTM language model that trains in fp32 on a CPU takes these instead of the
# defaults, each one unless given (training/recipe.py).
FP32_CPU_RECIPE: dict[str, Any] = {"layers": 1, "hidden": 256, "dropout": 0.0, "lr": 1e-2}
DEFAULT_SPM_VOCAB = 1024  # --tokenizer spm without --vocab-size; lowered (and said so) for small corpora
DEFAULT_CHECKPOINTS = "checkpoints"
DEFAULT_CORPUS = "pydoc-topics"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)?", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'90s', '3m', '1h30m', '2.5m', '45' (seconds) -> seconds."""
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise ConfigError("--time needs a duration such as 90s, 3m or 1h.")
    total, pos = 0.0, 0
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, None: 1.0}
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if not m or m.end() == pos:
            raise ConfigError(f"cannot read --time {text!r}; use a duration such as 90s, 3m or 1h30m.")
        total += float(m.group(1)) * scale[m.group(2)]
        pos = m.end()
    if not total > 0:
        raise ConfigError(f"--time must be longer than zero, got {text!r}.")
    return total


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _positive(name: str, value: int) -> None:
    if not (isinstance(value, int) and value > 0):
        raise ConfigError(f"{name} must be a whole number > 0, got {value}.")


T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config from a stored dict; unknown keys (from a newer writer) are ignored,
    missing keys take today's defaults."""
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {}
    for k, v in data.items():
        if k in names:
            kwargs[k] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


__all__ = [
    "DataConfig",
    "Device",
    "DocState",
    "ModelConfig",
    "Precision",
    "SampleConfig",
    "TrainConfig",
    "Unknown",
    "format_duration",
    "option_flag",
    "from_dict",
    "parse_duration",
    "to_dict",
]
