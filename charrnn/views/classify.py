"""A classifier in the terminal: its answer for a text, how the answer moved as the
characters arrived (`predict --trace`, the TUI's activations screen), and the
end-of-run report (accuracy, precision and recall per label, the confusion
matrix, the n-gram baseline beside it)."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from rich.console import RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ..inspect.view import SPARK, probable, visible
from ..tasks.reports import ClassReport, ClassTrace

PALETTE = ("#5fafff", "#ffaf00", "#87d75f", "#ff5f87", "#af87ff", "#5fd7d7")
TRACED = 5  # labels drawn along the text
WIDTH = 64  # characters per row of a trace
MATRIX_MOST = 16  # a confusion matrix with more labels is left to metrics.jsonl


def bar(p: float, width: int = 24) -> str:
    full = p * width
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


def spark_row(values: np.ndarray) -> str:
    """One cell per value in [0, 1]: a block as high as the value."""
    return "".join(SPARK[int(round(min(max(float(v), 0.0), 1.0) * (len(SPARK) - 1)))] for v in values)


def prediction(p: Any, opts: Any) -> Iterable[RenderableType]:
    """`charrnn predict` details: the probabilities as bars, then (--trace) the answer along the text."""
    d: ClassTrace = p.details
    ranked = d.ranked()
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    for k, (label, prob) in enumerate(ranked[:TRACED]):
        table.add_row(label, f"{prob:.3f}", Text(bar(prob), style=PALETTE[k % len(PALETTE)]))
    if len(ranked) > TRACED:
        table.add_row(Text(f"and {len(ranked) - TRACED} more", style="dim"), "", "")
    yield table
    if d.steps is not None:
        yield from trace(d)


def trace(d: ClassTrace, width: int = WIDTH) -> Iterable[RenderableType]:
    """P(label | the first t characters) for the most probable labels, one row each, under the text."""
    top = [d.labels.index(label) for label, _ in d.ranked()[:TRACED]]
    name_w = max(4, *(len(d.labels[c]) for c in top))
    yield Text(f"as the text arrives: P(label | the first t characters){', and the attention over it' if d.attention is not None else ''}",
               style="dim")  # fmt: skip
    T = len(d.tokens)
    for at in range(0, T, width):
        cut = slice(at, min(T, at + width))
        line = Text(f"{'text':>{name_w}} ", style="dim")
        line.append("".join(visible(t)[:1] for t in d.tokens[cut]))
        rows = [line]
        for k, c in enumerate(top):
            row = Text(f"{d.labels[c]:>{name_w}} ", style="bold")
            row.append(spark_row(d.steps[cut, c]), style=PALETTE[k % len(PALETTE)])
            rows.append(row)
        if d.attention is not None:
            row = Text(f"{'attn':>{name_w}} ", style="dim")
            row.append(spark_row(d.attention[cut] / max(float(d.attention.max()), 1e-12)), style="white")
            rows.append(row)
        yield Text("\n").join(rows)


def report(r: ClassReport) -> Iterable[RenderableType]:
    """The end-of-run report."""
    head = Text(f"validation: {r.n:,} documents; ", style="bold")
    head.append(f"accuracy {r.accuracy:.1%}", style="bold green")
    if r.baseline is not None:
        head.append(f" · {r.baseline_name} {r.baseline.accuracy:.1%}")
    head.append(f" · majority class {r.majority:.1%}", style="dim")
    yield head
    table = Table(title="per label", title_justify="left", title_style="dim", pad_edge=False)
    table.add_column("label", style="bold")
    table.add_column("documents", justify="right")
    table.add_column("precision", justify="right")
    table.add_column("recall", justify="right")
    if r.baseline is not None:
        table.add_column("n-gram precision", justify="right", style="dim")
        table.add_column("n-gram recall", justify="right", style="dim")
    for i, label in enumerate(r.labels):
        cells = [label, f"{sum(r.confusion[i]):,}", _pct(r.precision[i]), _pct(r.recall[i])]
        if r.baseline is not None:
            cells += [_pct(r.baseline.precision[i]), _pct(r.baseline.recall[i])]
        table.add_row(*cells)
    yield table
    yield confusion(r)


def _pct(v: float) -> Text:
    return Text(f"{v:.1%}", style=Style(color=probable(v)))


def confusion(r: ClassReport) -> RenderableType:
    """Rows: the true label; columns: the label predicted; the diagonal is right."""
    if len(r.labels) > MATRIX_MOST:
        return Text(f"the {len(r.labels)}x{len(r.labels)} confusion matrix is in metrics.jsonl (report.confusion).", style="dim")
    table = Table(title="confusion: true label down, predicted across", title_justify="left", title_style="dim", pad_edge=False)
    table.add_column("", style="bold")
    for label in r.labels:
        table.add_column(label[:8], justify="right")
    for i, label in enumerate(r.labels):
        row = r.confusion[i]
        table.add_row(label, *(Text(f"{v:,}", style=("bold green" if i == j else "red") if v else "dim") for j, v in enumerate(row)))
    return table
