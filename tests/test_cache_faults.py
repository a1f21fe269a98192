"""A damaged corpus cache is found before use and rebuilt with a notice; a half-built one is
never used; an EOFError from charrnn's code is a one-line error, never click's bare "Aborted."."""

import subprocess
import sys

import numpy as np
import pytest
from helpers import TINY, no_traceback, one_line_error

from charrnn.cli import app
from charrnn.config import DataConfig
from charrnn.data.corpus import prepare
from charrnn.errors import CorpusError

TRAIN = [*TINY, "--steps", "2", "--device", "cpu", "--quiet"]


def ids_file(root):
    (ids,) = (root / ".cache").glob("*/ids.bin")
    return ids


def test_truncated_cache_is_rebuilt_through_the_cli(runner, workdir, corpus_file):
    r = runner.invoke(app, ["train", str(corpus_file), "--name", "a", *TRAIN])
    assert r.exit_code == 0, r.output
    ids = ids_file(workdir / "checkpoints")
    whole = ids.read_bytes()
    ids.write_bytes(whole[:-384])  # a copy cut short, a disk that filled up
    r = runner.invoke(app, ["train", str(corpus_file), "--name", "b", *TRAIN])
    assert r.exit_code == 0, r.output
    no_traceback(r.output)
    assert "Aborted" not in r.output
    notice = [line for line in r.stderr.splitlines() if "rebuilt the corpus cache" in line]
    assert len(notice) == 1 and "ids.bin is 384 bytes short" in notice[0], r.stderr
    assert ids_file(workdir / "checkpoints").read_bytes() == whole  # rebuilt as it was
    r = runner.invoke(app, ["train", str(corpus_file), "--name", "c", *TRAIN])
    assert "[cached]" in r.stderr and "rebuilt" not in r.stderr  # and trusted again


def test_a_flipped_byte_fails_the_checksum(tmp_path, corpus_file):
    cfg = DataConfig(paths=(str(corpus_file),))
    first = prepare(cfg, tmp_path)
    ids = first.cache_dir / "ids.bin"
    whole = np.asarray(first.ids).copy()
    b = bytearray(ids.read_bytes())
    b[len(b) // 2] ^= 0x01
    ids.write_bytes(bytes(b))
    again = prepare(cfg, tmp_path)
    assert not again.cached and again.notice == "rebuilt the corpus cache, which was damaged (ids.bin does not match its checksum)"
    assert np.array_equal(np.asarray(again.ids), whole)
    assert prepare(cfg, tmp_path).cached


@pytest.mark.parametrize("damage", ["no meta", "bad meta", "no ids", "old format"])
def test_other_damage_is_rebuilt(tmp_path, corpus_file, damage):
    cfg = DataConfig(paths=(str(corpus_file),))
    folder = prepare(cfg, tmp_path).cache_dir
    meta = folder / "meta.json"
    if damage == "no meta":
        meta.unlink()
    elif damage == "bad meta":
        meta.write_text(meta.read_text()[:40])
    elif damage == "no ids":
        (folder / "ids.bin").unlink()
    else:
        meta.write_text(meta.read_text().replace('"format": 2', '"format": 1'))
    again = prepare(cfg, tmp_path)
    assert not again.cached and again.notice.startswith("rebuilt the corpus cache, which was damaged (")
    assert again.cache_dir == folder and len(again.ids) > 0


def test_a_half_built_cache_is_never_used(tmp_path, corpus_file):
    """A build killed before its rename leaves only a temporary folder: the next run builds
    afresh (and clears the dead process's leftovers)."""
    cfg = DataConfig(paths=(str(corpus_file),))
    folder = prepare(cfg, tmp_path).cache_dir
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = folder.parent / f".tmp-{folder.name}-{int(dead.stdout)}"
    folder.rename(left)
    (left / "ids.bin").write_bytes(b"\0" * 10)
    again = prepare(cfg, tmp_path)
    assert not again.cached and again.notice is None
    assert not left.exists() and again.cache_dir == folder


def test_cut_short_while_in_use_is_a_corpus_error(tmp_path, corpus_file):
    c = prepare(DataConfig(paths=(str(corpus_file),)), tmp_path)
    ids = c.cache_dir / "ids.bin"
    ids.write_bytes(ids.read_bytes()[:100])
    with pytest.raises(CorpusError, match="ended .* bytes early at byte 100: the cached corpus was damaged"):
        np.asarray(c.ids)


def test_eof_error_is_one_line_not_aborted(runner, workdir, monkeypatch):
    """Click reads any EOFError as an aborted prompt and prints only "Aborted."."""
    from charrnn.training import checkpoint

    def cut_short(*a, **k):
        raise EOFError("a test's file ended")

    monkeypatch.setattr(checkpoint, "find", cut_short)
    r = runner.invoke(app, ["info", "x"])
    one_line_error(r, "a file or standard input ended early (a test's file ended).")
    assert "Aborted" not in r.output
