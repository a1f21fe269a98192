"""TensorBoard logs of a run: metrics.jsonl's scalars, the samples, and gate saturation.

A sink like the others (telemetry.py): the loop calls it on rank 0 alone, with the
same frozen events the progress bar and metrics.jsonl get, so the logs hold the
very numbers metrics.jsonl holds (`eval/<key>` for each evaluation, `final/<key>`
for the end-of-run one over the whole split), the training loss at the progress
bar's rate (`train/...`), each sample as text, and at each evaluation, from one
trace of the probe text through the per-step path (the TUI's frame,
inspect/trace.probe), two histograms per saturating signal and layer: the share of
the text each unit spends saturated (`saturation/<signal>/layer<k>`: a gate shut
below 0.1 or open above 0.9, a tanh beyond ±0.9; registry.THRESHOLDS) and the
signal's values themselves (`values/<signal>/layer<k>`).

The logs go to RUN/tensorboard, so `tensorboard --logdir checkpoints` shows every
run side by side; or to DIR/<run name> (a pointer file in the run says where).
The `tensorboard` package is an optional extra, imported only when asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .telemetry import BaseSink, EndEvent, EvalEvent, ProbeEvent, SampleEvent, StartEvent, StepEvent

LOGS = "tensorboard"  # the log folder inside a run
POINTER = "tensorboard.json"  # in a run whose logs live elsewhere: {"logdir": ...}
FLUSH_S = 10  # the writer's own flush period; every evaluation flushes too


def summary_writer() -> Any:
    """torch's SummaryWriter class, or a one-line error naming the extra to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError('--tensorboard needs the tensorboard package: pip install "charrnn[tensorboard]".') from None
    return SummaryWriter


def logdir_of(run_dir: Path) -> Path | None:
    """Where a run's TensorBoard logs are, if it has any (its own folder, or where its pointer says)."""
    own = Path(run_dir) / LOGS
    if any(own.glob("events.out.tfevents.*")):
        return own
    try:
        where = Path(json.loads((Path(run_dir) / POINTER).read_text(encoding="utf-8"))["logdir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return where if any(where.glob("events.out.tfevents.*")) else None


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics.jsonl line (not its flags, not a missing value, not the step)."""
    return {k: float(v) for k, v in record.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}  # fmt: skip


class TensorBoardSink(BaseSink):
    """Writes a run's TensorBoard event files. `root` None: RUN/tensorboard; else root/<run name>."""

    probes_at_eval = True  # the trainer traces its probe text at each evaluation for us (on_eval_probe)

    def __init__(self, root: Path | None = None):
        self.writer_class = summary_writer()  # a missing extra fails here, before any training
        self.root = Path(root) if root is not None else None
        self.writer: Any = None
        self.logdir: Path | None = None

    def on_start(self, e: StartEvent) -> None:
        self.close()  # a sink handed to a second run (the app) starts a new event file
        run_dir = Path(e.run_dir)
        self.logdir = run_dir / LOGS if self.root is None else self.root / run_dir.name
        # A resumed run starts again after its checkpoint: TensorBoard drops what an earlier
        # process logged past that step, so a curve never doubles back on itself.
        purge = e.start_step + 1 if e.start_step else None
        self.writer = self.writer_class(str(self.logdir), purge_step=purge, flush_secs=FLUSH_S)
        if self.root is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / POINTER).write_text(json.dumps({"logdir": str(self.logdir.resolve())}) + "\n", encoding="utf-8")
        if not e.start_step:
            about = f"{e.model}, {e.params:,} parameters; {e.corpus}; {e.device}, {e.precision}"
            self.writer.add_text("run", about, 0)

    def on_step(self, e: StepEvent) -> None:
        for name, value in (("loss", e.loss), ("lr", e.lr), ("grad_norm", e.grad_norm), ("chars_per_s", e.chars_per_s)):
            self.writer.add_scalar(f"train/{name}", value, e.step)

    def on_eval(self, e: EvalEvent) -> None:
        group = "final" if e.final else "eval"
        for name, value in scalars(e.record()).items():
            self.writer.add_scalar(f"{group}/{name}", value, e.step)
        self.writer.flush()

    def on_sample(self, e: SampleEvent) -> None:
        # TensorBoard reads text as Markdown: a fenced block keeps the sample's lines and spaces
        fence = "````" if "```" in e.text else "```"
        self.writer.add_text("sample", f"{fence}\n{e.text}\n{fence}", e.step)

    def on_eval_probe(self, e: ProbeEvent) -> None:
        from ..inspect import stats

        acts = getattr(e.payload, "acts", None)
        if acts is None:
            return
        for name, frac in stats.saturation(acts).items():  # (L, H, 2): shut, open
            for k in range(frac.shape[0]):
                self.writer.add_histogram(f"saturation/{name}/layer{k}", frac[k].sum(-1), e.step)  # (H,) share of the text
                self.writer.add_histogram(f"values/{name}/layer{k}", acts.signals[name][k].reshape(-1), e.step)  # (T*H,)

    def on_end(self, e: EndEvent) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the event file (also when training ended by an error: the CLI calls it)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
