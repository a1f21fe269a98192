"""Colour scales for terminals of every depth: the 256- and 16-colour scales are made of
colours those terminals have, in order of lightness and of one hue family, and survive
the trip through Rich (and Textual) unchanged; `charrnn inspect` colours with them."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from rich.color import Color, ColorSystem
from rich.console import Console

from charrnn.inspect import view
from charrnn.inspect.palette import (
    ANSI_RGB,
    DARK_DIVERGING,
    EIGHT_BIT,
    HEAT,
    LIGHT_DIVERGING,
    STANDARD,
    TRAFFIC,
    TRUECOLOR,
    depth_of,
    lab,
    lightness,
    xterm_rgb,
)
from charrnn.tui import colors

SYSTEMS = {TRUECOLOR: "truecolor", EIGHT_BIT: "256", STANDARD: "standard"}


def hue(rgb) -> float:
    _, a, b = lab(rgb)
    return math.degrees(math.atan2(b, a)) % 360


def near(h: float, target: float, within: float) -> bool:
    return abs((h - target + 180) % 360 - 180) <= within


def rgbs(ramp, depth):
    return [xterm_rgb(n) for n in ramp.numbers(depth)]


def test_xterm_colours_are_the_cube_and_the_grey_ramp():
    assert xterm_rgb(16) == (0, 0, 0) and xterm_rgb(21) == (0, 0, 255) and xterm_rgb(196) == (255, 0, 0)
    assert xterm_rgb(231) == (255, 255, 255) and xterm_rgb(232) == (8, 8, 8) and xterm_rgb(255) == (238, 238, 238)
    assert lightness((0, 0, 0)) == pytest.approx(0, abs=1e-6) and lightness((255, 255, 255)) == pytest.approx(100, abs=0.01)


@pytest.mark.parametrize("depth", [EIGHT_BIT, STANDARD])
def test_scales_run_in_order_of_lightness(depth):
    for ramp, away in ((DARK_DIVERGING, +1), (LIGHT_DIVERGING, -1)):  # dark middle: lighter outwards; light middle: darker
        L = [lightness(c) for c in rgbs(ramp, depth)]
        mid = len(L) // 2
        assert len(L) % 2 == 1
        assert all(away * (b - a) > 0 for a, b in zip(L[mid:], L[mid + 1 :])), (ramp.name, L)
        assert all(away * (a - b) > 0 for a, b in zip(L[: mid + 1], L[1:mid + 1])), (ramp.name, L)
    L = [lightness(c) for c in rgbs(HEAT, depth)]
    assert all(b > a for a, b in zip(L, L[1:])), L
    H = [hue(c) for c in rgbs(TRAFFIC, depth)]  # red, through yellow, to green: hue only ever grows
    assert all(b > a for a, b in zip(H, H[1:])), H


def test_256_colour_scales_stay_in_one_hue_family():
    """Each half of a diverging scale keeps near the hue of its true-colour end: no browns,
    teals or greens in a blue-red scale. The heat scale runs from red to yellow."""
    for ramp, low, high in ((DARK_DIVERGING, colors._BLUE, colors._RED), (LIGHT_DIVERGING, view.BLUE, view.RED)):
        cs = rgbs(ramp, EIGHT_BIT)
        mid = len(cs) // 2
        assert lab(cs[mid])[1:] == pytest.approx((0, 0), abs=2.5)  # a grey or white middle
        assert all(near(hue(c), hue(low), 30) for c in cs[:mid]), [round(hue(c)) for c in cs[:mid]]
        assert all(near(hue(c), hue(high), 15) for c in cs[mid + 1 :]), [round(hue(c)) for c in cs[mid + 1 :]]
    H = [hue(c) for c in rgbs(HEAT, EIGHT_BIT)[1:]]
    assert all(b >= a for a, b in zip(H, H[1:])) and 30 < H[0] and H[-1] < 100, H
    assert all(16 <= n <= 255 for r in (DARK_DIVERGING, HEAT, LIGHT_DIVERGING, TRAFFIC) for n in r.xterm)
    assert all(0 <= n <= 15 for r in (DARK_DIVERGING, HEAT, LIGHT_DIVERGING, TRAFFIC) for n in r.ansi)


@pytest.mark.parametrize("ramp", [DARK_DIVERGING, LIGHT_DIVERGING])
def test_values_of_opposite_sign_land_as_far_from_the_middle(ramp):
    for depth in (EIGHT_BIT, STANDARD):
        n = len(ramp.numbers(depth))
        for t in np.linspace(0, 1, 101):
            assert ramp.index(t, depth) + ramp.index(1 - t, depth) == n - 1
        assert ramp.index(0.5, depth) == n // 2 and ramp.index(0, depth) == 0 and ramp.index(1, depth) == n - 1
        assert ramp.index(float("nan"), depth) == n // 2


def test_colours_come_back_as_the_ones_meant():
    """A 256-colour entry through Textual's ANSI filter (to RGB) and Rich's downgrade is
    itself again; a 16-colour entry (an exact palette RGB) comes back as its ANSI number."""
    for ramp in (DARK_DIVERGING, HEAT, LIGHT_DIVERGING, TRAFFIC):
        for t in np.linspace(0, 1, 41):
            c = ramp.color(t, EIGHT_BIT)
            assert Color.from_triplet(c.get_truecolor()).downgrade(ColorSystem.EIGHT_BIT).number == ramp.number(t, EIGHT_BIT)
            assert ramp.color(t, STANDARD).downgrade(ColorSystem.STANDARD).number == ramp.number(t, STANDARD)
    assert [Color.from_rgb(*ANSI_RGB[n]).downgrade(ColorSystem.STANDARD).number for n in range(16)] == list(range(16))


def test_depth_of_a_console():
    assert [depth_of(s) for s in ("truecolor", "256", "standard", "windows", None)] == [TRUECOLOR, EIGHT_BIT, STANDARD, STANDARD, STANDARD]
    for depth, system in SYSTEMS.items():
        assert depth_of(Console(color_system=system, force_terminal=True).color_system) == depth  # type: ignore[arg-type]


SGR_BG = re.compile(r"\x1b\[([0-9;]*)m")


def backgrounds(ansi: str) -> list[str]:
    """Every background colour set in ANSI text: '2;r;g;b', '5;n' or an ANSI number 0-15."""
    found = []
    for params in SGR_BG.findall(ansi):
        p = params.split(";")
        i = 0
        while i < len(p):
            if p[i] == "48":
                n = 4 if p[i + 1] == "2" else 2
                found.append(";".join(p[i + 1 : i + 1 + n]))
                i += 1 + n
            elif p[i] in ("38",):
                i += 3 if p[i + 1] == "5" else 5
            elif p[i].isdigit() and (40 <= int(p[i]) <= 47 or 100 <= int(p[i]) <= 107):
                found.append(str(int(p[i]) - 40 if int(p[i]) < 100 else int(p[i]) - 92))
                i += 1
            else:
                i += 1
    return found


def wanted(ramp, depth) -> set[str]:
    if depth == EIGHT_BIT:
        return {f"5;{n}" for n in ramp.xterm}
    return {str(n) for n in ramp.ansi}


@pytest.mark.parametrize("depth", [EIGHT_BIT, STANDARD])
def test_inspect_colours_the_text_with_the_terminal_s_own_colours(depth):
    acts, _ = planted_acts()
    console = Console(file=io.StringIO(), color_system=SYSTEMS[depth], force_terminal=True, width=200)  # type: ignore[arg-type]
    console.print(view.unit_view(acts, "h", 1, 4, depth=depth))
    assert set(backgrounds(console.file.getvalue())) == wanted(LIGHT_DIVERGING, depth)  # every shade, and only those
    console = Console(file=io.StringIO(), color_system=SYSTEMS[depth], force_terminal=True, width=200)  # type: ignore[arg-type]
    console.print(view.probability_view(acts, depth=depth))
    assert set(backgrounds(console.file.getvalue())) <= wanted(TRAFFIC, depth)


def test_inspect_in_true_colour_is_as_before():
    acts, _ = planted_acts()
    console = Console(file=io.StringIO(), color_system="truecolor", force_terminal=True, width=200)
    console.print(view.unit_view(acts, "h", 1, 4))
    used = set(backgrounds(console.file.getvalue()))
    assert "2;31;119;180" in used and "2;214;39;40" in used and "2;255;255;255" in used


def planted_acts():
    from test_inspect import planted

    acts, inside = planted(text="the unit goes up and down " * 3)
    acts.signals["h"][1, :, 4] = np.linspace(-1, 1, len(acts.text))  # every shade, -1 to +1
    return acts, inside
