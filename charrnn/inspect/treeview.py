"""Tree runs in the terminal: `charrnn predict`'s tree of node values, `charrnn inspect`'s
node states, the TUI's tree of a probe.

Pure functions from an inspect.treetrace.TreeActivations to Rich renderables (and
its JSON), as view.py is for a text. Each node is drawn where the tree puts it (a
Rich Tree, children under their parent), with the value the model gives its
subtree: the head, trained at the roots, read at every node.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from rich.tree import Tree as RichTree

from ..models import registry
from .export import _array
from .view import diverging, gradient_view, legend, scaled, titled, visible

STRIP = 48  # units of a node's state drawn beside it, at most


def _node(acts: Any, t: int, label: Text | None = None) -> Text:
    """'MIN → 4 (95%) ✓': a node's label, what the model gives its subtree, and whether that is its ListOps value."""
    pred, p, truth = acts.predicted[t], float(acts.probs[t].max()), acts.truth[t]
    text = label if label is not None else Text(acts.tokens[t], style="bold" if _inner(acts, t) else "")
    style = "" if truth is None else ("green" if pred == truth else "red")
    text.append(" → ")
    text.append(f"{visible(pred)} ({p:.0%})", style=style)
    if truth is not None:
        text.append(" ✓" if pred == truth else f" ✗ {truth}", style=style)
    return text


def _inner(acts: Any, t: int) -> bool:
    return t + 1 < len(acts.parent) and acts.parent[t + 1] == t


def tree_view(acts: Any, labels: Sequence[Text | None] | None = None, extra: Sequence[RenderableType | None] | None = None) -> RichTree:
    """The nodes as a Rich Tree (pre-order with parents: each node hangs under its parent)."""
    made: list[RichTree] = []
    for t in range(len(acts.tokens)):
        line: RenderableType = _node(acts, t, labels[t] if labels else None)
        if extra is not None and extra[t] is not None:
            line = Text.assemble(line, "  ", extra[t])  # type: ignore[arg-type]
        made.append(RichTree(line, guide_style="dim") if t == 0 else made[int(acts.parent[t])].add(line))
    return made[0]


def prediction_view(prediction: Any, opts: Any) -> list[RenderableType]:
    """`charrnn predict` on a tree run: the tree with each node's predicted value (TaskSpec.view)."""
    acts = prediction.details
    notes = "each node: its label → the value the model gives its subtree (probability)"
    if any(v is not None for v in acts.truth):
        notes += "; ✓ or ✗ against its ListOps value"
    return [tree_view(acts), Text(notes, style="dim")]


def _strip(values: np.ndarray, range_: str) -> Text:
    """One node's state over its first units, a cell each, blue -1 white 0 red +1."""
    t = Text()
    for v in scaled(range_, values[:STRIP]):
        t.append("█", Style(color=diverging(float(v))))
    return t


def unit_labels(acts: Any, what: str, layer: int, unit: int) -> list[Text]:
    """Each node's label on the colour of one unit's value there (white where it has none)."""
    col = scaled(registry.range_of(acts.cell, what), acts.signals[what][layer, :, unit])
    return [Text(acts.tokens[t], style=Style(color="black", bgcolor=diverging(float(col[t])), bold=_inner(acts, t)))
            for t in range(len(acts.tokens))]  # fmt: skip


def state_view(acts: Any, what: str, layer: int, unit: int, note: str = "") -> RenderableType:
    """The tree with each node's label on the colour of one unit, and beside it the node's
    state over its first units: node states, node by node, where the tree puts them."""
    v = acts.signals[what][layer]  # (T, H)
    range_ = registry.range_of(acts.cell, what)
    labels = unit_labels(acts, what, layer, unit)
    strips = [None if np.isnan(v[t]).all() else _strip(v[t], range_) for t in range(len(acts.tokens))]
    shown = f"units 0-{min(STRIP, v.shape[1]) - 1}"
    how = f", coloured by tanh({what})" if range_ == registry.FREE else ""
    title = Text.assemble((f"layer {layer}, unit {unit}, {what}", "bold"), f"{how}{note}")
    sub = Text(f"each node's label on unit {unit}'s colour; beside it, the node's whole {what} ({shown})", style="dim")
    finite = v[:, unit][np.isfinite(v[:, unit])]
    parts: list[RenderableType] = [title, sub, tree_view(acts, labels, strips)]
    if len(finite):
        parts.append(legend(range_, finite))
    if np.isnan(v).any():
        parts.append(Text(f"{what} has no value where a node has no parent (the root): no strip there.", style="dim"))
    return Group(*parts)


def answer_table(acts: Any, k: int) -> RenderableType:
    """The k likeliest labels for the whole tree."""
    p = acts.probs[0]
    table = Table(box=None, pad_edge=False)
    for name, just in (("rank", "right"), ("label", "left"), ("prob", "right"), ("", "left")):
        table.add_column(name, justify=just)  # type: ignore[arg-type]
    for r, i in enumerate(np.argsort(-p)[:k], 1):
        hit = acts.truth[0] is not None and acts.vocab[i] == acts.truth[0]
        bar = "█" * max(1, round(30 * p[i])) if p[i] >= 0.005 else ""
        table.add_row(str(r), Text(visible(acts.vocab[i]), style="bold green" if hit else ""), f"{p[i]:.1%}", Text(bar, style="cyan"))
    truth = f"; its ListOps value is {acts.truth[0]}" if acts.truth[0] is not None else ""
    return titled(f"the answer for the whole tree{truth}", table)


def depth_gradients(flow: dict[str, np.ndarray], bar: int) -> RenderableType:
    """Mean |dL/dh| at each depth below the root, on gradient_view's log bars."""
    by_distance = {n: v[:, ::-1] for n, v in flow.items()}  # gradient_view reads index T-1-t as the distance
    return gradient_view(by_distance, bar, title="gradient through the tree: mean ‖∂L/∂h‖ over the nodes at each depth, "
                         "L the root's loss", axis="depth", step="level down")  # fmt: skip


def tree_json(acts: Any, meta: dict[str, Any]) -> str:
    """The traced tree as one JSON document (format charrnn-inspect-tree): nodes in
    pre-order with their parents, every signal (layer, node, unit), the head's
    probabilities at every node, and |dL/dx| at every node."""
    arrays: dict[str, tuple[np.ndarray, list[str]]] = {f"signals.{n}": (v, ["layer", "node", "unit"]) for n, v in acts.signals.items()}
    arrays["probs"] = (acts.probs, ["node", "label"])
    arrays.update({f"gradients.{n}": (v, ["layer", "node"]) for n, v in acts.grads.items()})
    nodes = [{"label": acts.tokens[t], "depth": int(acts.depth[t]), "parent": int(acts.parent[t]), "predicted": acts.predicted[t],
              "value": acts.truth[t]} for t in range(len(acts.tokens))]  # fmt: skip
    doc = {
        "format": "charrnn-inspect-tree", "version": 1, "indexing": "0-based", **meta, "cell": acts.cell, "text": acts.text,
        "labels": list(acts.vocab), "nodes": nodes, "target": acts.target,
        "signal_ranges": {n: registry.range_of(acts.cell, n) for n in acts.signals},
        "gradients_note": "gradients.NAME[layer][node] = |dL/dNAME| at the node, L the root's loss against target; "
        "signals a node lacks (a forget gate at the root) are null",
        "shapes": {k: list(np.shape(v)) for k, (v, _) in arrays.items()}, "dims": {k: d for k, (_, d) in arrays.items()},
    }  # fmt: skip
    head = json.dumps(doc, ensure_ascii=False)
    return head[:-1] + ',"arrays":{' + ",".join(f"{json.dumps(k)}:{_array(v)}" for k, (v, _) in arrays.items()) + "}}"
