"""Source -> target pairs (charrnn/data/pairs.py): the strict TSV reader, the split, the generated sets."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest

from charrnn.data import reading as reading_mod
from charrnn.data.pairs import (
    PAIR_SETS,
    Pair,
    PairSet,
    iter_pairs,
    make_pairs,
    number_words,
    pair_set_files,
    read_pairs,
    split_pairs,
    write_pairs,
)
from charrnn.errors import ConfigError, CorpusError


def test_reads_pairs_with_crlf_and_blank_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(reading_mod, "CHUNK_BYTES", 3)
    p = tmp_path / "p.tsv"
    p.write_bytes("hello\tolleh\r\n\r\n  \r\nMärz 3\t1998-03-03\r\n a b \t c \n".encode())
    assert list(iter_pairs(p)) == [Pair("hello", "olleh"), Pair("März 3", "1998-03-03"), Pair(" a b ", " c ")]


@pytest.mark.parametrize(
    "line, message",
    [
        ("no tab here", "p.tsv:2: no tab; each line must be source<TAB>target."),
        ("a\tb\tc", "p.tsv:2: more than one tab (another at column 4); each line must be source<TAB>target, "
                    "with no tab inside either side."),  # fmt: skip
        ("\ttarget", "p.tsv:2: the source (before the tab) is empty."),
        ("source\t", "p.tsv:2: the target (after the tab) is empty."),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    p = tmp_path / "p.tsv"
    p.write_text(f"ok\tko\n{line}\nok\tko\n", encoding="utf-8")
    with pytest.raises(CorpusError) as e:
        list(iter_pairs(p))
    assert str(e.value) == f"{tmp_path}/{message}"


def test_bad_utf8_names_the_byte_and_an_empty_file_has_no_pairs(tmp_path):
    p = tmp_path / "p.tsv"
    p.write_bytes(b"ok\tko\nabc\t\xff\n")
    with pytest.raises(CorpusError, match=r"p\.tsv: not valid UTF-8 at byte 10 \(0xff\)"):
        read_pairs([p])
    p.write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"p\.tsv: no source<TAB>target lines to train on\."):
        read_pairs([p])


def test_split_is_seeded_disjoint_and_keeps_order():
    pairs = [Pair(str(i), str(-i)) for i in range(100)]
    train, val = split_pairs(pairs, 0.1, seed=3)
    assert len(val) == 10 and len(train) == 90
    assert sorted(train + val) == sorted(pairs)
    assert train == sorted(train, key=lambda p: int(p.source)) and val == sorted(val, key=lambda p: int(p.source))
    assert split_pairs(pairs, 0.1, seed=3) == (train, val)
    assert split_pairs(pairs, 0.1, seed=4)[1] != val
    assert split_pairs(pairs, 0.0) == (pairs, [])
    assert len(split_pairs(pairs[:5], 0.01)[1]) == 1  # a fraction > 0 holds out at least one pair
    with pytest.raises(CorpusError, match="only 1 pair"):
        split_pairs(pairs[:1], 0.1)
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\)"):
        split_pairs(pairs, 1.0)


def test_write_then_read_back(tmp_path):
    pairs = [Pair("a b", "c"), Pair("é", "ü")]
    p = write_pairs(tmp_path / "sub" / "x.tsv", pairs)
    assert read_pairs([p]) == pairs
    assert not list(p.parent.glob("*.tmp*"))


# ------------------------------------------------------------ generated sets


@pytest.mark.parametrize("name", list(PAIR_SETS))
def test_generated_sets_are_seeded_and_validation_runs_longer(name):
    train, val = make_pairs(name, seed=1, n_train=3000, n_val=300)
    assert len(train) == 3000 and len(val) == 300
    assert make_pairs(name, seed=1, n_train=3000, n_val=300) == (train, val)
    assert make_pairs(name, seed=2, n_train=3000, n_val=300)[0] != train
    assert make_pairs(name, seed=1, n_train=3000, n_val=10)[0] == train  # training does not depend on n_val
    limit = PAIR_SETS[name].train_max_len
    assert max(len(p.source) for p in train) <= limit
    longer = sum(len(p.source) > limit for p in val)
    assert 0.02 * len(val) <= longer < len(val)  # some, not all, validation inputs run past training's
    sources = [p.source for p in val]
    assert len(set(sources)) == len(sources) and not set(sources) & {p.source for p in train}
    for p in train[:50] + val[:50]:
        assert p.source and p.target and not any(c in p.source + p.target for c in "\t\n")


_DATE_PARSE = ["%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %y", "%d %b %Y", "%A %d %B %Y", "%A %B %d %Y", "%a %d %b %Y",
               "%m/%d/%Y", "%m/%d/%y", "%Y.%m.%d", "%d.%m.%Y", "%Y/%m/%d", "%Y%m%d", "%d-%b-%Y", "%b %d %y",
               "%Y-%m-%d", "%a %B %d %Y"]  # fmt: skip


def _read_date(text: str) -> set[date]:
    """Every date some common format reads `text` as (an independent check of the generator)."""
    plain = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", text).replace("the ", "").replace(" of", "")
    plain = plain.replace(",", "").replace("'", "")
    found = set()
    for fmt in _DATE_PARSE:
        try:
            d = datetime.strptime(plain, fmt).date()
        except ValueError:
            continue
        if "%y" in fmt and d.year >= 2050:  # strptime reads 50-68 as 2050-2068; the set means 1950-1968
            d = d.replace(year=d.year - 100)
        if "%a" in fmt.lower() and d.strftime("%A")[:3].lower() != plain[:3].lower():
            continue  # a weekday that does not match its date
        found.add(d)
    return found


def test_dates_read_back_to_exactly_their_target():
    train, val = make_pairs("dates", seed=0, n_train=1500, n_val=300)
    for p in train + val:
        assert _read_date(p.source) == {date.fromisoformat(p.target)}, p
    assert len({re.sub(r"\d+", "0", p.source.split(" ")[0]) for p in train}) > 20  # many formats, many spellings


def _words_to_number(text: str) -> int:
    small = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                        "fourteen fifteen sixteen seventeen eighteen nineteen".split())}  # fmt: skip
    small.update({w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2})
    total = current = 0
    for word in text.replace("-", " ").split():
        if word in small:
            current += small[word]
        elif word == "hundred":
            current *= 100
        elif word in ("thousand", "million"):
            total += current * (1000 if word == "thousand" else 10**6)
            current = 0
        else:
            assert word == "and", word
    return total + current


def test_number_words():
    assert number_words(4012) == "four thousand and twelve" and number_words(4012, british=False) == "four thousand twelve"
    assert number_words(0) == "zero" and number_words(21) == "twenty-one" and number_words(90) == "ninety"
    assert number_words(105) == "one hundred and five" and number_words(1_000_000) == "one million"
    assert number_words(2_000_001) == "two million and one"
    assert number_words(999_115) == "nine hundred and ninety-nine thousand one hundred and fifteen"
    train, val = make_pairs("numbers", seed=0, n_train=2000, n_val=300)
    assert all(_words_to_number(p.source) == int(p.target) for p in train + val)
    assert any(" and " in p.source for p in train) and any(" and " not in p.source and "hundred " in p.source for p in train)
    with pytest.raises(ValueError):
        number_words(10**9)


def test_addition_and_reversal_targets():
    train, _ = make_pairs("addition", seed=0, n_train=500, n_val=10)
    for p in train:
        a, b = p.source.split("+")
        assert int(p.target) == int(a) + int(b)
    train, _ = make_pairs("reversal", seed=0, n_train=500, n_val=10)
    assert all(p.target == p.source[::-1] and p.source.isalpha() for p in train)


def test_set_files_are_written_once(tmp_path):
    train_path, val_path = pair_set_files("reversal", tmp_path, seed=5, n_train=200, n_val=20)
    assert train_path.name == "reversal-seed5-200x20-train.tsv" and val_path.name == "reversal-seed5-200x20-val.tsv"
    assert (read_pairs([train_path]), read_pairs([val_path])) == make_pairs("reversal", 5, 200, 20)
    before = train_path.stat().st_mtime_ns
    assert pair_set_files("reversal", tmp_path, seed=5, n_train=200, n_val=20) == (train_path, val_path)
    assert train_path.stat().st_mtime_ns == before


def test_generator_arguments_are_checked(monkeypatch):
    with pytest.raises(ConfigError, match="unknown pair set 'sorting'; the built-in ones are dates, numbers, addition, reversal"):
        make_pairs("sorting")
    with pytest.raises(ConfigError, match="too few inputs of at most 2 characters"):
        make_pairs("dates", n_train=10, n_val=1, train_max_len=2)
    tiny = PairSet("tiny", "one letter reversed", lambda rng: Pair(rng.choice("abc"), "x"), train_max_len=1)
    monkeypatch.setitem(PAIR_SETS, "tiny", tiny)
    assert len(make_pairs("tiny", n_train=100, n_val=0)[0]) == 100
    with pytest.raises(ConfigError, match="tiny: cannot find 1,000 validation pairs unseen in training; ask for fewer"):
        make_pairs("tiny", n_train=100, n_val=1000)
