"""`inspect --json`: every array of an inspection as one JSON document, for other tools.

Format "charrnn-inspect", version 2 (version 1 had one list of saturation thresholds;
version 2 names each signal's range and thresholds, so any model kind reads alike).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from ..models import registry
from .stats import UnitScore, next_token_probs, saturating, saturation
from .trace import Activations

FORMAT, VERSION = "charrnn-inspect", 2


def _array(a: np.ndarray) -> str:
    """Nested JSON lists, floats with 7 significant digits (float32's own precision),
    NaN and infinities as null. Formats a row at a time: large arrays are most of a file."""
    a = np.asarray(a)
    if a.ndim == 0 or a.size == 0:
        return json.dumps(a.tolist())
    rows = a.reshape(-1, a.shape[-1])
    if a.dtype.kind == "b":
        lines = ["[" + ",".join("true" if x else "false" for x in r) + "]" for r in rows]
    else:
        kind = "%.7g" if a.dtype.kind == "f" else "%d"
        fmt = "[" + ",".join([kind] * rows.shape[1]) + "]"
        finite = np.isfinite(rows).all(axis=1) if a.dtype.kind == "f" else np.ones(len(rows), bool)
        lines = [
            fmt % tuple(r.tolist()) if ok else json.dumps([x if np.isfinite(x) else None for x in r.tolist()])
            for r, ok in zip(rows, finite)
        ]
    for n in reversed(a.shape[:-1]):  # group rows into the outer dimensions, innermost first
        lines = ["[" + ",".join(lines[i : i + n]) + "]" for i in range(0, len(lines), n)]
    return lines[0]


def to_json(acts: Activations, meta: dict[str, Any] | None = None, gradients: dict[str, np.ndarray] | None = None,
            found: Sequence[UnitScore] = (), pattern: str | None = None, inside: np.ndarray | None = None) -> str:  # fmt: skip
    """Every array of an inspection as one JSON document, for other tools. Arrays are
    nested lists; `shapes` and `dims` say how to read each, indices 0-based."""
    arrays: dict[str, tuple[np.ndarray, list[str]]] = {
        f"signals.{n}": (v, ["layer", "t", "unit"]) for n, v in acts.signals.items()
    }
    for n, v in acts.units.items():
        arrays[f"units.{n}"] = (v, ["layer", "unit"])
    arrays["probs"] = (acts.probs, ["t", "next_token"])
    arrays["next_token_prob"] = (next_token_probs(acts), ["t"])
    for n, v in saturation(acts).items():
        arrays[f"saturation.{n}"] = (v, ["layer", "unit", "low_high"])
    for n, v in (gradients or {}).items():
        arrays[f"gradients.{n}"] = (v, ["layer", "t"])
    if inside is not None:
        arrays["find.inside"] = (inside, ["t"])
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "indexing": "0-based",
        **(meta or {}),
        "cell": acts.cell,
        "layers": acts.layers,
        "hidden": acts.hidden,
        "text": acts.text,
        "tokens": list(acts.tokens),
        "ids": acts.ids.tolist(),
        "offsets": None if acts.offsets is None else acts.offsets.tolist(),
        "vocab": list(acts.vocab),
        "signal_ranges": {n: registry.range_of(acts.cell, n) for n in acts.signals},  # gate (0,1), tanh (-1,1), free
        "saturation_thresholds": {n: list(registry.THRESHOLDS[registry.range_of(acts.cell, n)]) for n in saturating(acts.cell, acts.signals)},
        "gradients_note": "gradients.NAME[layer][t] = |dL/dNAME_t|, L the loss of predicting the last token from the rest; "
        "entry t lies len - 1 - t steps back from that loss",
        "find": None if pattern is None else {"pattern": pattern, "units": [vars(u) for u in found]},
        "shapes": {k: list(np.shape(v)) for k, (v, _) in arrays.items()},
        "dims": {k: d for k, (_, d) in arrays.items()},
    }
    head = json.dumps(doc, ensure_ascii=False)
    body = ",".join(f"{json.dumps(k)}:{_array(v)}" for k, (v, _) in arrays.items())
    return head[:-1] + ',"arrays":{' + body + "}}"
