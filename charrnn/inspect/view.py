"""`charrnn inspect` in the terminal: pure functions from the probe's arrays to Rich renderables.

Nothing here runs a model or prints; the command builds these and prints them,
and tests read their text and styles. The colouring follows Karpathy, Johnson &
Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015): every
character's background is one unit's value after reading it, blue for -1 (or a
shut gate), white for 0, red for +1 (or an open gate). In a terminal with 256 or
16 colours the scales come from colours it has (inspect/palette.py); `depth` is the
printing console's (palette.depth_of(console.color_system)).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from rich.color import Color
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from ..models import registry
from .stats import UnitScore, decay_per_step, next_token_probs, top_predictions
from .trace import Activations
from .palette import LIGHT_DIVERGING, TRAFFIC, TRUECOLOR, lightness

BLUE, WHITE, RED = (31, 119, 180), (255, 255, 255), (214, 39, 40)
LOW, MID, HIGH = (214, 39, 40), (255, 221, 87), (44, 160, 44)  # improbable, middling, probable
SPARK = " ▁▂▃▄▅▆▇█"


def visible(s: str) -> str:
    """A token as it reads in a table cell: whitespace and control characters made visible."""
    names = {"\n": "↵", " ": "␣", "\t": "⇥", "\r": "␍"}
    return "".join(names.get(ch, ch if ch.isprintable() else f"\\x{ord(ch):02x}") for ch in s) or "∅"


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], w: float) -> Color:
    w = min(max(w, 0.0), 1.0)
    return Color.from_rgb(*(round(x + (y - x) * w) for x, y in zip(a, b)))


def diverging(v: float, depth: str = TRUECOLOR) -> Color:
    """-1 blue, 0 white, +1 red."""
    if not math.isfinite(v):
        v = 0.0
    if depth != TRUECOLOR:
        return LIGHT_DIVERGING.color((v + 1) / 2, depth)
    return _mix(WHITE, RED, v) if v >= 0 else _mix(WHITE, BLUE, -v)


def probable(p: float, depth: str = TRUECOLOR) -> Color:
    """0 red, 0.5 yellow, 1 green."""
    if depth != TRUECOLOR:
        return TRAFFIC.color(p, depth)
    return _mix(LOW, MID, 2 * p) if p < 0.5 else _mix(MID, HIGH, 2 * p - 1)


def scaled(range_: str, values: np.ndarray) -> np.ndarray:
    """Any signal mapped onto [-1, 1] for colouring: gates 0..1 stretched, unbounded
    signals (an LSTM's cell, a pre-activation) through tanh."""
    if range_ == registry.GATE:
        return 2 * values - 1
    if range_ == registry.FREE:
        return np.tanh(values)
    return values


def on(color: Color | None) -> str:
    """Black text, or white where the background is too dark for it (16-colour blue and red)."""
    return "white" if color is not None and lightness(tuple(color.triplet or color.get_truecolor())) < 40 else "black"


def colored_text(tokens: Sequence[str], colors: Sequence[Color | None], marks: Sequence[bool] | None = None) -> Text:
    """The text, each token on its own background. A newline token shows as ↵ and
    then breaks the line; `marks` underlines tokens (inside a --find match)."""
    text = Text(no_wrap=False)
    for t, (tok, color) in enumerate(zip(tokens, colors)):
        style = Style(color=on(color), bgcolor=color, underline=bool(marks is not None and marks[t])) if color else Style()
        shown = tok.replace("\t", "⇥").replace("\r", "␍")
        shown = "".join(ch if ch.isprintable() or ch == "\n" else "·" for ch in shown)
        for j, part in enumerate(shown.split("\n")):
            if j:
                text.append("↵", style)
                text.append("\n")
            if part:
                text.append(part, style)
    return text


def unit_view(acts: Activations, what: str, layer: int, unit: int, note: str = "", depth: str = TRUECOLOR) -> RenderableType:
    v = acts.signals[what][layer, :, unit]  # (T,)
    range_ = registry.range_of(acts.cell, what)
    how = f", coloured by tanh({what})" if range_ == registry.FREE else ""
    title = Text.assemble((f"layer {layer}, unit {unit}, {what}", "bold"), f"{how}{note}")
    text = colored_text(acts.tokens, [diverging(x, depth) for x in scaled(range_, v)])
    return Group(title, text, legend(range_, v, depth))


def legend(range_: str, v: np.ndarray, depth: str = TRUECOLOR) -> Text:
    gate = range_ == registry.GATE
    lo, hi = ("0 shut", "1 open") if gate else ("-1", "+1")
    t = Text()
    t.append("scale: ", style="dim")
    t.append(f" {lo} ", Style(color=on(diverging(-1, depth)), bgcolor=diverging(-1, depth)))
    t.append("  ", Style(bgcolor=diverging(-0.5, depth)))
    t.append(" 0.5 " if gate else " 0 ", Style(color="black", bgcolor=diverging(0, depth)))
    t.append("  ", Style(bgcolor=diverging(0.5, depth)))
    t.append(f" {hi} ", Style(color=on(diverging(1, depth)), bgcolor=diverging(1, depth)))
    t.append(f"   this unit: min {v.min():+.3f}, mean {v.mean():+.3f}, max {v.max():+.3f}", style="dim")
    return t


def probability_view(acts: Activations, depth: str = TRUECOLOR) -> RenderableType:
    """The text coloured by the probability the model gave each character before it came."""
    p = next_token_probs(acts)
    text = colored_text(acts.tokens, [None] + [probable(float(x), depth) for x in p[1:]])
    bits = -np.log2(np.clip(p[1:], 1e-12, 1))
    title = Text.assemble(
        ("how expected each character was", "bold"), ": p(token | the text before it), green likely, red surprising"
    )
    foot = Text(f"mean {bits.mean():.3f} bits/token over {len(bits)} predictions" if len(bits) else "", style="dim")
    return Group(title, text, foot)


def top_k_table(acts: Activations, at: int, k: int) -> RenderableType:
    """The k most likely next tokens after position `at`, with bars."""
    nxt = visible(acts.tokens[at + 1]) if at + 1 < len(acts.tokens) else None
    end = int(acts.offsets[at + 1]) if acts.offsets is not None else at + 1
    read = visible(acts.text[max(0, end - 24) : end])
    title = f"next after position {at} (…{read})" + (f"; the text goes on with {nxt}" if nxt else ", the end of the text")
    table = Table(box=None, pad_edge=False)
    table.add_column("rank", justify="right")
    table.add_column("token")
    table.add_column("prob", justify="right")
    table.add_column("")
    for r, p in enumerate(top_predictions(acts, at, k), 1):
        bar = "█" * max(1, round(30 * p.prob)) if p.prob >= 0.005 else ""
        hit = nxt is not None and visible(p.token) == nxt
        table.add_row(str(r), Text(visible(p.token), style="bold green" if hit else ""), f"{p.prob:.1%}", Text(bar, style="cyan"))
    return titled(title, table)


def along_table(acts: Activations, k: int, depth: str = TRUECOLOR) -> RenderableType:
    """One row per position: the token read, the next one, its probability and the top k."""
    p_next = next_token_probs(acts)
    table = Table(box=None, pad_edge=False)
    for name, just in (("t", "right"), ("read", "left"), ("next", "left"), ("p(next)", "right"), (f"top {k}", "left")):
        table.add_column(name, justify=just)  # type: ignore[arg-type]
    for t in range(len(acts.tokens)):
        has_next = t + 1 < len(acts.tokens)
        p = float(p_next[t + 1]) if has_next else None
        top = "  ".join(f"{visible(q.token)} {q.prob:.0%}" for q in top_predictions(acts, t, k))
        table.add_row(
            str(t), visible(acts.tokens[t]), visible(acts.tokens[t + 1]) if has_next else "",
            Text(f"{p:.1%}", style=Style(color=probable(p, depth))) if p is not None else Text(""), top,
        )  # fmt: skip
    return titled("top predictions along the text", table)


def spark(fractions: np.ndarray, bins: int = 10) -> str:
    """A histogram of per-unit fractions in [0, 1] as one line of block characters."""
    counts, _ = np.histogram(fractions, bins=bins, range=(0.0, 1.0))
    top = counts.max() or 1
    return "".join(SPARK[0] if c == 0 else SPARK[max(1, round(8 * c / top))] for c in counts)


def saturation_table(
    sat: dict[str, np.ndarray], low: str = "< 0.1", high: str = "> 0.9", title: str = "gate saturation: fraction of timesteps per unit"
) -> RenderableType:
    """Per gate and layer: how much of the time units sit shut (left-saturated) or
    open (right-saturated), and how the units spread between the two."""
    table = Table(box=None, pad_edge=False)
    table.add_column("gate")
    table.add_column("layer", justify="right")
    table.add_column(f"mean {low}", justify="right")
    table.add_column(f"mean {high}", justify="right")
    table.add_column("units mostly\nleft / right", justify="right")
    table.add_column(f"units by time {low}\n0% {'·' * 6} 100%")
    table.add_column(f"units by time {high}\n0% {'·' * 6} 100%")
    for gate, s in sat.items():  # s: (L, H, 2)
        for k in range(s.shape[0]):
            left, right = s[k, :, 0], s[k, :, 1]
            table.add_row(
                gate, str(k), f"{left.mean():.1%}", f"{right.mean():.1%}", f"{int((left > 0.5).sum())} / {int((right > 0.5).sum())}",
                Text(spark(left), style="blue"), Text(spark(right), style="red"),
            )  # fmt: skip
    return titled(title, table)


def find_view(acts: Activations, pattern: str, found: Sequence[UnitScore], inside: np.ndarray, depth: str = TRUECOLOR) -> RenderableType:
    """The ranked units, then the text coloured by the best one with the matches underlined."""
    table = Table(box=None, pad_edge=False)
    for name, just in (("#", "right"), ("layer", "right"), ("unit", "right"), ("what", "left"), ("score", "right"), ("AUC", "right"),
                       ("mean inside", "right"), ("mean outside", "right"), ("", "left")):  # fmt: skip
        table.add_column(name, justify=just)  # type: ignore[arg-type]
    for r, u in enumerate(found, 1):
        table.add_row(
            str(r), str(u.layer), str(u.unit), u.what, Text(f"{u.score:+.3f}", style="red" if u.score > 0 else "blue"),
            f"{u.auc:.3f}", f"{u.mean_in:+.3f}", f"{u.mean_out:+.3f}", "higher inside" if u.score > 0 else "lower inside",
        )  # fmt: skip
    title = f"units that separate --find '{pattern}' ({int(inside.sum())} of {len(inside)} positions inside)"
    parts: list[RenderableType] = [
        titled(title, table),
        Text("score = 2·AUC − 1: +1 when every position inside is above every one outside, −1 when below", style="dim"),
    ]
    if found:
        b = found[0]
        v = scaled(registry.range_of(acts.cell, b.what), acts.signals[b.what][b.layer, :, b.unit])
        parts += [
            Text.assemble(("best: ", "bold"), f"layer {b.layer}, unit {b.unit}, {b.what} (matches underlined)"),
            colored_text(acts.tokens, [diverging(float(x), depth) for x in v], marks=inside),
        ]
    return Group(*parts)


def distances(n: int) -> list[int]:
    """Steps back to show out of 0..n-1: every one at first, then about geometric."""
    out, d = [], 0
    while d < n:
        out.append(d)
        d = d + 1 if d < 4 else int(d * 1.5)
    if out[-1] != n - 1:
        out.append(n - 1)
    return out


def gradient_view(flow: dict[str, np.ndarray], bar: int = 24) -> RenderableType:
    """|dL_T/dh_t| against T - t, one column per layer (and c for an LSTM), as bars
    on a log scale shared by all columns."""
    series = [(f"{n} layer {k}", v[k][::-1]) for n, v in flow.items() for k in range(v.shape[0])]  # by distance
    if not series or len(series[0][1]) == 0:
        return Text("no gradients: the text is too short.")
    allv = np.concatenate([s for _, s in series])
    pos = allv[allv > 0]
    hi = float(pos.max()) if len(pos) else 1.0
    lo = float(pos.min()) if len(pos) else 1.0
    span = max(math.log10(hi) - math.log10(lo), 1e-9)
    table = Table(box=None, pad_edge=False)
    table.add_column("T−t", justify="right")
    for name, _ in series:
        table.add_column(name)
    for d in distances(len(series[0][1])):
        cells = []
        for _, s in series:
            g = float(s[d])
            if g > 0:
                n = 1 + round((bar - 1) * (math.log10(g) - math.log10(lo)) / span)
                cells.append(Text.assemble(("█" * n, "cyan"), ("·" * (bar - n), "dim"), f" {g:.1e}"))
            else:
                cells.append(Text.assemble(("·" * bar, "dim"), " 0"))
        table.add_row(str(d), *cells)
    rates = []
    for _, s in series:
        r = decay_per_step(s[::-1])
        rates.append("" if r is None else f"×{r:.3f} a step back")
    table.add_row(Text("fit", style="bold"), *[Text(r, style="bold") for r in rates])
    foot = Text(
        f"log scale: a bar runs from {lo:.1e} to {hi:.1e}; 'fit' is the geometric rate of change per step back "
        "(below 1 the gradient vanishes, above 1 it explodes)",
        style="dim",
    )
    return Group(titled("gradient through time: ‖∂L_T/∂h_t‖, L_T the loss of the last character", table), foot)


def titled(title: str, table: Table) -> RenderableType:
    """A bold title line over a table (a Table's own title wraps to the table's width)."""
    return Group(Text(title, style="bold"), table)


def header(source: str, acts: Activations, model: str) -> Text:
    unit = "characters" if all(len(t) <= 1 for t in acts.tokens) else "tokens"
    layers = "layer 0" if acts.layers == 1 else f"layers 0-{acts.layers - 1}"
    return Text.assemble(
        ("inspect ", "bold"), source, f": {model}; {len(acts.tokens)} {unit}; {layers}, units 0-{acts.hidden - 1} (0-based)"
    )
