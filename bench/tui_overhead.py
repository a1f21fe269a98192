"""TUI overhead: training steps/s inside the app (headless) against the same run with no UI.

Both runs train the same model on the same generated corpus from the same seed.
The app run is the real thing: the trainer in the App's thread worker, the
bridge posting every event, activation probes about once a second (which the
plain run does not pay for), and the screen redrawing at up to 10 Hz, rendered
by Textual's headless driver. Speed is steps / the trainer's own elapsed time
(corpus preparation excluded, in both). Runs alternate; medians are compared.

    python bench/tui_overhead.py [--steps 1500] [--repeats 3] [--layers 2] [--hidden 128] [--screen train|activations]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, words_corpus  # noqa: E402

from charrnn.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from charrnn.data.corpus import prepare  # noqa: E402
from charrnn.training.trainer import Trainer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500, help="long enough that the app's start-up (mounting, CSS, first layout) does not count")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both runs (default: torch's choice)")
    ap.add_argument("--screen", choices=("train", "activations"), default="train", help="the screen shown while training")
    args = ap.parse_args()
    header("TUI overhead: steps/s in the app (headless) / steps/s with no UI")

    tmp = Path(tempfile.mkdtemp(prefix="charrnn-tui-bench-"))
    data = DataConfig(paths=(str(words_corpus(tmp / "corpus.txt", 2_000_000)),))
    corpus = prepare(data, tmp)
    model = ModelConfig(cell="lstm", layers=args.layers, hidden=args.hidden, embed=64)
    # One evaluation, at the end (the same in both), a short sample, no checkpoint until then.
    tcfg = TrainConfig(seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, eval_every=args.steps,
                       eval_tokens=8192, final_eval_tokens=8192, sample_chars=50, seed=1, threads=args.threads)  # fmt: skip
    runs = iter(range(10**6))

    def trainer(sinks: list, stop: threading.Event) -> Trainer:
        return Trainer(model, data, tcfg, corpus, tmp / f"run{next(runs)}", sinks=sinks, stop=stop)

    def plain() -> float:
        # In a thread of its own, as in the app: on a busy machine torch's intra-op
        # threads behave very differently in the main thread and in a new one (see RESULTS.md).
        out = []
        t = threading.Thread(target=lambda: out.append(trainer([], threading.Event()).run()))
        t.start()
        t.join()
        return out[0].step / out[0].elapsed_s

    def in_app() -> tuple[float, int, float]:
        """steps/s, activation frames shown, and the UI thread's CPU use (share of one core)."""
        from charrnn.tui import messages as m
        from charrnn.tui.app import CharRNNApp

        frames = []

        def hook(msg: object) -> None:
            if isinstance(msg, m.ProbeFrame):
                frames.append(1)

        async def go() -> tuple[float, float]:
            app = CharRNNApp(trainer, root=tmp)
            async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
                if args.screen == "activations":
                    await pilot.press("2")
                cpu0, wall0 = time.thread_time(), time.perf_counter()
                while app.training or app.result is None:
                    await asyncio.sleep(0.05)
                ui = (time.thread_time() - cpu0) / (time.perf_counter() - wall0)
            return app.result.step / app.result.elapsed_s, ui

        speed, ui = asyncio.run(go())
        return speed, len(frames), ui

    plain()  # warm up: first-touch costs, thread pools
    base, ui, probes = [], [], []
    for i in range(args.repeats):
        base.append(plain())
        speed, n, cpu = in_app()
        ui.append(speed)
        probes.append(n)
        print(
            f"repeat {i + 1}: no UI {base[-1]:.1f} steps/s, app {ui[-1]:.1f} steps/s "
            f"({n} activation frames shown; the UI thread used {cpu:.0%} of a core)",
            flush=True,
        )
    b, u = median(base), median(ui)
    print(
        f"model: lstm {args.layers}x{args.hidden}, batch {args.batch_size} x {args.seq_len}, {args.steps} steps; app screen: {args.screen}"
    )
    print(f"median: no UI {b:.1f} steps/s, app {u:.1f} steps/s; ratio app / no UI = {u / b:.3f}")


if __name__ == "__main__":
    main()
