"""What a character of a text is, in ways a unit might track: the atlas's annotations.

Each annotation gives one value per character: yes/no ones (inside "…", a digit)
are scored by AUC, counts (the position in the line, the bracket depth) by
|Pearson r|. The built-in bank follows what Karpathy, Johnson and Fei-Fei (2015)
found cells for in character LSTMs (quotes, line position, brackets, comments), plus
the plain facts of a character (digit, upper case, punctuation, start of a word).

A value at character i describes the text up to and including i, as the
activation at i is the state after reading it: the opening quote is already
inside, the closing one is not. Plain numpy and Python, no torch: the TUI and
the page builder read these too.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

AUC, R = "auc", "r"  # how an annotation is scored: yes/no by AUC, counts by |Pearson r|
PUNCT = frozenset(string.punctuation)
OPEN, CLOSE = "([{", ")]}"
BRACKET_NAMES = {"(": "parentheses", "[": "square brackets", "{": "braces"}


@dataclass(frozen=True)
class Annotation:
    name: str
    about: str
    measure: str  # AUC (values are bool) or R (values are counts)
    values: np.ndarray  # (N,) bool or int32, one per character

    def at(self, last_char: np.ndarray) -> np.ndarray:
        """One value per token: the value at the token's last character (`last_char`, (T,) indices)."""
        return self.values[last_char]


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _prose(text: str) -> dict[str, np.ndarray]:
    """Quotes as prose uses them and bracket depths, in one pass."""
    n = len(text)
    dq, sq = np.zeros(n, bool), np.zeros(n, bool)
    depth = {o: np.zeros(n, np.int32) for o in OPEN}
    in_dq = in_sq = False
    d = dict.fromkeys(OPEN, 0)
    prev = "\n"
    for i, ch in enumerate(text):
        if ch == '"' and prev != "\\":  # " toggles; ' toggles unless it is an apostrophe (a letter on both sides)
            in_dq = not in_dq
        elif ch == "'" and prev != "\\" and not (prev.isalpha() and i + 1 < n and text[i + 1].isalpha()):
            in_sq = not in_sq
        elif ch == "\n" and prev == "\n":  # a blank line ends a quote left open by a stray mark
            in_dq = in_sq = False
        dq[i], sq[i] = in_dq, in_sq
        if ch in OPEN:
            d[ch] += 1
        for o in OPEN:
            depth[o][i] = d[o]
        if ch in CLOSE:  # the closer itself is still inside; an unmatched one is ignored
            o = OPEN[CLOSE.index(ch)]
            d[o] = max(0, d[o] - 1)
        prev = ch
    return {"dq": dq, "sq": sq, **{f"depth{o}": depth[o] for o in OPEN}}


def _code(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Python-ish comments (# to the line's end) and string literals ('…', "…",
    triple-quoted, with backslash escapes), each (N,) bool; the closing quote is outside."""
    n = len(text)
    comment, strlit = np.zeros(n, bool), np.zeros(n, bool)
    i = 0
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            j = n if j < 0 else j
            comment[i:j] = True
            i = j
        elif ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n" and len(quote) == 1:  # an unterminated one-line string ends with its line
                    break
                j += 1
            end = min(j + len(quote) - 1, n)  # up to the closing delimiter's last character, which is outside
            strlit[i:end] = True
            i = min(j + len(quote), n) if j < n and text[j] != "\n" else j
        else:
            i += 1
    return comment, strlit


def _lines(text: str) -> dict[str, np.ndarray]:
    """Position in the line, the line's indentation and the position in the word, vectorised."""
    n = len(text)
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) if n else np.zeros(0, np.uint32)
    idx = np.arange(n)
    nl = chars == ord("\n")
    line_start = np.maximum.accumulate(np.where(np.concatenate([[True], nl[:-1]]), idx, 0)) if n else idx
    line_pos = (idx - line_start).astype(np.int32)
    space = (chars == ord(" ")) | (chars == ord("\t"))
    # leading whitespace: a space whose line has only whitespace before it
    nonspace_seen = np.cumsum(~space & ~nl)
    before = np.concatenate([[0], nonspace_seen[:-1]]) if n else nonspace_seen
    leading = space & (before - (np.concatenate([[0], nonspace_seen])[line_start] if n else 0) == 0)
    width = np.where(chars == ord("\t"), 4, 1) * leading
    cum = np.cumsum(width)
    at_start = np.concatenate([[0], cum])[line_start] if n else cum
    # the line's indentation: its leading width, known from the first non-space character on
    ind_so_far = cum - at_start
    indent = ind_so_far.astype(np.int32)
    word = np.array([_word(c) for c in text], bool)
    run_start = np.maximum.accumulate(np.where(~word, idx + 1, 0)) if n else idx
    word_pos = np.where(word, idx - run_start + 1, 0).astype(np.int32)
    return {"line_pos": line_pos, "indent": indent, "word_pos": word_pos, "word": word}


def _chars_left(text: str) -> np.ndarray:
    """(N,) characters left in the line after each one (0 at the newline and the line's last character)."""
    n = len(text)
    nl = np.array([i for i, ch in enumerate(text) if ch == "\n"] + [n], dtype=np.int64)
    idx = np.arange(n)
    nxt = nl[np.searchsorted(nl, idx)]  # the next newline at or after i
    return np.maximum(nxt - idx - 1, 0).astype(np.int32)


def builtin(text: str) -> list[Annotation]:
    """The built-in bank over `text`."""
    s = {**_prose(text), **_lines(text)}
    s["comment"], s["string"] = _code(text)
    word = s["word"]
    prev_word = np.concatenate([[False], word[:-1]])
    after_nl = np.array([i == 0 or text[i - 1] == "\n" for i in range(len(text))], bool)
    depth_all = sum(s[f"depth{o}"] for o in OPEN)
    a = [
        Annotation("inside double quotes", 'between an opening " and its closing one', AUC, s["dq"]),
        Annotation("inside single quotes", "between an opening ' and its closing one (apostrophes skipped)", AUC, s["sq"]),
    ]
    for o in OPEN:
        a.append(Annotation(f"inside {BRACKET_NAMES[o]}", f"after an {o} not yet closed", AUC, s[f"depth{o}"] > 0))
    a += [
        Annotation("bracket depth", "how many (, [ and { are open", R, depth_all.astype(np.int32)),
        Annotation("position in line", "characters since the line began", R, s["line_pos"]),
        Annotation("chars to line end", "characters left until the line ends", R, _chars_left(text)),
        Annotation("start of word", "a letter, digit or _ after anything else", AUC, word & ~prev_word),
        Annotation("position in word", "characters since the word began (0 outside words)", R, s["word_pos"]),
        Annotation("digit", "0-9", AUC, np.array([c.isdigit() for c in text], bool)),
        Annotation("upper case", "an upper-case letter", AUC, np.array([c.isupper() for c in text], bool)),
        Annotation("punctuation", "ASCII punctuation", AUC, np.array([c in PUNCT for c in text], bool)),
        Annotation("after newline", "the first character of a line", AUC, after_nl),
        Annotation("indentation depth", "the line's leading spaces (a tab counts 4)", R, s["indent"]),
        Annotation("inside a comment", "code: from # to the end of the line", AUC, s["comment"]),
        Annotation("inside a string", 'code: a string literal, "…", \'…\' or triple-quoted', AUC, s["string"]),
    ]
    return a


def regex(name: str, pattern: str, text: str) -> Annotation:
    """A user's annotation: yes inside the regex's matches (its first group, if it has one)."""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"--annotate {name}='{pattern}' is not a valid regular expression ({e}).") from None
    marks = np.zeros(len(text) + 1, np.int64)
    for m in rx.finditer(text):
        a, b = m.span(1) if rx.groups and m.start(1) >= 0 else m.span()
        if b > a:
            marks[a] += 1
            marks[b] -= 1
    return Annotation(name, f"matches of /{pattern}/", AUC, np.cumsum(marks)[:-1] > 0)


def parse(spec: str) -> tuple[str, str]:
    """'NAME=REGEX' -> (name, regex), a clear error otherwise."""
    name, eq, pattern = spec.partition("=")
    if not eq or not name.strip() or not pattern:
        raise ConfigError(f"--annotate takes NAME=REGEX, such as --annotate 'keyword=\\b(def|class)\\b', not {spec!r}.")
    return name.strip(), pattern


def informative(a: Annotation) -> bool:
    """Whether an annotation varies at all over the text (a constant one cannot be scored)."""
    v = a.values
    return len(v) > 1 and bool((v != v[0]).any())
