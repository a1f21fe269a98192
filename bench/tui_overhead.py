"""TUI overhead: training steps/s inside the app (headless) against the same run with no UI.

Both runs train the same model on the same generated corpus from the same seed.
The app run is the real thing: the trainer in the App's thread worker, the
bridge posting every event, activation probes about once a second while the
activations screen is shown (which the plain run does not pay for), and the
screen redrawing at up to 10 Hz, rendered by Textual's headless driver. Speed is
steps / the trainer's own elapsed time (corpus preparation excluded, in both).
After a warm-up run of each kind (not counted), each repeat runs both, the order
alternating from one repeat to the next (no UI first, then the app first), so
that neither kind always follows the other; the ratio of the medians is the
figure, each repeat's own ratio is printed beside it. Each run also reports,
over the trainer's run (read from the training thread), the process's CPU per
step; an app run the CPU its UI thread used (start-up and the screen switch
included), the probes the trainer made and their CPU, and the garbage
collections in every thread (each holds the GIL, so the training thread waits
out the ones it does not run itself). These counts and CPU times are what a
shared machine disturbs least.

--profile says where the time goes instead, piece by piece, with no run to
compare: what one probe costs the training thread (in steps), what one
activation frame costs the UI thread on each screen (distinct frames, new
arrays each, as a live run sends them), the UI thread's share of a core with
nothing arriving and under a run's stream (step events at the trainer's rate
and a frame every 2 s, sent through the real bridge from a thread), its
busiest functions while it draws frames (cProfile), and a full garbage
collection in a running app before and after the app freezes what it holds at
start-up. These are thread CPU times, which a loaded machine disturbs far less
than the steps/s ratio.

    python bench/tui_overhead.py [--steps 1500] [--repeats 3] [--layers 2] [--hidden 128] [--screen train|activations]
    python bench/tui_overhead.py --profile [--hidden 128]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, words_corpus  # noqa: E402

from charrnn.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from charrnn.data.corpus import prepare  # noqa: E402
from charrnn.training.telemetry import PROBE_SHARE  # noqa: E402
from charrnn.training.trainer import STEP_HZ, Trainer  # noqa: E402


class Collections:
    """Garbage collections during the training window, by thread (the UI thread, the training
    thread, any other) and generation, timed through gc.callbacks. A collection in any thread
    holds the GIL, so the training thread waits out the ones it does not run itself."""

    def __init__(self, ui: int):
        self.ui, self.train, self.on, self.t0, self.got = ui, 0, False, {}, []  # got: (who, generation, seconds)

    def __call__(self, phase: str, info: dict) -> None:
        if not self.on:
            return
        me = threading.get_ident()
        if phase == "start":
            self.t0[me] = time.perf_counter()
        elif me in self.t0:
            who = "UI" if me == self.ui else "training" if me == self.train else "other"
            self.got.append((who, info["generation"], time.perf_counter() - self.t0.pop(me)))

    def start(self) -> None:
        self.train, self.t0, self.got, self.on = threading.get_ident(), {}, [], True

    def summary(self) -> str:
        parts = []
        for who in ("UI", "training", "other"):
            mine = [(g, dt) for w, g, dt in self.got if w == who]
            if mine:
                gens = "/".join(str(sum(1 for g, _ in mine if g == k)) for k in range(3))
                parts.append(f"{who} {len(mine)} ({gens} by generation), {sum(dt for _, dt in mine) * 1e3:.0f} ms")
        return "; ".join(parts) or "none"


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
    ap.add_argument("--profile", action="store_true", help="where the time goes, piece by piece (no runs compared)")
    args = ap.parse_args()
    header("TUI overhead: " + ("where the time goes" if args.profile else "steps/s in the app (headless) / steps/s with no UI"))

    tmp = Path(tempfile.mkdtemp(prefix="charrnn-tui-bench-"))
    data = DataConfig(paths=(str(words_corpus(tmp / "corpus.txt", 2_000_000)),))
    corpus = prepare(data, tmp)
    model = ModelConfig(cell="lstm", layers=args.layers, hidden=args.hidden, embed=64)
    # One evaluation, at the end (the same in both), a short sample, no checkpoint until then.
    tcfg = TrainConfig(seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps, eval_every=args.steps,
                       eval_tokens=8192, final_eval_tokens=8192, sample_chars=50, seed=1, threads=args.threads)  # fmt: skip
    runs = iter(range(10**6))
    probes: list[float] = []  # the training thread's CPU seconds in each probe of the current run
    ui_thread = threading.get_ident()  # the app runs its loop here (asyncio.run in this thread)
    gcs = Collections(ui_thread)
    gc.callbacks.append(gcs)
    window: dict[str, float] = {}  # CPU seconds over the trainer's run: the UI thread's, the process's; the run's wall time

    def trainer(sinks: list, stop: threading.Event) -> Trainer:
        t = Trainer(model, data, tcfg, corpus, tmp / f"run{next(runs)}", sinks=sinks, stop=stop)
        probe, run = t.use.probe, t.run

        def timed(*a: object) -> object:
            t0 = time.thread_time()
            try:
                return probe(*a)
            finally:
                probes.append(time.thread_time() - t0)

        def measured() -> object:
            # The training window, read from the training thread: the UI thread's CPU clock
            # (the whole window, start-up and screen switch included), the process's, the wall.
            ui_clock = time.pthread_getcpuclockid(ui_thread)
            probes.clear()
            gcs.start()
            ui0, cpu0, wall0 = time.clock_gettime(ui_clock), time.process_time(), time.perf_counter()
            try:
                return run()
            finally:
                gcs.on = False
                window.update(ui=time.clock_gettime(ui_clock) - ui0, cpu=time.process_time() - cpu0, wall=time.perf_counter() - wall0)

        t.use.probe, t.run = timed, measured
        return t

    if args.profile:
        profile(trainer, tmp, args)
        return

    def plain() -> float:
        # In a thread of its own, as in the app: on a busy machine torch's intra-op
        # threads behave very differently in the main thread and in a new one (see RESULTS.md).
        out = []
        t = threading.Thread(target=lambda: out.append(trainer([], threading.Event()).run()))
        t.start()
        t.join()
        return out[0].step / out[0].elapsed_s

    def in_app() -> float:
        from charrnn.tui.app import CharRNNApp

        async def go() -> float:
            app = CharRNNApp(trainer, root=tmp)
            async with app.run_test(size=(120, 40)) as pilot:
                if args.screen == "activations":
                    await pilot.press("2")
                while app.training or app.result is None:
                    await asyncio.sleep(0.5)  # (the bench's own wake-ups: rare, so as not to cost the UI thread)
                window["frame"] = getattr(app, "frame_cost_s", float("nan"))  # what drawing the last frame cost the UI thread
            return app.result.step / app.result.elapsed_s

        return asyncio.run(go())

    def run(kind: str) -> tuple[float, str]:
        """One run of `kind` ("plain" or "app"): steps/s, and what it cost in CPU."""
        speed = plain() if kind == "plain" else in_app()
        steps = args.steps
        cost = f"process CPU {window['cpu'] / steps * 1e3:.1f} ms a step"
        if kind == "app":
            cost += (f"; the UI thread {window['ui']:.2f} s ({window['ui'] / window['wall']:.2%} of a core); "
                     f"{len(probes)} probes, {sum(probes):.2f} s of the training thread's CPU; the last frame {window['frame'] * 1e3:.0f} ms to draw")  # fmt: skip
        return speed, f"{cost}; collections: {gcs.summary()}"

    # Warm-up, one run of each, not counted: first-touch costs, thread pools, the app's first
    # import and CSS. Then the order alternates (no UI first, then the app first, ...), so
    # that neither kind always runs after the other.
    for kind in ("plain", "app"):
        speed, cost = run(kind)
        print(f"warm-up, {'no UI' if kind == 'plain' else 'app'}: {speed:.1f} steps/s ({cost})", flush=True)
    base, ui = [], []
    for i in range(args.repeats):
        got = {}
        for kind in ("plain", "app") if i % 2 == 0 else ("app", "plain"):
            got[kind] = run(kind)
            print(f"repeat {i + 1}, {'no UI' if kind == 'plain' else 'app  '}: {got[kind][0]:.1f} steps/s ({got[kind][1]})", flush=True)
        base.append(got["plain"][0])
        ui.append(got["app"][0])
    b, u = median(base), median(ui)
    ratios = [x / y for x, y in zip(ui, base)]
    print(
        f"model: lstm {args.layers}x{args.hidden}, batch {args.batch_size} x {args.seq_len}, {args.steps} steps; app screen: {args.screen}"
    )
    print(f"each repeat's ratio: {', '.join(f'{r:.3f}' for r in ratios)} (median {median(ratios):.3f})")
    print(f"median: no UI {b:.1f} steps/s ({min(base):.1f}-{max(base):.1f}), app {u:.1f} steps/s ({min(ui):.1f}-{max(ui):.1f}); "
          f"ratio app / no UI = {u / b:.3f}")  # fmt: skip


def profile(trainer, tmp: Path, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """Each piece of the app's cost on its own: the training thread's probe, the UI
    thread's frame, the collector."""
    import cProfile
    import pstats

    from charrnn.inspect.trace import Probe
    from charrnn.tui import messages as m
    from charrnn.tui.app import CharRNNApp
    from charrnn.tui.bridge import Bridge
    from charrnn.training.telemetry import ProbeEvent, StepEvent

    def _step_event(i: int) -> StepEvent:
        return StepEvent(step=i, total_steps=10**6, epoch=i / 1000, loss=2.0, lr=2e-3, grad_norm=1.0, tokens_per_s=50_000.0,
                         chars_per_s=50_000.0, elapsed_s=i / STEP_HZ, eta_s=1e4, progress=i / 10**6)  # fmt: skip

    # 1. the training thread: a step, and a probe of the default probe text
    t = trainer([], threading.Event())
    task, use, net = t.task, t.use, t.model
    steps = []
    for i in range(30):
        t0 = time.perf_counter()
        loss = task.loss(net, task.batch(0, i))
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.optimizer.step()
        steps.append(time.perf_counter() - t0)
    step = statistics.median(steps[5:])
    costs = []
    for _ in range(12):
        t0 = time.perf_counter()
        frame = use.probe(net, t.probe_text, 0)
        costs.append(time.perf_counter() - t0)
    probe = statistics.median(costs[2:])
    # Frames as a live run sends them: each from a model a few steps on from the last, so
    # that no widget finds the data it drew last time (a frame of equal values would skip the
    # chart, and the same arrays would skip the heatmap).
    distinct = [frame]
    for k in range(3):
        for i in range(3):
            loss = task.loss(net, task.batch(0, 30 + 3 * k + i))
            t.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t.optimizer.step()
        distinct.append(use.probe(net, t.probe_text, k + 1))
    print(f"training thread: a step {step * 1e3:.1f} ms; a probe of {len(frame.acts.tokens)} characters {probe * 1e3:.1f} ms "
          f"= {probe / step:.1f} steps (the trainer spaces probes so that a probe and the drawing of its frame, below, "
          f"take at most {PROBE_SHARE:.0%} of the time together)")  # fmt: skip

    # 2. the UI thread: frames posted one after another, each waited for until drawn
    frames = 20

    async def draw(screen: str, prof: cProfile.Profile | None) -> float:
        app = CharRNNApp(root=tmp)
        async with app.run_test(size=(120, 40)) as pilot:
            if screen == "activations":
                await pilot.press("2")
            await pilot.pause(0.3)
            cpu = []
            for i in range(frames):
                f = distinct[i % len(distinct)]
                p = Probe(i, copy.deepcopy(f.acts), copy.deepcopy(f.grad_flow))  # new arrays, as each live frame has
                t0 = time.thread_time()
                if prof is not None:
                    prof.enable()
                app.post_message(m.ProbeFrame(ProbeEvent(i, p)))
                while app.state.probe is not p or (screen == "activations" and app.screen.probe is not p):
                    await asyncio.sleep(0.001)
                await pilot.pause(0.15)  # the redraw timer and the compositor's refresh
                if prof is not None:
                    prof.disable()
                cpu.append(time.thread_time() - t0)
        return statistics.median(cpu), min(cpu), max(cpu)

    def ms(c: tuple[float, float, float]) -> str:
        return f"{c[0] * 1e3:.1f} ms ({c[1] * 1e3:.1f}-{c[2] * 1e3:.1f})"

    idle = asyncio.run(draw("train", None))
    shown = asyncio.run(draw("activations", None))
    print(f"UI thread per frame (CPU, median and range of {frames}, distinct frames): "
          f"train screen {ms(idle)}, activations screen {ms(shown)}")  # fmt: skip

    # A run's stream without the run: a thread sends step events at the trainer's rate and a
    # frame every 2 s through the app's real bridge, for 6 s, on each screen: the share of a
    # core the UI thread takes (from training, on a machine whose cores training fills).
    async def stream(screen: str, seconds: float = 6.0, events: bool = True) -> float:
        """The UI thread's share of a core on `screen` for `seconds`, with the stream or with nothing arriving."""
        app = CharRNNApp(root=tmp)
        async with app.run_test(size=(120, 40)) as pilot:
            if screen == "activations":
                await pilot.press("2")
            await pilot.pause(0.3)
            bridge, done = Bridge(app), threading.Event()

            def send() -> None:
                i = 0
                while not done.wait(1.0 / STEP_HZ):
                    i += 1
                    bridge.on_step(_step_event(i))
                    if i % int(2 * STEP_HZ) == 1:
                        f = distinct[i % len(distinct)]
                        bridge.on_probe(ProbeEvent(i, Probe(i, copy.deepcopy(f.acts), copy.deepcopy(f.grad_flow))))

            sender = threading.Thread(target=send if events else done.wait)
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            sender.start()
            await asyncio.sleep(seconds)
            done.set()
            sender.join()
            return (time.thread_time() - cpu0) / (time.perf_counter() - wall0)

    def still(screen: str) -> float:
        return asyncio.run(stream(screen, 3.0, events=False))

    print(f"UI thread with nothing arriving: train screen {still('train'):.2%} of a core, "
          f"activations screen {still('activations'):.2%}")  # fmt: skip
    print(f"UI thread under a run's stream ({STEP_HZ:.0f} step updates a second, a frame every 2 s; 6 s): "
          f"train screen {asyncio.run(stream('train')):.2%} of a core, "
          f"activations screen {asyncio.run(stream('activations')):.2%}")  # fmt: skip
    prof = cProfile.Profile()
    asyncio.run(draw("activations", prof))
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
    print("the UI thread drawing frames on the activations screen, busiest functions (cProfile; times include its overhead):")
    print("\n".join(line for line in s.getvalue().splitlines() if line.strip() and not line.startswith(("   Ordered", "   List"))))

    # 3. the collector in a running app
    async def collect() -> tuple[float, float, int]:
        app = CharRNNApp(root=tmp)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            frozen = gc.get_freeze_count()
            gc.unfreeze()
            t0 = time.perf_counter()
            gc.collect()
            before = time.perf_counter() - t0
            gc.freeze()
            t0 = time.perf_counter()
            gc.collect()
            return before, time.perf_counter() - t0, frozen

    before, after, frozen = asyncio.run(collect())
    print(f"a full garbage collection in a running app: {before * 1e3:.0f} ms, {after * 1e3:.1f} ms with what it holds at start-up frozen "
          f"(the app freezes {frozen:,} objects when it mounts)")  # fmt: skip


if __name__ == "__main__":
    main()
