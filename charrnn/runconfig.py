"""Given options -> the three configs: one builder for every entry point.

`charrnn train`, `charrnn compare`, the TUI's new-run form and
`charrnn.train(**options)` all come here with the options the user gave (by
field name: `seq_len`; `seq-len` is read the same), and a run's `config.toml`
is written from here and read back through the same builder:

    catalogue()         every option declared on a config, kind or task (spec.option), by name
    parse_line(text)    "--dropout 0.1 --condition input" -> options by name (the TUI's form)
    build_configs(...)  given options -> (DataConfig, ModelConfig, TrainConfig), unvalidated
    resolved(...)       the configs -> every option's value, as config.toml holds it

An option that no config, kind or task declares is a one-line ConfigError naming
the nearest one (difflib); one that does not fit the chosen cell or task fails
later, in ModelConfig.validate, as it always has. Light: no torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import math
import os
import shlex
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DEFAULT_CORPUS, DataConfig, ModelConfig, TrainConfig
from .errors import ConfigError
from .spec import P_CELL, Opt, declared, flag_of

CONFIGS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


@dataclass(frozen=True)
class Declared:
    """One option as every face sees it: its field, where it was declared, what it takes."""

    name: str  # the field's name: seq_len (the flag is --seq-len)
    owners: tuple[str, ...]  # "data" | "model" | "train", or "cell:NAME" / "task:NAME" (several kinds may share a name)
    type: Any  # the value's type without None: int, float, str, bool, tuple[int, ...]
    optional: bool  # None is a value (no default)
    default: Any
    opt: Opt

    @property
    def flag(self) -> str:
        return self.opt.flag or flag_of(self.name)

    @property
    def config(self) -> str | None:
        """"data", "model" or "train" for a config's field; None for a kind's or a task's option."""
        return self.owners[0] if self.owners[0] in CONFIGS else None

    @property
    def panel(self) -> str:
        if self.opt.panel:
            return self.opt.panel
        if self.owners[0].startswith("task:"):
            return f"Task options (--task {self.owners[0][5:]})"
        return P_CELL

    @property
    def help(self) -> str:
        """The help line; a kind's option starts with the kinds that take it: [leaky]."""
        text = self.opt.help_text()
        kinds = [o[5:] for o in self.owners if o.startswith("cell:")]
        return f"[{', '.join(kinds)}] {text}" if kinds else text


def _entries(cls: type, owner: str) -> list[tuple[str, Declared]]:
    hints = typing.get_type_hints(cls)
    out = []
    for f, opt in declared(cls):
        base, optional = _strip_none(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out.append((f.name, Declared(f.name, (owner,), base, optional, default, opt)))
    return out


def _strip_none(t: Any) -> tuple[Any, bool]:
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(t))
    return t, False


def catalogue() -> dict[str, Declared]:
    """Every option, by name: the configs' fields, then each registered task's and kind's
    own (read now, so a kind or task registered later is in it). An option that several
    kinds or tasks declare (--condition: lm and seq2seq) is one entry with every owner."""
    from .models import registry
    from .tasks import TASKS

    out: dict[str, Declared] = {}
    sources = [(cls, owner) for owner, cls in CONFIGS.items()]
    sources += [(t.options, f"task:{t.name}") for t in TASKS.values() if t.options is not None]
    sources += [(k.options, f"cell:{k.name}") for k in registry.KINDS.values() if k.options is not None]
    for cls, owner in sources:
        for name, d in _entries(cls, owner):
            if name in out:
                had = out[name]
                if had.config or d.config or (had.type, had.default) != (d.type, d.default):
                    raise ConfigError(f"{owner} declares {flag_of(name)}, which {had.owners[0]} declares otherwise; rename one.")
                d = dataclasses.replace(had, owners=(*had.owners, owner))
            out[name] = d
    return out


def nearest(name: str, names: Any) -> str:
    """'; did you mean seq_len?' (the nearest of `names`, spelled as they are) or ''."""
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def unknown(name: str, names: Any, keyword: bool = False) -> ConfigError:
    """The one line for an option nobody declares: as a flag (`--hiden`) or a keyword (`hiden`)."""
    if keyword:
        return ConfigError(f"charrnn.train() has no option {name!r}{nearest(name, sorted(names))}")
    return ConfigError(f"unknown option {flag_of(name)}{nearest(flag_of(name), sorted(flag_of(n) for n in names))}")


def normal(name: str) -> str:
    """`seq-len`, `--seq-len` and `seq_len` are one option."""
    return name.lstrip("-").replace("-", "_")


def coerce(d: Declared, value: Any) -> Any:
    """A value from a flag, a file or a keyword -> the field's type, or a one-line error naming the flag."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        if d.optional:
            return None
        raise ConfigError(f"{d.flag} needs a value.")
    want = d.type
    if typing.get_origin(want) is tuple:
        if isinstance(value, str) and d.opt.parse is not None:
            try:
                value = d.opt.parse(value)
            except ConfigError as e:
                raise ConfigError(f"{d.flag} {e}") from None
        item = typing.get_args(want)[0]
        ok = (item, int) if item is float else (item,)  # 1 is a fine float
        if isinstance(value, (list, tuple)) and all(isinstance(v, ok) and not isinstance(v, bool) for v in value):
            return tuple(item(v) for v in value)
        raise ConfigError(f"{d.flag} takes a list of {item.__name__} values, got {value!r}.")
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        raise ConfigError(f"{d.flag} takes {'a whole number' if want is int else 'a number' if want is float else want.__name__}, got {value!r}.")
    choices = d.opt.choice_names() if not callable(d.opt.choices) else None
    if choices is not None and value not in choices:
        raise ConfigError(f"{d.flag} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def from_text(d: Declared, text: str) -> Any:
    """One option's value typed as text (a form's field, a line of options) -> its type, as
    the command line reads it: a declared parser, a whole number, a number, or the text.
    Choices and ranges are checked later, by coerce() and the configs' validate()."""
    text = text.strip()
    if d.opt.parse is not None:
        try:
            return d.opt.parse(text)
        except ConfigError as e:
            raise ConfigError(f"{d.flag} {e}") from None
    if d.type is bool:
        if text.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return text.lower() in ("true", "yes", "on", "1")
        raise ConfigError(f"{d.flag} is on or off, got {text!r}.")
    try:
        return d.type(text) if d.type in (int, float) else text
    except ValueError:
        raise ConfigError(f"{d.flag} takes {'a whole number' if d.type is int else 'a number'}, got {text!r}.") from None


def parse_line(text: str) -> dict[str, Any]:
    """Options written as on the command line, "--dropout 0.1 --condition input --learn-tau",
    -> {name: value}: each flag is a declared option (a switch takes no value; --flag=value
    works too), each value read by from_text(). An unknown flag, a missing value, a word
    that is no option or an option given twice is a one-line ConfigError."""
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ConfigError(f"cannot read the options {text.strip()!r}: {e}.") from None
    cat = catalogue()
    by_flag = {f: d for d in cat.values() for f in (d.flag, d.opt.short) if f}
    out: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word, i = words[i], i + 1
        flag, eq, value = word.partition("=")
        if not flag.startswith("-") or flag in ("-", "--"):
            raise ConfigError(f"{word!r} is not an option: give options as --name value (--dropout 0.1).")
        d = by_flag.get(flag)
        if d is None:
            raise unknown(normal(flag), cat)
        if d.name in out:
            raise ConfigError(f"{d.flag} is given twice.")
        if d.type is bool and not eq:
            out[d.name] = True
            continue
        if not eq:
            if i == len(words) or words[i].startswith("--"):
                raise ConfigError(f"{d.flag} needs a value.")
            value, i = words[i], i + 1
        out[d.name] = from_text(d, value)
    return out


def build_configs(given: dict[str, Any], paths: Any = None, keyword: bool = False) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """The configs for a new run from the options given (names as fields or flags; values
    as Python, TOML or Typer gives them). `paths` (or a `paths` key): the corpus; missing,
    the task's default data. What is not given takes its default; a task's default cell
    when --cell is not given; a given option the task has no use for is an error.
    keyword=True: unknown names are reported as charrnn.train()'s keywords."""
    from .tasks import task_spec

    cat = catalogue()
    values: dict[str, Any] = {}
    for key, v in given.items():
        name = normal(key)
        if name == "paths":
            paths = v
            continue
        if name not in cat:
            raise unknown(key if keyword else name, [*cat, "paths"], keyword)
        values[name] = coerce(cat[name], v)
    spec = task_spec(values.get("task", ModelConfig.task))
    unfit = sorted(set(values) & set(spec.unused))
    if unfit:
        flags = ", ".join(flag_of(k) for k in unfit)
        raise ConfigError(f"{flags} {'does' if len(unfit) == 1 else 'do'} not fit --task {spec.name}.")
    if "cell" not in values and spec.default_cell:
        values["cell"] = spec.default_cell
    if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):
        paths = [paths]
    paths = tuple(str(p) for p in (paths or [spec.default_data or DEFAULT_CORPUS]))
    part = {c: {k: v for k, v in values.items() if cat[k].config == c} for c in CONFIGS}
    options = {k: v for k, v in values.items() if cat[k].config is None}
    return (DataConfig(paths=paths, **part["data"]), ModelConfig(**part["model"], options=options), TrainConfig(**part["train"]))


def resolved(data: DataConfig, model: ModelConfig, train: TrainConfig) -> dict[str, Any]:
    """Every option of this run with its value, the corpus first: what config.toml holds.
    Left out: None (TOML has no null; a missing option takes its default), what the task
    has no use for (TaskSpec.unused), and a task's own options it was not given (some
    need others: --condition needs --label-from); the chosen kind's are all there."""
    from .tasks import task_spec

    unused = set(task_spec(model.task).unused)
    out: dict[str, Any] = {"paths": list(data.paths)}
    owners = {"data": data, "model": model, "train": train}
    cell = model.cell_options()
    for name, d in catalogue().items():
        if d.config is not None:
            v = getattr(owners[d.config], name)
        elif f"cell:{model.cell}" in d.owners and cell is not None:
            v = getattr(cell, name)
        elif f"task:{model.task}" in d.owners and name in model.options:
            v = model.options[name]
        else:
            continue
        if v is not None and name not in unused:
            out[name] = list(v) if isinstance(v, tuple) else v
    return out


def changed(values: dict[str, Any]) -> str:
    """'--cell leaky --tau-max 20.0 --steps 200': the options of `values` (as resolved()
    gives them) that differ from their declared defaults, as a command line spells them."""
    cat = catalogue()
    words = []
    for name, v in values.items():
        d = cat.get(name)
        if d is None or v == (list(d.default) if isinstance(d.default, tuple) else d.default):
            continue
        shown = ",".join(map(str, v)) if isinstance(v, list) else str(v)
        words.append(d.flag if v is True and d.type is bool else f"{d.flag} {shown}")
    return " ".join(words)


# ------------------------------------------------------------ config.toml

CONFIG_FILE = "config.toml"
_HEADER = """\
# charrnn run settings: every option of this run, as `charrnn train --help` names them
# (seq-len and seq_len are read alike; a missing option takes its default).
# Reproduce or vary the run: charrnn train --config THIS_FILE --out OTHER [--seed 2 ...]
"""


def to_toml(values: dict[str, Any]) -> str:
    """A flat TOML document: `key = value` lines, grouped under their help panels as comments."""
    cat = catalogue()
    lines, panel = [_HEADER], None
    for name, v in values.items():
        p = cat[name].panel if name in cat else "Corpus"
        if p != panel:
            lines.append(f"\n# {p}")
            panel = p
        lines.append(f"{name.replace('_', '-')} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not isinstance(v, float) or math.isfinite(v) else ("nan" if v != v else "inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")


def write(run_dir: Path, data: DataConfig, model: ModelConfig, train: TrainConfig) -> Path:
    """The run's config.toml, written atomically."""
    path = Path(run_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(to_toml(resolved(data, model, train)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read(path: str | Path) -> dict[str, Any]:
    """A config file's options by field name (`seq-len` -> seq_len), values as TOML gives
    them; tables are read as if flat ([model] hidden = 64 is hidden = 64)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise ConfigError("reading --config needs tomli on Python 3.10: pip install tomli.") from None
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no config file {path}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not a TOML file: {e}.") from None
    out: dict[str, Any] = {}
    for k, v in doc.items():
        for key, value in (v.items() if isinstance(v, dict) else [(k, v)]):
            name = normal(key)
            if name in out:
                raise ConfigError(f"{path} gives {key} twice.")
            out[name] = value
    return out
