"""The chapter's cells side by side: `charrnn compare`, with the machine, and each kind's
validation bits/char as a ratio of the vanilla RNN's measured in the same run.

Two settings, as in the README:

    # equal time, each kind alone on the machine (hold the CPU exclusively)
    python bench/compare_kinds.py shakespeare      # tinyshakespeare, --time 30s per kind
    # equal steps, so that it may share the machine (speeds then mean nothing)
    python bench/compare_kinds.py longrange        # longrange-brackets, --steps 1000, 1x128

Any further arguments go to `charrnn compare` (e.g. --time 1m, --params 500k).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header  # noqa: E402

SETTINGS = {
    "shakespeare": [str(SHAKESPEARE), "--time", "30s"],
    "longrange": ["longrange-brackets", "--steps", "1000", "--layers", "1", "--hidden", "128", "--delays", "1,4,16"],
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in SETTINGS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(SETTINGS)}}} [charrnn compare options]")
    os.environ.setdefault("COLUMNS", "140")  # the whole table, not an 80-column cut
    header(f"charrnn compare: {sys.argv[1]}")
    from charrnn.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.jsonl"
        args = ["compare", *SETTINGS[sys.argv[1]], "--cells", "rnn,lstm,gru,leaky,esn,jordan", "--device", "cpu",
                "--checkpoints", tmp, "--name", "bench", "--json", str(rows_file), *sys.argv[2:]]  # fmt: skip
        try:
            app(args, standalone_mode=False)
        except SystemExit as e:  # a user error has been printed
            if e.code:
                raise
        rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    rnn = next((r["val_bpc"] for r in rows if r["name"] == "rnn" and r["kind"] == "model"), None)
    if rnn:
        print("validation bits/char / the vanilla RNN's: " + ", ".join(f"{r['name']} {r['val_bpc'] / rnn:.3f}" for r in rows if r["val_bpc"]))


if __name__ == "__main__":
    main()
