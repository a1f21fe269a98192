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
from .spec import P_CORPUS, P_EVAL, P_HW, P_MODEL, P_OPT, P_OUT, P_TASK, declared, option

T = TypeVar("T")
DEFAULT_SPM_VOCAB = 1024  # --tokenizer spm without --vocab-size; lowered (and said so) for small corpora


def _kinds() -> tuple[str, ...]:
    from .models import registry

    return registry.names()


def _tasks() -> tuple[str, ...]:
    from .tasks import task_names

    return task_names()


def _kinds_help() -> str:
    from .models import registry

    return "Recurrent cell: " + "; ".join(f"{k.name} ({k.about})" for k in registry.KINDS.values()) + "."


def _tasks_help() -> str:
    from .tasks import TASKS

    return "What to learn: " + "; ".join(f"{t.name} ({t.about})" for t in TASKS.values()) + "."


class Device(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


# The choices of the options below (the CLI's Enums are made from them, spec.option):
DOC_STATES = ("reset", "carry")  # at an end-of-document token: zero the state (as in sampling), or let it flow on
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 autocast where it is measured faster, else fp32; fp16: CUDA only
TOKENIZERS, SPM_TYPES = ("char", "spm"), ("unigram", "bpe")  # characters, or sentencepiece subwords
# where a document's label comes from (--label-from): the file's name without its extension, its parent
# folder, a label<TAB>text prefix on each document, or each line a document, label<TAB>text
LABEL_SOURCES = ("file", "folder", "prefix", "tsv")


class Unknown(str, enum.Enum):
    error = "error"
    skip = "skip"


@dataclass(frozen=True)
class ModelConfig:
    cell: str = option("lstm", _kinds_help, panel=P_MODEL, choices=_kinds, metavar="KIND")  # a kind of models.registry
    layers: int = option(2, "Stacked recurrent layers.", panel=P_MODEL)
    hidden: int = option(256, "Units per layer.", panel=P_MODEL)
    embed: int = option(64, "Embedding size.", panel=P_MODEL)
    dropout: float = option(0.1, "Dropout between layers and before the output.", panel=P_MODEL)
    vocab_size: int = 0  # set from the tokenizer
    task: str = option("lm", _tasks_help, panel=P_TASK, choices=_tasks, metavar="TASK")  # a task from charrnn.tasks
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
            hint = ", ".join(n for n, k in registry.KINDS.items() if len(stray) == 1 and stray[0] in k.option_fields())
            raise ConfigError(f"{flags} {'does' if len(stray) == 1 else 'do'} not fit --cell {self.cell} with --task {self.task}{f' (it is for --cell {hint})' if hint else ''}.")
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


def check_choices(cfg: T) -> T:
    """Each option's value is one of the choices its declaration lists (spec.option)."""
    for f, opt in declared(type(cfg)):
        v = getattr(cfg, f.name)
        if isinstance(opt.choices, tuple) and v is not None and v not in opt.choices:
            raise ConfigError(f"{option_flag(f.name)} must be one of {', '.join(opt.choices)}, got {v!r}.")
    return cfg


def _shown(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _options(cls: type | None, values: dict[str, Any]) -> Any:
    """cls(**the values it owns), validated when it has a validate() method."""
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    opts = check_choices(cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names}))
    return opts.validate() if hasattr(opts, "validate") else opts


@dataclass(frozen=True)
class DataConfig:
    paths: tuple[str, ...] = ()  # train's argument: files, folders or built-in corpora
    glob: str = option("*", "Files to take from folders.", panel=P_CORPUS)
    encoding: str = option("utf-8", "Text encoding of the files.", panel=P_CORPUS)
    errors: str = option("strict", "On undecodable bytes: strict (stop), replace or ignore.", panel=P_CORPUS)
    doc_sep: str | None = option(None, "Split into documents: line, blank (blank lines), file, or a separator line such as %.", panel=P_CORPUS)
    val_frac: float = option(0.1, "Fraction held out for validation.", panel=P_CORPUS)
    label_from: str | None = option(
        None, "Labelled documents: the label is the file's name, its folder, a label<TAB> prefix, or a TSV's first column.",
        panel=P_CORPUS, choices=LABEL_SOURCES)  # data/labels.py  # fmt: skip
    tokenizer: str = option("char", "Characters, or sentencepiece subword tokens.", panel=P_CORPUS, choices=TOKENIZERS)
    vocab_size: int | None = option(
        None, f"Sentencepiece vocabulary size (--tokenizer spm; {DEFAULT_SPM_VOCAB} when not given, lowered to fit a small corpus).",
        panel=P_CORPUS)  # fmt: skip
    spm_type: str = option("unigram", "Sentencepiece model type (--tokenizer spm).", panel=P_CORPUS, choices=SPM_TYPES)

    def validate(self) -> "DataConfig":
        check_choices(self)
        if not 0.0 <= self.val_frac < 1.0:
            raise ConfigError(f"--val-frac must be in [0, 1), got {self.val_frac}.")
        if self.errors not in ("strict", "replace", "ignore"):
            raise ConfigError(f"--errors must be strict, replace or ignore, got {self.errors!r}.")
        if self.doc_sep is not None and (self.doc_sep == "" or "\n" in self.doc_sep):
            raise ConfigError("--doc-sep must be line, blank, file or a one-line separator such as %.")
        if self.tokenizer == "char" and self.vocab_size is not None:
            raise ConfigError("--vocab-size is for --tokenizer spm; a char model's vocabulary is its corpus' characters.")
        if self.tokenizer == "char" and self.spm_type != "unigram":
            raise ConfigError("--spm-type is for --tokenizer spm.")
        if self.vocab_size is not None and self.vocab_size < 2:
            raise ConfigError(f"--vocab-size must be a whole number >= 2, got {self.vocab_size}.")
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
    seq_len: int = option(32, "Timesteps backpropagated through (truncated BPTT).", panel=P_OPT)
    batch_size: int = option(32, "Streams per batch.", panel=P_OPT)
    lr: float = option(3e-3, "Peak learning rate (AdamW).", panel=P_OPT)
    min_lr: float = option(2e-4, "Learning rate at the end of the cosine decay.", panel=P_OPT)
    warmup: int = option(50, "Steps of linear warmup.", panel=P_OPT)
    weight_decay: float = option(0.1, "AdamW weight decay on weight matrices.", panel=P_OPT)
    clip: float = option(1.0, "Clip the gradient norm to this.", panel=P_OPT)
    steps: int | None = option(None, "Stop after this many steps.", panel=P_OPT)
    epochs: float | None = option(None, "Stop after this many passes over the training split.", panel=P_OPT)
    # "90s", "3m", "1h30m"; DEFAULT_TIME when no other limit is set
    time: str | None = option(None, "Stop after this wall-clock time (90s, 3m, 1h); 3m when no limit is given.", panel=P_OPT)
    doc_state: str = option("reset", "At a document's end: reset the state, or carry it on.", panel=P_OPT, choices=DOC_STATES)
    seed: int = option(1337, "Random seed (same seed, same run on a CPU).", panel=P_OPT)
    eval_every: int = option(250, "Evaluate, sample and checkpoint every N steps.", panel=P_EVAL)
    # a fixed slice of the validation split, during training
    eval_tokens: int = option(32_768, "Validation tokens scored during training.", panel=P_EVAL)
    # the end-of-run evaluation; covers the whole split up to this
    final_eval_tokens: int = option(2_000_000, "Validation tokens scored at the end.", panel=P_EVAL)
    sample_chars: int = option(200, "Characters of sample shown at each evaluation (0: none).", panel=P_EVAL)
    save_every: int | None = option(None, "Also checkpoint every N steps.", panel=P_OUT)  # None: at every evaluation
    save_interval: float = option(60.0, "Also checkpoint when this many seconds have passed since the last checkpoint (0: never), "
                                  "so a killed run loses at most that much.", panel=P_OUT)  # fmt: skip
    device: str = option(Device.auto.value, "Where to run.", panel=P_HW, choices=tuple(d.value for d in Device))
    precision: str = option(
        "auto", "auto: bf16 autocast on GPUs and on CPUs with native bf16, else fp32; or fp32, bf16, fp16 (CUDA). "
        "An LSTM trained in fp32 on a CPU defaults to --layers 1 --dropout 0 --lr 0.01.", panel=P_HW,
        choices=PRECISIONS)  # fmt: skip
    threads: int | None = option(None, "CPU threads (default: torch's choice; 1 is often faster on a busy machine).", panel=P_HW)
    max_bad_steps: int = 5  # non-finite losses in a row before the run stops
    # the settings this run took from FP32_CPU_RECIPE (or its task's recipe) instead of the defaults above
    # (training/recipe.py; empty for a run in bf16, on a GPU, or given them all)
    recipe: tuple[str, ...] = ()
    # what `--precision auto` resolved to on this CPU and why, when a probe chose it
    # (training/autoprecision.py); the run then trains in the precision it names
    auto_choice: str = ""

    def validate(self) -> "TrainConfig":
        check_choices(self)
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
        if self.threads is not None:
            _positive("--threads", self.threads)
        from .tasks import TASKS  # (a task may bring a recipe of its own)

        if unknown := set(self.recipe) - set(FP32_CPU_RECIPE).union(*(t.recipe or () for t in TASKS.values())):
            raise ConfigError(f"unknown recipe settings {sorted(unknown)}.")
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
    "ModelConfig",
    "SampleConfig",
    "TrainConfig",
    "Unknown",
    "format_duration",
    "option_flag",
    "from_dict",
    "parse_duration",
    "to_dict",
]
