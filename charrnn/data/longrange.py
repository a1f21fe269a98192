"""Generated corpora whose next character depends on something far back.

Two built-in corpora (`charrnn corpora`), made from a seed, one document a line.
They exist to show, in `charrnn compare`, a vanilla RNN failing where leaky units,
skip connections and gated cells do not (Goodfellow et al., ch. 10.7-10.10):

- **brackets**: one group of nested brackets of four kinds a line. Between two
  brackets stand `run` filler letters that name the current depth (a = 1, b = 2,
  ...), so where it is costs no memory; the only thing to remember is *which*
  brackets are open. Openers come in runs and so do closers (after an opener
  another follows with p_continue, after a closer with p_reopen), so a run of
  closers answers openers written tens to hundreds of characters before, deeper
  than the default TBPTT window of 32:  `(aa[bb<cc>bb]aa{bb}aa)`.
- **copy**: `width` random letters, a gap of `.` whose length is geometric (a
  constant chance to end at every step, so counting does not help), a `:`, and
  the letters again:  `kc.........................:kc`.

For each, three figures in bits per character (a line's newline, which charrnn
reads as the end-of-document token, counts as a character):

- `entropy_rate()`: the generator's own entropy per character, exact (an
  absorbing Markov chain for brackets, a closed form for copy). No model can do
  better in expectation: the "perfect" row of a table.
- `memory_bound(k)`: what a model that sees only the last k characters (nothing
  older, as an n-gram of order k+1, or an RNN that forgets) cannot beat: it must
  guess every closer or copied letter whose source is more than k characters back
  (uniform: the source was drawn independently of everything after it) and loses
  nothing elsewhere. The figure is attained, so exact, once k covers the local
  structure (k >= run + 1 for brackets, k >= width + 1 for copy).
- `walk(text)`: the generator's bits for every character of a given text, and
  how far back the source of each character that needs memory stands: from them
  `reference()` gives the same two figures on the very text a model was scored on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CorpusError

VERSION = 1  # bump when a generator's output changes, so cached files are remade
DEFAULT_SIZE = 300_000


def _h2(p: float) -> float:
    """Binary entropy in bits."""
    return -sum(x * math.log2(x) for x in (p, 1.0 - p) if x > 0)


@dataclass(frozen=True)
class Brackets:
    pairs: str = "()[]{}<>"
    run: int = 2  # filler letters between two brackets
    max_depth: int = 16
    p_continue: float = 0.85  # P(open | the last bracket opened)
    p_reopen: float = 0.15  # P(open | the last bracket closed)
    size: int = DEFAULT_SIZE
    seed: int = 0

    @property
    def kinds(self) -> int:
        return len(self.pairs) // 2

    def _p_open(self, depth: int, opened: bool) -> float:
        if depth >= self.max_depth:
            return 0.0
        return self.p_continue if opened else self.p_reopen

    def text(self) -> str:
        rng = np.random.default_rng(self.seed)
        opens, closes = self.pairs[0::2], self.pairs[1::2]
        draws = iter(())
        out: list[str] = []
        n = 0

        def uniform() -> float:
            nonlocal draws
            x = next(draws, None)
            if x is None:
                draws = iter(rng.random(1 << 16).tolist())
                x = next(draws)
            return x

        while n < self.size:
            k = int(uniform() * self.kinds)
            stack, line, opened = [k], [opens[k]], True
            while stack:
                line.append(chr(ord("a") + len(stack) - 1) * self.run)
                x, q = uniform(), self._p_open(len(stack), opened)
                if x < q:  # open; x / q is uniform again and picks the kind
                    k = min(int(x / q * self.kinds), self.kinds - 1)
                    stack.append(k)
                    line.append(opens[k])
                    opened = True
                else:
                    line.append(closes[stack.pop()])
                    opened = False
            s = "".join(line)
            out.append(s)
            n += len(s) + 1
        return "\n".join(out) + "\n"

    # -------------------------------------------------------------- exact figures

    def _chain(self) -> tuple[list[tuple[int, bool]], np.ndarray]:
        """Event states (depth, last bracket opened) and the expected visits of each in one line."""
        states = [(d, o) for d in range(1, self.max_depth + 1) for o in (True, False)]
        index = {s: i for i, s in enumerate(states)}
        Q = np.zeros((len(states), len(states)))  # transitions among states; leaving depth 1 ends the line
        for (d, o), i in index.items():
            q = self._p_open(d, o)
            if q > 0:
                Q[i, index[(d + 1, True)]] = q
            if d > 1:
                Q[i, index[(d - 1, False)]] = 1.0 - q
        start = np.zeros(len(states))
        start[index[(1, True)]] = 1.0
        visits = np.linalg.solve((np.eye(len(states)) - Q).T, start)
        return states, visits

    def _per_line(self) -> tuple[float, float, list[float]]:
        """Expected bits and characters of a line, and the expected openers into each depth."""
        states, visits = self._chain()
        bits, chars = math.log2(self.kinds), 2.0  # the first opener (uniform kind) and the newline
        into = [0.0] * (self.max_depth + 2)
        into[1] = 1.0
        for (d, o), v in zip(states, visits):
            q = self._p_open(d, o)
            bits += v * (_h2(q) + q * math.log2(self.kinds))
            chars += v * (self.run + 1)
            into[d + 1] += v * q
        return bits, chars, into

    def entropy_rate(self) -> float:
        bits, chars, _ = self._per_line()
        return bits / chars

    def _p_far(self, depth: int, k: int) -> float:
        """P(the closer of an opener into `depth` comes more than k characters after it)."""
        steps = k // (self.run + 1)  # brackets stand run + 1 characters apart
        v = {(depth, True): 1.0}
        for _ in range(steps):
            nxt: dict[tuple[int, bool], float] = {}
            for (d, o), m in v.items():
                q = self._p_open(d, o)
                if q > 0:
                    nxt[(d + 1, True)] = nxt.get((d + 1, True), 0.0) + m * q
                if d > depth:  # closing at `depth` itself is the matching closer
                    nxt[(d - 1, False)] = nxt.get((d - 1, False), 0.0) + m * (1.0 - q)
            v = nxt
        return sum(v.values())

    def memory_bound(self, k: int) -> float:
        bits, chars, into = self._per_line()
        far = sum(into[d] * self._p_far(d, k) for d in range(1, self.max_depth + 1))
        return (bits + far * math.log2(self.kinds)) / chars

    def far(self, k: int) -> float:
        """The fraction of closers that stand more than k characters after their opener."""
        _, _, into = self._per_line()
        n = sum(into[1 : self.max_depth + 1])
        return sum(into[d] * self._p_far(d, k) for d in range(1, self.max_depth + 1)) / n

    def distances(self, q: float = 0.9) -> tuple[float, int]:
        """The mean distance from an opener to its closer, and the distance that a fraction q
        of them stay within (characters). Brackets stand run + 1 apart, so a closer S brackets
        after its opener is (run + 1) S characters away: E[S] = sum over s >= 0 of P(S > s)."""
        _, _, into = self._per_line()
        w = np.array(into[1 : self.max_depth + 1])
        w = w / w.sum()
        D = self.max_depth
        # P(S > s) for an opener into each depth, stepped forward together over states (start, depth, opened)
        v = np.zeros((D, D + 2, 2))
        v[np.arange(D), np.arange(1, D + 1), 0] = w
        mean, quantile, s = 0.0, None, 0
        while True:
            left = float(v.sum())
            if quantile is None and left <= 1.0 - q:
                quantile = s
            if left < 1e-9 or s > 1_000_000:
                break
            mean += left
            nxt = np.zeros_like(v)
            for d in range(1, D + 1):
                for o in (0, 1):  # 0: the last bracket opened, 1: it closed
                    m = v[:, d, o]
                    p_open = self._p_open(d, o == 0)
                    nxt[:, min(d + 1, D + 1), 0] += m * p_open
                    nxt[:, d - 1, 1] += m * (1.0 - p_open) * (np.arange(1, D + 1) < d)  # closing at the start depth ends it
            v, s = nxt, s + 1
        return mean * (self.run + 1), (quantile if quantile is not None else s) * (self.run + 1)

    def validate(self) -> "Brackets":
        _setting(2 <= len(self.pairs) and len(self.pairs) % 2 == 0, "the pairs of brackets must come in twos")
        _setting(1 <= self.max_depth <= 64, f"depth must be 1 to 64, got {self.max_depth}")
        _setting(self.run >= 1, f"run must be at least 1, got {self.run}")
        _setting(self.size >= 1000, f"size must be at least 1000 characters, got {self.size}")
        return self

    # -------------------------------------------------------------- on a text

    def walk(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Bits of every character of a text under the generator, and for each closer the
        distance back to its opener (0 elsewhere); a line it would not write raises ValueError."""
        bits = np.zeros(len(text))
        dist = np.zeros(len(text), dtype=np.int64)
        kind = {c: i % self.kinds for i, c in enumerate(self.pairs[0::2] + self.pairs[1::2])}
        log_k = math.log2(self.kinds)
        stack: list[tuple[int, int]] = []  # (kind, position) of the open brackets
        opened, fill = True, 0
        for t, c in enumerate(text):
            if c == "\n":
                _expect(not stack, text, t)
                continue
            if not stack:  # a line's first opener
                _expect(c in self.pairs[0::2], text, t)
                bits[t] = log_k
                stack.append((kind[c], t))
                opened, fill = True, 0
            elif fill < self.run:
                _expect(c == chr(ord("a") + len(stack) - 1), text, t)
                fill += 1
            else:
                q = self._p_open(len(stack), opened)
                if c in self.pairs[0::2]:
                    bits[t] = -math.log2(q) + log_k
                    stack.append((kind[c], t))
                    opened = True
                else:
                    k, at = stack.pop()
                    _expect(c == self.pairs[2 * k + 1], text, t)
                    bits[t] = -math.log2(1.0 - q)
                    dist[t] = t - at
                    opened = False
                fill = 0
        return bits, dist

    @property
    def choices(self) -> int:
        """How many ways a character that needs memory can go (the kinds of bracket)."""
        return self.kinds


@dataclass(frozen=True)
class Copy:
    symbols: str = "abcdefghijklmnop"
    width: int = 2  # letters to remember
    mean_gap: float = 48.0
    filler: str = "."
    marker: str = ":"
    size: int = DEFAULT_SIZE
    seed: int = 0

    @property
    def p_end(self) -> float:
        """The chance that the gap ends at each step (geometric gap on 0, 1, 2, ...)."""
        return 1.0 / (self.mean_gap + 1.0)

    def text(self) -> str:
        rng = np.random.default_rng(self.seed)
        out: list[str] = []
        n = 0
        while n < self.size:
            word = "".join(self.symbols[i] for i in rng.integers(0, len(self.symbols), self.width))
            gap = int(rng.geometric(self.p_end)) - 1  # numpy's geometric counts the trial that ends it
            line = word + self.filler * gap + self.marker + word
            out.append(line)
            n += len(line) + 1
        return "\n".join(out) + "\n"

    def _per_line(self) -> tuple[float, float]:
        p = self.p_end
        bits = self.width * math.log2(len(self.symbols)) + _h2(p) / p  # the letters, and the gap's length
        return bits, 2 * self.width + self.mean_gap + 2

    def entropy_rate(self) -> float:
        bits, chars = self._per_line()
        return bits / chars

    def memory_bound(self, k: int) -> float:
        bits, chars = self._per_line()
        # a copied letter stands width + gap + 1 characters after its source
        return (bits + self.width * self.far(k) * math.log2(len(self.symbols))) / chars

    def far(self, k: int) -> float:
        """The fraction of copied letters that stand more than k characters after their source."""
        return (1.0 - self.p_end) ** max(k - self.width, 0)  # P(gap >= k - width)

    def distances(self, q: float = 0.9) -> tuple[float, int]:
        """The mean distance from a letter to its copy, and the distance a fraction q of them stay within."""
        k = self.width + math.ceil(math.log(1.0 - q) / math.log1p(-self.p_end))
        while k > self.width and self.far(k - 1) <= 1.0 - q:
            k -= 1
        return self.width + self.mean_gap + 1.0, k

    def validate(self) -> "Copy":
        _setting(math.isfinite(self.mean_gap) and 0 < self.mean_gap <= 10_000, f"gap must be a mean gap of 1 to 10000 characters, got {self.mean_gap:g}")
        _setting(1 <= self.width <= 64, f"width must be 1 to 64 letters, got {self.width}")
        _setting(self.size >= 1000, f"size must be at least 1000 characters, got {self.size}")
        return self

    def walk(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Bits of every character under the generator, and for each copied letter the
        distance back to its source (0 elsewhere)."""
        bits = np.zeros(len(text))
        dist = np.zeros(len(text), dtype=np.int64)
        p, log_a, t = self.p_end, math.log2(len(self.symbols)), 0
        w = self.width
        for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
            head, sep, tail = line.partition(self.marker)
            gap = len(head) - w
            ok = bool(sep) and gap >= 0 and tail == head[:w] and set(head[:w]) <= set(self.symbols)
            _expect(ok and head[w:] == self.filler * gap, text, t)
            bits[t : t + w] = log_a
            bits[t + w : t + w + gap] = -math.log2(1.0 - p)
            bits[t + w + gap] = -math.log2(p)
            dist[t + w + gap + 1 : t + 2 * w + gap + 1] = w + gap + 1
            t += len(line) + 1
        return bits, dist

    @property
    def choices(self) -> int:
        """How many ways a copied letter can go."""
        return len(self.symbols)


def _expect(ok: bool, text: str, t: int) -> None:
    if not ok:
        line = text.count("\n", 0, t) + 1
        raise ValueError(f"line {line} of the text is not one this generator writes (near character {t})")


def _setting(ok: bool, message: str) -> None:
    if not ok:
        raise CorpusError(f"{message}.")


GENERATORS: dict[str, Any] = {"brackets": Brackets(), "copy": Copy()}
# what a user may change as longrange-NAME:key=value,...: (what they write, the generator's field)
SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "brackets": (("depth", "max_depth"), ("run", "run"), ("size", "size"), ("seed", "seed")),
    "copy": (("gap", "mean_gap"), ("width", "width"), ("size", "size"), ("seed", "seed")),
}
PREFIX = "longrange-"


def is_longrange(name: str) -> bool:
    """Whether a corpus argument names a generated long-range corpus, with or without settings."""
    return name.partition(":")[0].removeprefix(PREFIX) in GENERATORS and name.startswith(PREFIX)


def parse(name: str) -> Any:
    """The generator `longrange-NAME` or `longrange-NAME:key=value,...` stands for (copy: gap,
    width, size, seed; brackets: depth, run, size, seed), validated; a one-line CorpusError else."""
    base, _, rest = name.partition(":")
    kind = base.removeprefix(PREFIX)
    if not base.startswith(PREFIX) or kind not in GENERATORS:
        raise CorpusError(f"{base!r} is not a long-range corpus; the built-in ones are {', '.join(PREFIX + k for k in GENERATORS)}.")
    known = dict(SETTINGS[kind])
    gen = GENERATORS[kind]
    changes: dict[str, Any] = {}
    for item in rest.split(",") if rest else []:
        key, eq, value = item.partition("=")
        field = known.get(key.strip())
        try:
            number = float(value) if field == "mean_gap" else int(value)
        except ValueError:
            number = None
        if field is None or not eq or number is None:
            keys = ",".join(f"{k}=N" for k in known)
            raise CorpusError(f"{name}: {item!r} is not a setting of {base}; write {base}:{keys} (any of them).")
        changes[field] = number
    return dataclasses.replace(gen, **changes).validate()


def write(name: str, folder: Path) -> Path:
    """The generated corpus `name` (copy, brackets, copy:gap=200, ...) as a file in `folder`, made
    once (its name carries the generator's settings and VERSION) and written atomically."""
    gen = parse(PREFIX + name)
    digest = hashlib.sha256(f"{VERSION} {gen!r}".encode()).hexdigest()[:10]
    out = Path(folder) / f"longrange-{name.partition(':')[0]}-{digest}.txt"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # several processes may make it at once
        tmp.write_text(gen.text(), encoding="utf-8")
        tmp.replace(out)
    return out


from .longrange_ref import Reference, reference, text_from_ids  # noqa: E402,F401  (the figures on a given text)
