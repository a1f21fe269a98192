"""`charrnn info`: what a checkpoint holds, for people and for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..config import format_duration
from ..training.telemetry import metric_text
from .common import DEFAULT_ROOT, CheckpointsOpt, Command, RunArg, app, out, user_errors

if TYPE_CHECKING:
    from ..training.checkpoint import Checkpoint

MAX_LABELS = 30  # labels listed in the table


@app.command(cls=Command)
@user_errors
def info(
    run_or_checkpoint: RunArg = None,
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Show a checkpoint: config, vocabulary, parameters, steps, validation loss."""
    from ..training import checkpoint

    path = checkpoint.find(run_or_checkpoint, checkpoints, prefer=checkpoint.LAST)
    describe(path, checkpoint.load(path), out, as_json)


def describe(path: Path, ck: Checkpoint, console: Console, as_json: bool = False) -> None:
    s = ck.summary(path)
    if as_json:
        console.print_json(json.dumps(s.to_json()))
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()

    def row(k: str, v: Any) -> None:
        table.add_row(k, escape(str(v)))

    row("checkpoint", s.checkpoint)
    row("model", s.summary)
    frozen = s.parameters - s.trained_parameters
    row("parameters", f"{s.parameters:,}" + (f" ({s.trained_parameters:,} trained, {frozen:,} frozen)" if frozen else ""))
    eod = "with an end-of-document token" if s.end_of_document_token else "no documents"
    kind = f"sentencepiece {s.spm_type} with byte fallback" if s.tokenizer == "spm" else f"{s.tokenizer} tokenizer"
    if s.tokenizer == "tree":
        row("vocabulary", f"{s.vocab_size} node labels; {s.classes} classes")
    else:
        row("vocabulary", f"{s.vocab_size} ({kind}, {eod})")
    if s.chars_per_token:
        row("chars/token", f"{s.chars_per_token:.3f}")
    corpus = ", ".join(s.corpus) or "?"
    sizes = f" ({s.train_chars:,} train / {s.val_chars:,} validation chars)" if s.train_chars is not None else ""
    row("corpus", corpus + sizes + (f", documents by {s.doc_sep!r}" if s.doc_sep else ""))
    if s.pairs:
        p = s.pairs
        row("pairs", f"{p.train:,} train / {p.val:,} validation; sources up to {p.train_max_source} chars in training")
    row("trained", f"{s.step:,} steps, epoch {s.epoch}, {format_duration(s.elapsed_s)}")
    if s.task == "lm":
        batch = f"{s.batch_size} x {s.seq_len}"
    else:
        batch = f"{s.batch_size} {'trees' if s.task == 'tree' else 'pairs' if s.pairs else 'documents'}"
    row("batch", f"{batch}, lr {s.lr}, {s.precision} on {s.device_trained_on}")
    unit = s.unit
    if s.recipe_note:
        row("defaults", s.recipe_note)
    if s.settings:
        from ..runconfig import changed

        row("options", changed(s.settings) or "the defaults")
    if s.best_val_loss is not None:
        bpc = f", {s.best_val_bpc:.4f} bits/char, perplexity {s.best_val_ppl:.2f}" if s.best_val_bpc is not None else ""
        row("best val", f"{s.best_val_loss:.4f} nats/{unit}{bpc}")
    if s.last_val_loss is not None:
        bpc = f", {s.last_val_bpc:.4f} bits/char" if s.last_val_bpc is not None else ""
        metrics = "".join(f", {metric_text(k, v)}" for k, v in s.last_metrics.items())
        none = f" ({s.last_val_bpc_no_label:.4f} with no label)" if s.last_val_bpc_no_label is not None else ""
        row("last val", f"{s.last_val_loss:.4f} nats/{unit}{bpc}{none}{metrics}")
    for k, v in s.kind.items():
        row(k, v)
    if s.labels is not None:
        labels = s.labels
        row("labels", f"{len(labels)} from --label-from {s.label_from} (documents / characters in the corpus)")
        width = max(len(n) for n in labels)
        for name, c in list(labels.items())[:MAX_LABELS]:
            row("", f"  {name:<{width}}  {c.docs:>9,} docs  {c.chars:>12,} chars")
        if len(labels) > MAX_LABELS:
            row("", f"  and {len(labels) - MAX_LABELS} more (--json lists them all)")
    console.print(table)
