"""`charrnn compare`: several model kinds on one corpus for one budget each, in one table.

The logic (sizing, training, measuring, the reference rows) is charrnn/compare.py;
this module parses the options, shows progress, prints the table and writes one
JSON line per row.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..config import DEFAULT_CORPUS, DataConfig, ModelConfig, TrainConfig, format_duration
from ..errors import ConfigError
from ..models import registry
from ..runconfig import build_configs
from . import complete
from .common import DEFAULT_ROOT, P_MODEL, P_OUT, CheckpointsOpt, Command, app, err, out
from .declared import Generated, own
from ..views.progress import PlainSink, si

DEFAULT_CELLS = "rnn,lstm,gru,leaky,esn,jordan"
DEFAULT_BUDGET = "1m"


def parse_count(text: str) -> int:
    """'500k', '1.5M', '800000' -> a whole number."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not m:
        raise ConfigError(f"--params takes a count such as 500k, 1.5M or 800000; got {text!r}.")
    n = int(round(float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]))
    if n < 1:
        raise ConfigError(f"--params must be at least 1, got {text!r}.")
    return n


def parse_cells(text: str) -> tuple[str, ...]:
    cells = tuple(c.strip() for c in text.split(",") if c.strip())
    for c in cells:
        registry.get(c)  # an unknown one is a one-line error naming the choices
    if not cells or len(set(cells)) != len(cells):
        raise ConfigError(f"--cells takes distinct kinds separated by commas, such as {DEFAULT_CELLS}; got {text!r}.")
    return cells


# compare takes the model's size, every kind's own options, a budget, and a few
# data and hardware settings; each is declared once, on its config or kind
SETTINGS = ("layers", "hidden", "embed", "dropout", "time", "steps", "seq_len", "batch_size", "lr", "seed", "doc_sep", "val_frac",
            "device", "precision", "threads")  # fmt: skip


def _picked(cat: dict[str, Any]) -> list[str]:
    return [*SETTINGS, *(n for n, d in cat.items() if d.owners[0].startswith("cell:"))]


OVERRIDE = {  # what differs here from charrnn train's help
    "hidden": {"help": "Units per layer (when --params is not given)."},
    "time": {"help": "Wall-clock budget of each kind (90s, 1m, 5m).", "show_default": DEFAULT_BUDGET},
    "steps": {"help": "Steps of each kind (instead of, or besides, --time).", "show_default": False},
    "seed": {"help": "Random seed, the same for every kind."},
    "doc_sep": {"help": "Split into documents: line, blank, file, or a separator line."},
    "precision": {"help": "As for charrnn train."},
}
OWN = [
    own("paths", Annotated[Optional[list[str]], typer.Argument(help=f"Text files, folders or a built-in corpus. Default: {DEFAULT_CORPUS}.", show_default=False, autocompletion=complete.corpora)]),
    own("cells", Annotated[str, typer.Option(help="The kinds to compare, separated by commas.", autocompletion=complete.cell_lists, rich_help_panel=P_MODEL)], DEFAULT_CELLS),
    own("params", Annotated[Optional[str], typer.Option(help="Size each kind to about this many trained parameters (500k, 1.2M); else --layers x --hidden.", rich_help_panel=P_MODEL, show_default=False)]),
    own("name", Annotated[Optional[str], typer.Option(help="Folder of the comparison under CHECKPOINTS (default: compare-corpus-time); a run per kind inside.", rich_help_panel=P_OUT)]),
    own("checkpoints", CheckpointsOpt, DEFAULT_ROOT),
    own("json_path", Annotated[Optional[Path], typer.Option("--json", help="Where to write one JSON line per row (default: compare.jsonl in the comparison's folder).", rich_help_panel=P_OUT, show_default=False)]),
    own("verbose", Annotated[bool, typer.Option("--verbose", "-v", help="Show every evaluation of every run.", rich_help_panel=P_OUT)], False),
]  # fmt: skip


def _compare(values: dict[str, Any], given: set[str], face: dict[str, Any]) -> None:
    from ..runtime import distributed

    if distributed.launched():
        raise ConfigError("charrnn compare runs in a single process; drop torchrun (train one kind under torchrun instead).")
    cells = face["cells"]  # a file may list them: cells = ["rnn", "lstm"]
    kinds = parse_cells(",".join(map(str, cells)) if isinstance(cells, list) else str(cells))
    target = parse_count(str(face["params"])) if face["params"] is not None else None
    if "time" not in values and "steps" not in values:
        values = {**values, "time": DEFAULT_BUDGET}
    data, model, tcfg = build_configs({**values, "sample_chars": 0})
    data.validate()
    tcfg.validate()
    base = ModelConfig(**{**vars(model), "options": {}})
    options = dict(model.options)  # the kinds' own options given: each cell takes those it owns
    from ..data import window  # (numpy: not for --help)

    tcfg, line = window.fit(data.paths, tcfg, given)  # on a long-range corpus, a window that spans its dependencies
    if line:
        out.print(f"[yellow]{escape(line)}[/]")
    stem = re.sub(r"[:=,]+", "-", Path(data.paths[0]).stem if data.paths else "") or "corpus"  # longrange-copy:gap=200
    name = face["name"] or f"compare-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = Path(face["checkpoints"]) / name
    jsonl = face["json_path"] or folder / "compare.jsonl"
    _run(kinds, target, data, base, tcfg, options, folder, Path(face["checkpoints"]), jsonl, face["verbose"])


compare = Generated(
    "compare",
    """Train several kinds of recurrent net on one corpus, each for the same budget, and
    compare them: parameters, speed, validation bits/char, how far back the gradient
    reaches, a sample; with n-gram reference rows (and exact ones on the long-range corpora).""",
    OWN, _compare, pick=_picked, override=OVERRIDE, file_keys=("cells", "params"),
)  # fmt: skip
app.command("compare", cls=Command)(compare)


def _run(kinds: tuple[str, ...], target: int | None, data: DataConfig, base: ModelConfig, tcfg: TrainConfig, options: dict[str, Any],
         folder: Path, root: Path, jsonl: Path, verbose: bool) -> None:  # fmt: skip
    from .. import compare as cmp
    from ..training import plan

    for cell in kinds:
        if (folder / cell / "last.pt").exists():
            raise ConfigError(f"{folder / cell} already holds a run; give the comparison another --name.")
    corpus = plan.open_data(plan.RunPlan(base, data, tcfg, folder, root))  # once: every kind trains on this split
    out.print(escape(corpus.summary()))
    sized = cmp.configs(kinds, base, options, corpus.tokenizer.vocab_size, target)
    budget = " or ".join(x for x in (format_duration(tcfg.time_s) if tcfg.time_s else "", f"{tcfg.steps:,} steps" if tcfg.steps else "") if x)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.print("[yellow]stopping: this run saves a checkpoint, then the table shows what finished (Ctrl-C again to quit at once)[/]")

    rows: list[Any] = []
    old = signal.signal(signal.SIGINT, on_signal)
    try:
        for i, (cfg, note) in enumerate(sized, 1):
            trained, total = cmp.trained_params(ModelConfig(**{**vars(cfg), "vocab_size": corpus.tokenizer.vocab_size}))
            out.print(f"[{i}/{len(sized)}] {escape(cfg.summary())}: {trained:,} trained parameters of {total:,}; {budget}")
            sinks = [PlainSink(err)] if verbose else []
            row = cmp.train_and_measure(cfg, note, data, tcfg, corpus, folder / cfg.cell, root, stop, sinks)
            rows.append(row)
            out.print(f"      {_bpc(row.val_bpc)} bits/char, {si(row.chars_per_s or 0)} chars/s, {row.steps:,} steps")
            if stop.is_set():
                break
    finally:
        signal.signal(signal.SIGINT, old)
    refs = cmp.ngram_rows(corpus) + cmp.longrange_rows(data, corpus, tcfg.seq_len)
    rows += refs
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    jsonl.write_text("".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out.print()
    out.print(table(rows))
    for line in footnotes(rows):
        out.print(escape(line))
    out.print(f"[dim]runs in {escape(str(folder))}/<cell> (charrnn sample / inspect / info them); rows in {escape(str(jsonl))}[/]")
    if stop.is_set():
        raise typer.Exit(130)


def _bpc(x: float | None) -> str:
    return f"{x:.3f}" if x is not None else "—"


def _reach(r: Any) -> str:
    if r.kind != "model" or not r.grad_span:
        return ""
    return str(r.grad_reach) if r.grad_reach is not None else f"> {r.grad_span}"


def table(rows: list[Any]) -> Table:
    t = Table(box=None, pad_edge=False, title_justify="left")
    # short headers, and every column but the sample as wide as its widest cell: an 80-column
    # terminal (or a pipe) then loses only part of the sample
    heads = (("model", "left"), ("trained", "right"), ("total", "right"), ("chars/s", "right"), ("steps", "right"),
             ("bits/char", "right"), ("÷1000 at", "right"), ("sample", "left"))  # fmt: skip
    cells = [_cells(r) for r in rows]
    for j, (col, just) in enumerate(heads):
        wide = max([len(col), *(len(c[j]) for c in cells)]) if col != "sample" else None
        t.add_column(col, justify=just, no_wrap=col != "sample", min_width=wide)  # type: ignore[arg-type]
    kind = None
    for r in rows:
        if kind is not None and r.kind != kind:
            t.add_section()
        kind = r.kind
        t.add_row(*(escape(c) for c in _cells(r)))
    return t


def _cells(r: Any) -> list[str]:
    if r.kind == "model":
        sample = r.sample.replace("\n", "↵")[:40]
        return [r.name, f"{r.trained_params:,}", f"{r.params:,}", si(r.chars_per_s or 0), f"{r.steps:,}", _bpc(r.val_bpc), _reach(r), sample]
    label = f"{r.name} (counts)" if r.kind == "ngram" else f"{r.name} (exact)"
    return [label, "", "", "", "", _bpc(r.val_bpc), "", ""]


def footnotes(rows: list[Any]) -> list[str]:
    """What the table cannot say in its cells: capped sizes, closed-form fits, exposure bias."""
    lines = []
    bigram = next((r.val_bpc for r in rows if r.kind == "ngram" and r.name == "bigram"), None)
    for r in rows:
        if r.kind != "model":
            continue
        if r.notes.get("note"):
            lines.append(f"{r.name}: {r.notes['note']}")
        lines += [f"{r.name}: {m}" for m in r.notes.get("log", [])]
        if "dependency_gradient" in r.notes:
            lines.append(dependency_line(r.name, r.notes["dependency_gradient"]))
        if "exposure_bias_bpc" in r.notes:
            n = r.notes
            versus = f"; the bigram model: {bigram:.3f}" if bigram is not None else ""
            lines.append(
                f"{r.name}: {n['target_fed_bpc']:.3f} bits/char with the known previous character fed back (teacher forcing){versus}; "
                f"{n['model_fed_bpc']:.3f} with its own output fed back: exposure bias {n['exposure_bias_bpc']:+.3f}"
            )
    return lines


def dependency_line(name: str, g: dict[str, Any]) -> str:
    """The gradient through time at a long-range corpus's scale, for one row."""
    reach = f"it falls 1000x within {g['reach']} steps" if g["reach"] is not None else f"it does not fall 1000x within {g['span']} steps"
    return (f"{name}: from a character that needs memory, the gradient |dL/dh| {g['distance']} steps back (the mean dependency) "
            f"is {g['ratio']:.1e} of its value at the answer; {reach}")
