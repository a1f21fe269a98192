"""Colour scales that exist in the terminal: true colour, xterm's 256 colours, the 16 ANSI ones.

A true-colour scale (blue - dark - red, say) asked of a 256-colour terminal (tmux's
`tmux-256color`, most terminals without COLORTERM) is snapped colour by colour to
the nearest xterm colour, and the nearest ones of a smooth blue or red ramp are
browns, teals and greens: the scale reads as noise. So each scale here also comes
as a list of colours that the terminal really has, chosen from xterm's 6x6x6 cube
and its grey ramp along one hue family and in order of lightness (CIE L*), and as
a short list of the 16 ANSI colours for terminals with no more. `tests/test_palette.py`
holds them to that.

Sixteen-colour entries are ANSI colour numbers that also carry an RGB (Rich's standard
palette's): Textual turns a colour without RGB into its own theme's RGB and, in a
16-colour terminal, back to the nearest of the 16 (its red comes back magenta); one
with RGB it leaves alone, so the terminal gets the very number meant.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.color import Color, ColorTriplet, ColorType

TRUECOLOR, EIGHT_BIT, STANDARD = "truecolor", "256", "16"
DEPTHS = (TRUECOLOR, EIGHT_BIT, STANDARD)

# The 16 ANSI colours as Rich's standard palette has them (VGA's): what a 16-colour
# Rich console matches RGB against, and a reference for their order of lightness.
ANSI_RGB = (
    (0, 0, 0), (170, 0, 0), (0, 170, 0), (170, 85, 0), (0, 0, 170), (170, 0, 170), (0, 170, 170), (170, 170, 170),
    (85, 85, 85), (255, 85, 85), (85, 255, 85), (255, 255, 85), (85, 85, 255), (255, 85, 255), (85, 255, 255), (255, 255, 255),
)  # fmt: skip
_CUBE = (0, 95, 135, 175, 215, 255)


def depth_of(color_system: str | None) -> str:
    """A Rich console's `color_system` ('truecolor', '256', 'standard', 'windows' or
    None) as one of the three depths drawn here."""
    return {"truecolor": TRUECOLOR, "256": EIGHT_BIT}.get(color_system or "", STANDARD)


def xterm_rgb(n: int) -> tuple[int, int, int]:
    """The RGB of xterm colour n (16-231: the 6x6x6 cube, 232-255: the grey ramp)."""
    if n < 16:
        return ANSI_RGB[n]
    if n >= 232:
        v = 8 + 10 * (n - 232)
        return (v, v, v)
    n -= 16
    return (_CUBE[n // 36], _CUBE[n // 6 % 6], _CUBE[n % 6])


def lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour: L* is perceived lightness, 0 black to 100 white."""

    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = map(linear, rgb)
    x, y, z = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b, (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def lightness(rgb: tuple[int, int, int]) -> float:
    return lab(rgb)[0]


def ink(rgb: tuple[int, int, int]) -> str:
    """A legible foreground on this background (the rule tui/colors.py uses for true colour)."""
    r, g, b = rgb
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"


@dataclass(frozen=True)
class Ramp:
    """One scale as colour numbers, from its low end (t = 0) to its high end (t = 1):
    `xterm` for 256-colour terminals, `ansi` for 16-colour ones."""

    name: str
    xterm: tuple[int, ...]
    ansi: tuple[int, ...]

    def numbers(self, depth: str) -> tuple[int, ...]:
        return self.xterm if depth == EIGHT_BIT else self.ansi

    def index(self, t: float, depth: str) -> int:
        """The entry nearest t in [0, 1], rounded away from the middle on both sides
        alike, so that v and -v land the same number of steps from the centre."""
        n = len(self.numbers(depth))
        t = min(max(float(t), 0.0), 1.0) if t == t else 0.5  # NaN: the middle
        if t >= 0.5:
            return min(n - 1, int(t * (n - 1) + 0.5))
        return max(0, n - 1 - int((1 - t) * (n - 1) + 0.5))

    def number(self, t: float, depth: str) -> int:
        return self.numbers(depth)[self.index(t, depth)]

    def rgb(self, t: float, depth: str) -> tuple[int, int, int]:
        return xterm_rgb(self.number(t, depth))

    def color(self, t: float, depth: str) -> Color:
        n = self.number(t, depth)
        if depth == EIGHT_BIT:
            return Color.from_ansi(n)
        return Color(f"color({n})", ColorType.STANDARD, n, ColorTriplet(*ANSI_RGB[n]))


# Signed values on a dark terminal (the TUI): bright blue - blue - near black - red - light red.
DARK_DIVERGING = Ramp(
    "dark diverging",
    xterm=(75, 33, 27, 21, 20, 19, 18, 234, 52, 88, 124, 160, 196, 203, 209),
    ansi=(12, 4, 0, 1, 9),
)
# Gates, 0 shut to 1 open, on a dark terminal: black - dark red - orange - yellow.
HEAT = Ramp("heat", xterm=(16, 52, 88, 124, 160, 202, 208, 214, 220), ansi=(0, 1, 3, 11))
# Signed values under text (charrnn inspect): blue - white - red, the 256-colour ends as light as
# true colour's (black text reads on them).
LIGHT_DIVERGING = Ramp("light diverging", xterm=(32, 75, 153, 231, 217, 203, 160), ansi=(4, 12, 15, 9, 1))
# Probabilities, 0 to 1: red - orange - yellow - green.
TRAFFIC = Ramp("traffic", xterm=(160, 202, 208, 214, 221, 184, 148, 112, 34), ansi=(1, 3, 11, 2))
