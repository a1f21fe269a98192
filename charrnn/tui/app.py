"""The charrnn app: three screens over one training run, and the thread that trains it.

Training runs in a thread worker that lives on the App, so switching screens
never touches it. The worker builds the Trainer from a factory (reading the
corpus happens there too, off the UI thread) and hands it a `Bridge` sink and a
stop event. The bridge posts messages; their handlers only update `RunState`;
a timer redraws the visible screen when the state has moved, at most ten
times a second, and sleeps while nothing moves. Stopping or
quitting sets the event: the trainer finishes its step, saves a checkpoint and
returns, and only then does the app exit, so no thread outlives it.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from ..config import DEFAULT_CHECKPOINTS
from ..errors import CharRNNError
from ..training.telemetry import METRICS, MessageEvent, ProbeEvent, metric_text
from . import messages as m
from . import state as st
from .activations_screen import ActivationsScreen
from .bridge import Bridge
from .dialogs import HelpScreen, OpenDialog, RunForm
from .atlas_screen import AtlasScreen
from .explore_screen import ExploreScreen
from .runs import RunRequest, TrainerFactory, factory, list_runs
from .train_screen import TrainScreen

REDRAW_HZ = 10.0


class CharRNNApp(App):
    CSS_PATH = "charrnn.tcss"
    TITLE = "charrnn"
    ENABLE_COMMAND_PALETTE = False
    MODES = {"train": TrainScreen, "activations": ActivationsScreen, "explore": ExploreScreen, "atlas": AtlasScreen}
    DEFAULT_MODE = "train"
    SCREENS_GROUP = Binding.Group("Screens")
    BINDINGS = [
        Binding("1", "switch_mode('train')", "Train screen", group=SCREENS_GROUP),
        Binding("2", "switch_mode('activations')", "Activations screen", group=SCREENS_GROUP),
        Binding("3", "switch_mode('explore')", "Explore screen", group=SCREENS_GROUP),
        Binding("4", "switch_mode('atlas')", "Atlas screen", group=SCREENS_GROUP),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        make_trainer: TrainerFactory | None = None,
        *,
        root: Path | str = DEFAULT_CHECKPOINTS,
        explore: str | None = None,
        request: RunRequest | None = None,
        explore_seed: int | None = None,
    ):
        super().__init__()
        self.explore_seed = explore_seed  # the seed of the first text the explore screen makes (None: a new one)
        self.state = st.RunState()
        self.root = Path(root)
        self.result: Any = None  # the last run's TrainResult
        self.last_request = request or RunRequest()
        self._initial = make_trainer
        self._explore_request = explore
        self._explored = False
        self._resume_hint = explore  # the run last opened for exploring: r resumes it when nothing has trained yet
        self._stop = threading.Event()
        self._done = threading.Event()  # set whenever no training thread is running
        self._done.set()
        self._trainer: Any = None  # the running Trainer (only its probe_text is touched from here)
        self._probe_text: str | None = None
        self.probe_label: str | None = None  # the label the activations screen traces under (None: no label)
        self._train_worker: Worker | None = None
        self._quit_when_done = False
        self._drawn: dict[int, int] = {}
        self.watching_probes = False  # the activations screen is shown: the trainer makes frames (bridge.py)
        self.explorer: Any = None  # the checkpoint the explore screen loaded (explorer.Explorer)
        self._traced: tuple | None = None  # what trace_loaded() traced last: (checkpoint, step, probe text)
        self.quit_by_user = False  # q / ctrl+q: a deliberate quit (the run saved: exit status 0, not 130)

    def on_mount(self) -> None:
        # Everything alive now (torch, Textual, the screens: ~200k objects) lives as long
        # as the app. Out of the collector's sight, a full collection no longer takes
        # ~250 ms holding the GIL, which the training thread waits out (bench/RESULTS.md).
        gc.freeze()
        # The redraw timer runs only while there is something to draw: a state change or a
        # new screen wakes it, and it pauses once the visible screen shows the state. Ticking
        # on at 10 Hz with nothing new cost the UI thread 0.4% of a core (bench/RESULTS.md).
        self._ticker = self.set_interval(1.0 / REDRAW_HZ, self._tick, pause=True)
        self.state.listener = self._wake
        self.screen_change_signal.subscribe(self, lambda _screen: self._wake())
        self._wake()
        if self._explore_request is not None:
            self.switch_mode("explore")
        if self._initial is not None:
            self.start_training(self._initial)

    # ------------------------------------------------------------ training

    @property
    def training(self) -> bool:
        return not self._done.is_set()

    def start_training(self, make_trainer: TrainerFactory) -> bool:
        if self.training:
            self.notify("a run is already training; x stops it.", severity="warning")
            return False
        self._stop = threading.Event()
        self._done.clear()
        self.state.phase, self.state.error = st.PREPARING, None
        self.state.touch()
        self._train_worker = self._train(make_trainer, self._stop)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="train")
    def _train(self, make_trainer: TrainerFactory, stop: threading.Event) -> Any:
        try:
            trainer = make_trainer([Bridge(self)], stop)
            if self._probe_text:
                trainer.probe_text = self._probe_text
            use = getattr(trainer, "use", None)  # (a scripted trainer in the tests has none)
            if hasattr(use, "probe_label"):
                use.probe_label = self.probe_label
            self._trainer = trainer
            if stop.is_set():  # quit while the corpus was being read: nothing trained, nothing to save
                return None
            return trainer.run()
        except CharRNNError as e:
            self.post_message(m.TrainFailed(str(e)))
        except OSError as e:
            where = f" {e.filename}" if e.filename else ""
            self.post_message(m.TrainFailed(f"could not read or write{where}: {e.strerror or e}."))
        except MemoryError:
            self.post_message(m.TrainFailed("out of memory; try a smaller batch, hidden size or sequence length."))
        finally:
            self._trainer = None
            self._done.set()
        return None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._train_worker or not event.worker.is_finished:
            return
        if event.state == WorkerState.ERROR:  # a bug, not the user's doing: say what, keep the app alive
            self.state.failed(f"training stopped by an internal error: {event.worker.error!r}")
            self.notify(self.state.error or "", severity="error", timeout=15)
        elif event.state == WorkerState.SUCCESS and event.worker.result is not None:
            self.result = event.worker.result
        if self.state.active:
            self.state.phase = st.ENDED if self.state.end is not None else st.IDLE
            self.state.touch()
        if self._quit_when_done:
            self.exit(self.result)

    def action_stop_training(self) -> None:
        if not self.training:
            self.notify("nothing is training.", severity="warning")
            return
        self._stop.set()
        self.state.phase = st.STOPPING
        self.state.touch()
        self.notify("stopping: saving a checkpoint…")

    def action_new_run(self) -> None:
        if self.training:
            self.notify("a run is already training; x stops it first.", severity="warning")
            return
        self.push_screen(RunForm(self.last_request, list_runs(self.root)), self._form_done)

    def _form_done(self, req: RunRequest | None) -> None:
        if req is None:
            return
        self.last_request = req
        try:
            make = factory(req, self.root)
        except CharRNNError as e:
            self.notify(str(e), severity="error", title="new run")
            return
        self.start_training(make)

    def run_to_resume(self) -> str | None:
        if self.state.start is not None:
            return self.state.start.run_dir
        return self._resume_hint

    def action_resume(self) -> None:
        if self.training:
            self.notify("a run is already training.", severity="warning")
            return
        target = self.run_to_resume()
        finished = self.state.end is not None and self.state.end.stopped_by != "interrupt"
        if target is None or finished:
            if finished:
                self.notify("this run reached its limit: give a larger one in the form, then pick the run.")
            self.action_new_run()
            return
        try:
            make = factory(RunRequest(resume=target, device=self.last_request.device), self.root)
        except CharRNNError as e:
            self.notify(str(e), severity="error")
            return
        self.start_training(make)

    def set_probe_text(self, text: str) -> None:
        """The activations screen's probe text, from the next frame on ('' for the default)."""
        self._probe_text = text or None
        trainer = self._trainer
        if trainer is not None:
            trainer.probe_text = text or trainer.default_probe_text()  # read by the training thread at its next probe
        if not self.training and self.explorer is not None:
            self.trace_loaded()
            self.notify(f"probe text set: traced with {self.explorer.path}.")
            return
        self.notify("probe text set: the next frame traces it." if self.training else "probe text set for the next run.")

    def trace_loaded(self) -> None:
        """With no run training, the activations screen shows the loaded checkpoint (the
        explore screen's) on the probe text: traced here, once per model and text. While a
        run trains, its own frames come from the trainer instead."""
        ex = self.explorer
        if self.training or ex is None:
            return
        key = (str(ex.path), ex.step, self._probe_text, self.probe_label)
        if key != self._traced:
            self._traced = key
            self._trace_loaded(ex, self._probe_text, self.probe_label)

    @work(thread=True, exclusive=True, exit_on_error=False, group="trace-loaded")
    def _trace_loaded(self, explorer: Any, text: str | None, label: str | None) -> None:
        try:
            self.post_message(m.ProbeFrame(ProbeEvent(explorer.step, explorer.probe(text, label))))
        except CharRNNError as e:
            self.post_message(m.TrainNote(MessageEvent("warning", f"probe skipped: {e}")))

    def set_probe_label(self, label: str | None) -> None:
        """The label the activations screen traces under (None: no label), from the next frame on."""
        self.probe_label = label
        use = getattr(self._trainer, "use", None)
        if hasattr(use, "probe_label"):
            use.probe_label = label  # read by the training thread at its next probe
        self.trace_loaded()  # no run training: trace the loaded checkpoint under it now
        self.notify(f"tracing under the label {label}." if label is not None else "tracing with no label.")

    async def action_quit(self) -> None:
        self.quit_by_user = True
        if not self.training:
            self.exit(self.result)
            return
        if self._quit_when_done:
            self.notify("still saving the checkpoint…")
            return
        self._quit_when_done = True
        self.action_stop_training()

    def shutdown_training(self, timeout: float | None = None) -> bool:
        """Stop the run and wait for its thread to save and return (the app is closing)."""
        self._stop.set()
        return self._done.wait(timeout)

    def on_unmount(self) -> None:
        self.shutdown_training(timeout=300)

    # ------------------------------------------------------------- messages

    def on_train_started(self, message: m.TrainStarted) -> None:
        e = message.event
        self.state.started(e, message.history)
        self._drawn.clear()
        verb = f"resumed at step {e.start_step:,}" if e.start_step else "started"
        self.state.note(f"{verb}: {e.run_dir}", "bold")
        self.state.note(f"{e.corpus}", "dim")

    def on_step_update(self, message: m.StepUpdate) -> None:
        for e in message.earlier:
            self.state.stepped(e)
        self.state.stepped(message.event)

    def on_eval_update(self, message: m.EvalUpdate) -> None:
        e = message.event
        self.state.evaluated(e)
        what = "final" if e.final else f"step {e.step:,}"
        score = f"{e.val_bpc:.3f} bits/char ({e.val_loss:.4f} nats)" if e.val_bpc is not None else f"{e.val_loss:.4f} nats"
        metrics = "".join(f", {metric_text(k, v)}" for k, v in [kv for kv in e.metrics.items() if kv[0] in METRICS][:2])
        self.state.note(f"{what}: val {score}{metrics}{' *' if e.best else ''}", "")

    def on_sample_update(self, message: m.SampleUpdate) -> None:
        self.state.sampled(message.event)

    def on_checkpoint_saved(self, message: m.CheckpointSaved) -> None:
        e = message.event
        self.state.saved(e)
        self.state.note(f"saved {Path(e.path).name} at step {e.step:,}", "green" if e.kind == "last" else "dim green")
        if self.state.phase == st.STOPPING and e.kind == "last":
            self.notify(f"checkpoint saved: {e.path}", title="stopped")

    def on_probe_frame(self, message: m.ProbeFrame) -> None:
        self.state.probed(message.event.payload)

    def on_train_note(self, message: m.TrainNote) -> None:
        e = message.event
        self.state.note(e.text, "yellow" if e.level == "warning" else "")

    def on_train_ended(self, message: m.TrainEnded) -> None:
        e = message.event
        self.state.ended(e)
        how = {"interrupt": "stopped", "steps": "step limit reached", "epochs": "epochs done", "time": "time budget spent"}
        self.state.note(f"{how.get(e.stopped_by, e.stopped_by)} at step {e.step:,}", "bold")

    def on_train_failed(self, message: m.TrainFailed) -> None:
        self.state.failed(message.error)
        self.state.note(message.error, "red")
        self.notify(message.error, severity="error", title="training", timeout=15)

    # -------------------------------------------------------------- drawing

    def _wake(self) -> None:
        """Something may need drawing: the redraw timer runs until it is drawn."""
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.resume()

    def _tick(self) -> None:
        if self.redraw():
            self._ticker.pause()

    def redraw(self, force: bool = False) -> bool:
        """Bring the visible screen up to date (at most ten times a second, while the
        state moves); whether it is (False: its screen is not mounted yet, try again)."""
        # The app is shutting down: a tick can come while its screens' widgets are being
        # removed (a query would find nothing), or after the last screen is gone.
        if not self.is_running or not self.screen_stack:
            return True
        screen = self.screen
        sync = getattr(screen, "sync", None)
        if sync is None:  # a dialog, or a screen that draws itself
            return True
        if not screen.is_mounted:  # a screen just pushed draws itself in its on_mount
            return False
        if force or self._drawn.get(id(screen)) != self.state.version:
            self._drawn[id(screen)] = self.state.version
            sync(self.state)
        return self._drawn[id(screen)] == self.state.version  # (a sync that moved the state: draw again)

    # ------------------------------------------------------------- explore

    def take_explore_target(self) -> str | None:
        """What the explore screen should load now: an explicit request, else (on its
        first visit) the run being trained or the newest run."""
        target, self._explore_request = self._explore_request, None
        if target is None and not self._explored:
            if self.state.start is not None:
                target = self.state.start.run_dir
            else:
                runs = list_runs(self.root, limit=1)
                target = str(runs[0].path) if runs else None
        self._explored = True
        return target

    def action_open_checkpoint(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self._explore_request = self._resume_hint = path
                if self.current_mode != "explore":
                    self.switch_mode("explore")

        self.push_screen(OpenDialog(list_runs(self.root)), done)

    def action_help(self) -> None:
        screens = (("Train", TrainScreen), ("Activations", ActivationsScreen), ("Explore", ExploreScreen), ("Atlas", AtlasScreen))
        sections = [("Everywhere", [b for b in self.BINDINGS if isinstance(b, Binding)]), *((n, s.BINDINGS) for n, s in screens)]
        self.push_screen(HelpScreen(sections))  # type: ignore[arg-type]


def train_in_app(make_trainer: TrainerFactory, root: Path | str = DEFAULT_CHECKPOINTS) -> tuple[Any, bool]:
    """`charrnn train ... --tui`: train in the app; returns the run's TrainResult (None
    if it never ran) and whether the user quit it (q), as opposed to an interrupt."""
    app = _run(CharRNNApp(make_trainer, root=root))
    return app.result, app.quit_by_user


def open_app(explore: str | None = None, root: Path | str = DEFAULT_CHECKPOINTS, request: RunRequest | None = None) -> Any:
    """`charrnn tui`: the app on a checkpoint to explore, or idle, ready for a run."""
    return _run(CharRNNApp(root=root, explore=explore, request=request)).result


def _run(app: CharRNNApp) -> CharRNNApp:
    try:
        app.run()
    finally:
        app.shutdown_training()  # whatever ended the app, the run saves and its thread returns
    return app
