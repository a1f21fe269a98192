"""`charrnn runs`: the runs in the checkpoints folder as a table, newest first."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..config import format_duration
from .common import DEFAULT_ROOT, CheckpointsOpt, Command, app, out, user_errors


@dataclass(frozen=True)
class RunRow:
    """One run folder as `charrnn runs` lists it: its checkpoint's summary in a few
    columns, or why its checkpoint could not be read."""

    name: str
    path: str
    modified: float  # seconds since the epoch, of its newest checkpoint
    error: str | None = None
    model: str = ""
    tokenizer: str = ""
    corpus: str = ""
    step: int = 0
    elapsed_s: float = 0.0
    best_val_bpc: float | None = None
    logs: str | None = None  # where its TensorBoard logs are (training/tensorboard.py), or None

    def to_json(self) -> dict[str, Any]:
        keep = ("name", "path", "modified", "logs", "error") if self.error is not None else [f.name for f in fields(self) if f.name != "error"]
        return {k: getattr(self, k) for k in keep}


def run_rows(root: Path) -> list[RunRow]:
    """One row per run folder under root (its last checkpoint, else its best), newest
    first; a checkpoint that cannot be read is a row that says so, not an error."""
    from ..errors import CharRNNError
    from ..training import checkpoint
    from ..training.tensorboard import logdir_of
    from ..tui.runs import list_runs

    rows = []
    for r in list_runs(root, limit=10**6):
        name, where, when = r.path.name, str(r.path), r.modified
        logs = logdir_of(r.path)
        logs = None if logs is None else str(logs)
        try:
            path = checkpoint.find(r.path, root, prefer=checkpoint.LAST)
            s = checkpoint.load(path).summary(path)
        except CharRNNError as e:
            rows.append(RunRow(name, where, when, logs=logs, error=str(e)))
            continue
        rows.append(RunRow(
            name, where, when, model=f"{s.cell} {s.layers}x{s.hidden}" + ("" if s.task == "lm" else f" ({s.task})"),
            tokenizer=f"spm {s.vocab_size}" if s.tokenizer == "spm" else str(s.tokenizer),
            corpus=", ".join(Path(p).name or p for p in s.corpus) or "?", step=s.step, elapsed_s=s.elapsed_s,
            best_val_bpc=s.best_val_bpc, logs=logs,
        ))  # fmt: skip
    return rows


@app.command(cls=Command)
@user_errors
def runs(
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """List the runs in the checkpoints folder, newest first: model, corpus, steps, time, best validation bits/char, TensorBoard logs."""
    rows = run_rows(checkpoints)
    if as_json:
        out.print_json(json.dumps([r.to_json() for r in rows]))
        return
    if not rows:
        out.print(f"no runs under {escape(str(checkpoints))}/; train one with `charrnn train`.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in [("run", "left"), ("model", "left"), ("tokenizer", "left"), ("corpus", "left"), ("steps", "right"),
                          ("time", "right"), ("best val bits/char", "right"), ("logs", "left"), ("modified", "left")]:  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.modified))
        if r.error is not None:
            table.add_row(escape(r.name), f"[red]{escape(r.error)}[/]", "", "", "", "", "", _logs(r), when)
            continue
        bpc = f"{r.best_val_bpc:.4f}" if r.best_val_bpc is not None else "-"
        table.add_row(escape(r.name), escape(r.model), escape(r.tokenizer), escape(r.corpus), f"{r.step:,}",
                      format_duration(r.elapsed_s), bpc, _logs(r), when)  # fmt: skip
    out.print(table)


def _logs(row: RunRow) -> str:
    """'tensorboard' for logs in the run's own folder, their folder when elsewhere, '-' for none."""
    if row.logs is None:
        return "-"
    logs = Path(row.logs)
    return "tensorboard" if logs == Path(row.path) / "tensorboard" else escape(str(logs))
