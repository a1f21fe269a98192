"""Typer parameters generated from the declared options (spec.option, runconfig.catalogue).

A command that takes options (`train`, `compare`) is a `Generated` callback: Typer
reads its signature through `__signature__`, which is built from the declarations
each time the command is parsed, so a kind or a task registered after import (by
a plugin or a test) brings its options with it. Choice options become Enums made
once from their declared choices (so `--help` lists them); options whose choices
are a registry's names (`--cell`, `--task`, `--decoder-cell`) are checked when
parsed. Help text is escaped for Rich where every command's is (cli/common.py), so `[leaky]` and `[h_l; h_r]` survive.

A command's own options that configure nothing (--name, --out, --quiet, ...)
are declared in the command, once. `--config FILE.toml` reads options from a
file (runconfig.read); an option typed on the command line wins over the file,
and both count as given (the fp32 recipe keeps what was given).
"""

from __future__ import annotations

import enum
import functools
import inspect
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from . import complete
from .. import runconfig
from ..errors import ConfigError
from ..spec import PANELS

P = inspect.Parameter


@functools.lru_cache(maxsize=None)
def _enum(name: str, choices: tuple[str, ...]) -> type[enum.Enum]:
    """One Enum per option and set of choices, made once (Typer lists its values)."""
    title = "".join(w.title() for w in name.split("_"))
    return enum.Enum(title, {c: c for c in choices}, type=str)  # type: ignore[return-value]


def _checked(names: Callable[[], tuple[str, ...]]) -> Callable[[Any], Any]:
    """A callback accepting one of a registry's names, read when the option is parsed."""

    def check(value: Any) -> Any:
        if value is not None and value not in names():
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(names())}.")
        return value

    return check


def _parsed(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except ConfigError as e:
            raise typer.BadParameter(str(e)) from None

    return convert


def annotated(d: runconfig.Declared, **override: Any) -> tuple[Any, Any]:
    """(Annotated[type, typer.Option(...)], default) for one declared option; `override`
    replaces help, panel, show_default or default for one command (compare's --time)."""
    o = d.opt
    kw: dict[str, Any] = {"help": override.get("help", d.help), "rich_help_panel": override.get("panel", d.panel)}  # escaped with every command's (cli/common.py)
    show = override.get("show_default", o.show_default)
    if show is not True:
        kw["show_default"] = show
    names = [n for n in (o.flag, o.short) if n]
    default = override.get("default", d.default)
    if callable(o.choices):
        t: Any = str
        kw.update(callback=_checked(o.choices), metavar=o.metavar, autocompletion=complete.names(o.choices))
    elif o.choices:
        t = _enum(d.name, tuple(o.choices))
        default = None if default is None else t(default)
    elif o.parse is not None:
        t, default = str, None  # shown by show_default; only a given value is used
        kw["callback"] = _parsed(o.parse)
    else:
        t = d.type
    if d.optional or default is None:
        t = Optional[t]
    return Annotated[t, typer.Option(*names, **kw)], default


def option_type(name: str, **override: Any) -> Any:
    """The Annotated type of one declared option, for a command written out by hand
    (`charrnn tui --cell`, `inspect --threads`); its default: runconfig.catalogue()[name].default."""
    return annotated(runconfig.catalogue()[name], **override)[0]


def _order(params: list[P]) -> list[P]:
    """Stable, by the panel's place in spec.PANELS (unknown panels after, as first seen)."""
    seen: list[str] = []

    def key(ip: tuple[int, P]) -> tuple[int, int]:
        info = ip[1].annotation.__metadata__[0]
        panel = info.rich_help_panel
        if panel is None:
            return (-1, ip[0])
        if panel in PANELS:
            return (PANELS.index(panel), ip[0])
        if panel not in seen:
            seen.append(panel)
        return (len(PANELS) + seen.index(panel), ip[0])

    return [p for _, p in sorted(enumerate(params), key=key)]


CONFIG_PARAM = P(
    "config", P.POSITIONAL_OR_KEYWORD, default=None,
    annotation=Annotated[Optional[Path], typer.Option(
        "--config", help="Read options from a TOML file (a run's config.toml, or your own); options given here win. See docs/config.md.",
        show_default=False, metavar="FILE.toml")],
)  # fmt: skip


class Generated:
    """A Typer command whose declared options are generated at each parse.

    `own`: the command's own parameters (an argument, --name, ...); `pick`: which
    declared options it takes (a callable, read each time; None: all of them);
    `override`: per-option changes of help or default; `file_keys`: own options a
    config file may also set; `body(values, given, own)`: the command, with the
    declared options given (from the command line or the file), the names given, and
    the own parameters' values."""

    def __init__(self, name: str, doc: str, own: list[P], body: Callable[[dict[str, Any], set[str], dict[str, Any]], None],
                 pick: Callable[[dict[str, runconfig.Declared]], list[str]] | None = None,
                 override: dict[str, dict[str, Any]] | None = None, file_keys: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.__name__ = self.__qualname__ = name
        self.__doc__ = doc
        self.__module__ = body.__module__
        self.own, self.body, self.pick, self.override, self.file_keys = own, body, pick, override or {}, file_keys

    def declared(self) -> dict[str, runconfig.Declared]:
        cat = runconfig.catalogue()
        return {n: cat[n] for n in (self.pick(cat) if self.pick else list(cat))}

    @property
    def __signature__(self) -> inspect.Signature:
        generated = []
        for name, d in self.declared().items():
            annotation, default = annotated(d, **self.override.get(name, {}))
            generated.append(P(name, P.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation))
        ctx = P("ctx", P.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
        args = [p for p in self.own if _is_argument(p)]
        rest = [p for p in self.own if not _is_argument(p)]
        return inspect.Signature([ctx, *args, CONFIG_PARAM, *_order(generated + rest)])

    @property
    def __annotations__(self) -> dict[str, Any]:  # type: ignore[override]
        return {p.name: p.annotation for p in self.__signature__.parameters.values()}

    def __call__(self, ctx: typer.Context, config: Path | None = None, **kw: Any) -> None:
        from .common import user_errors

        user_errors(self._call)(ctx, config, **kw)

    def _call(self, ctx: typer.Context, config: Path | None, **kw: Any) -> None:
        from .common import given_options

        declared = self.declared()
        typed = given_options(ctx)
        from_file = runconfig.read(config) if config is not None else {}
        takes = set(declared) | {"paths", *self.file_keys}
        for key in from_file:
            if key not in takes:
                flags = sorted(runconfig.flag_of(n)[2:] for n in takes)
                raise ConfigError(f"{config}: {ctx.info_name} has no option {key.replace('_', '-')}{runconfig.nearest(key.replace('_', '-'), flags)}")
        merged = {**kw, **{k: v for k, v in from_file.items() if k not in typed}}
        given = typed | set(from_file)
        values = {k: merged[k] for k in given if k in declared or k == "paths"}
        own = {k: v for k, v in merged.items() if k not in declared}
        self.body(values, given, own)


def _is_argument(p: P) -> bool:
    return any(isinstance(m, typer.models.ArgumentInfo) for m in getattr(p.annotation, "__metadata__", ()))


def own(name: str, annotation: Any, default: Any = None) -> P:
    """One of a command's own parameters."""
    return P(name, P.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)
