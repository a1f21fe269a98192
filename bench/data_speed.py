"""How fast the data layer of the chapter's tasks is (charrnn/data/: labels, pairs, listops, treebatch).

    python bench/data_speed.py [--mb 20] [--repeats 3]

- labelled documents: reading a TSV of label<TAB>text lines as Documents, against
  reading the same file as the language model's plain corpus stream (iter_corpus,
  one document a line): the ratio is what labels cost on the way in;
- the generated pair sets (100,000 training pairs each) and ListOps (50,000 trees);
- level-by-level tree batches: flattening a tree (once per example) and batching
  256 flattened trees (once per step), against building the same batch from the trees.

Medians of --repeats runs; run it under `/work/tools/cpulock -x`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import header, median, words_corpus  # noqa: E402

from charrnn.config import DataConfig  # noqa: E402
from charrnn.data.labels import iter_documents  # noqa: E402
from charrnn.data.listops import make_listops  # noqa: E402
from charrnn.data.pairs import PAIR_SETS, make_pairs  # noqa: E402
from charrnn.data.treebatch import batch_flat, batch_trees, flatten, tree_vocab  # noqa: E402
from charrnn.data.reading import iter_corpus  # noqa: E402


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    header("data layer speed")
    with tempfile.TemporaryDirectory() as tmp:
        words = words_corpus(Path(tmp) / "words.txt", int(args.mb * 1e6))
        tsv = Path(tmp) / "labelled.tsv"
        with open(words, encoding="utf-8") as f, open(tsv, "w", encoding="utf-8") as out:
            for i, line in enumerate(f):
                out.write(f"l{i % 5}\t{line}")
        size = tsv.stat().st_size / 1e6
        plain = timed(lambda: sum(len(c) for c in iter_corpus([tsv], DataConfig(), "line")), args.repeats)
        labelled = timed(lambda: sum(len(d.text) for d in iter_documents([tsv], "tsv")), args.repeats)
    print(f"plain corpus stream   {size / plain:7.1f} MB/s  ({size:.0f} MB TSV, one document a line)")
    print(f"labelled documents    {size / labelled:7.1f} MB/s  ({labelled / plain:.2f}x the plain stream's time)")

    for name in PAIR_SETS:
        t = timed(lambda: make_pairs(name, 0, 100_000, 2_000), args.repeats)
        print(f"pairs {name:<15} {t:7.2f} s for 100,000 training + 2,000 validation pairs")
    t = timed(lambda: make_listops(0, 50_000, 2_000), args.repeats)
    print(f"listops               {t:7.2f} s for 50,000 training + 2,000 validation trees")

    train, _ = make_listops(1, 256 * 20, 0)
    trees = [e.tree for e in train]
    vocab = tree_vocab(trees)
    flat_t = timed(lambda: [flatten(t, vocab) for t in trees], args.repeats)
    flats = [flatten(t, vocab) for t in trees]
    batches = [flats[i : i + 256] for i in range(0, len(flats), 256)]
    tree_batches = [trees[i : i + 256] for i in range(0, len(trees), 256)]
    batch_t = timed(lambda: [batch_flat(b) for b in batches], args.repeats) / len(batches)
    direct_t = timed(lambda: [batch_trees(b, vocab) for b in tree_batches], args.repeats) / len(batches)
    nodes = sum(len(f.tokens) for f in flats) / len(batches)
    print(f"flatten               {flat_t / len(trees) * 1e6:7.1f} us a tree (once per example)")
    print(f"batch 256 flattened   {batch_t * 1e3:7.2f} ms a batch ({nodes:,.0f} nodes); "
          f"from the trees {direct_t * 1e3:.2f} ms ({direct_t / batch_t:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
