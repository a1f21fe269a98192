"""The training loop every task shares: a schedule, clipping, checkpoints, stopping.

The loop asks its task (tasks/base.py) for batches and their loss, and the task's
use (tasks/use.py) for what it shows; it owns the rest. Gradient-norm clipping keeps
the occasional exploding gradient of a recurrent net from throwing the weights off
a cliff (section 10.11.1). A non-finite step is skipped, five in a row stop the
run, and no checkpoint is ever written with non-finite weights.

The loop knows nothing about any UI: it reports to sinks (telemetry.py), among
them the one that writes metrics.jsonl, and checks a `threading.Event` once per
step to stop. The loss stays on the device between reports: no `.item()` per step.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import DataConfig, ModelConfig, TrainConfig
from ..errors import CharRNNError, CheckpointError, ConfigError, RunBusyError, TrainingError
from ..runtime import distributed
from ..runtime.hardware import autocast, one_thread, pick_device, pick_precision, precision_name
from ..tasks import task_spec
from . import checkpoint, recipe, space
from .runlock import RunLock
from .schedule import lr_at
from .telemetry import (
    PROBE_IDLE_S,
    CheckpointEvent,
    EndEvent,
    EvalEvent,
    Fanout,
    MessageEvent,
    MetricsSink,
    ProbeEvent,
    RateGate,
    SampleEvent,
    StartEvent,
    StepEvent,
    next_probe,
)

__all__ = ["Trainer", "TrainResult", "lr_at"]

STEP_HZ = 10.0  # step statistics to the sinks, at most (probes: telemetry.next_probe)
STOPS = (None, "steps", "epochs", "time", "interrupt")


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    stopped_by: str
    elapsed_s: float
    best_val_loss: float | None
    final_val_loss: float | None
    final_val_bpc: float | None


class Trainer:
    """One training run: set up from configs and the opened data (or a checkpoint), then `run()`."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        data_cfg: DataConfig,
        cfg: TrainConfig,
        data: Any,
        run_dir: Path,
        sinks: list[Any] | None = None,
        stop: threading.Event | None = None,
        resume: checkpoint.Checkpoint | None = None,
        probe_text: str | None = None,
        dist: distributed.Dist = distributed.SINGLE,
    ):
        self.cfg = cfg.validate()
        self.dist = dist
        self.data_cfg = data_cfg
        self.run_dir = Path(run_dir)
        self.settings: tuple[Any, Any, Any] | None = None  # (data, model, train) to write as config.toml (plan.trainer)
        # rank 0 alone talks to the world, and writes the metrics log
        self.out = Fanout([*(sinks or []), MetricsSink(self.run_dir)] if dist.main else [])
        self.stop = stop or threading.Event()
        self.device = pick_device(cfg.device, dist.local_rank)
        self.amp = pick_precision(cfg.precision, self.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.task = task_spec(model_cfg.task).load()(model_cfg, data_cfg, cfg, data, dist, self.device, self.amp)
        self.use, self.model_cfg = self.task.Use(self.task), self.task.model_cfg  # use: the samples shown, the probe's frames
        if resume is None:
            torch.manual_seed(cfg.seed)
        self.model = self.task.build_model().to(self.device)
        self.net = distributed.wrap(self.model, dist, self.device)  # what the training step calls
        if dist.active:
            torch.manual_seed(cfg.seed + 7919 * dist.rank)  # the same weights, different dropout masks
        self.optimizer = self.model.configure_optimizers(cfg.lr, cfg.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        steps = [cfg.steps] if cfg.steps else []
        if cfg.epochs:
            steps.append(math.ceil(cfg.epochs * self.task.steps_per_epoch))
        self.total_steps = min(steps) if steps else None
        self.time_s = cfg.time_s
        # where the run stands; a resumed run takes these from its checkpoint
        self.step, self.epoch, self.batch_i, self.elapsed0 = 0, 0, 0, 0.0
        self.best_val: float | None = None
        self.best_bpc: float | None = None
        self.last_eval: dict[str, Any] | None = None
        self.fresh = resume is None
        if resume is not None:
            checkpoint.restore(self, resume)
        # Activation probes for UIs that ask for them (a sink with wants_probes = True).
        # The text may be replaced from another thread while training runs.
        self.wants_probes = any(getattr(s, "wants_probes", False) for s in self.out.sinks)
        self.probes_at_eval = any(getattr(s, "probes_at_eval", False) for s in self.out.sinks)  # TensorBoard's histograms
        self.probe_text = probe_text if probe_text is not None else self.default_probe_text()

    def default_probe_text(self) -> str:
        return self.use.default_probe_text()

    # ------------------------------------------------------------ checkpoints

    def save(self, best: bool = False) -> Path:
        """Write last.pt; with best, make best.pt the same file. Every rank calls it
        (the task may gather what every rank holds); rank 0 writes."""
        path = self.run_dir / checkpoint.LAST
        section = self.task.checkpoint_state()
        if not self.dist.main:
            return path
        checkpoint.save(path, checkpoint.of_trainer(self, section))
        self.out.emit("on_checkpoint", CheckpointEvent(self.step, str(path), "last"))
        if best:
            checkpoint.copy(path, self.run_dir / checkpoint.BEST)
            self.out.emit("on_checkpoint", CheckpointEvent(self.step, str(self.run_dir / checkpoint.BEST), "best"))
        return path

    # ------------------------------------------------------------------- loop

    def _elapsed(self) -> float:
        return self.elapsed0 + (time.monotonic() - self.t0 if hasattr(self, "t0") else 0.0)

    def _progress(self, elapsed: float | None = None) -> float:
        p = 0.0
        if self.total_steps:
            p = max(p, self.step / self.total_steps)
        if self.time_s:
            p = max(p, (self._elapsed() if elapsed is None else elapsed) / self.time_s)
        return p

    def _done(self) -> tuple[str | None, float]:
        """Why to stop now (or None), and the elapsed time the schedule uses. With
        several processes the ranks agree on both (one tiny all-reduce a step), so
        they stop together and step with the same learning rate."""
        elapsed, why = self._elapsed(), None
        if self.stop.is_set():
            why = "interrupt"
        elif self.total_steps is not None and self.step >= self.total_steps:
            why = "epochs" if self.cfg.steps is None or self.cfg.steps > self.total_steps else "steps"
        elif self.time_s is not None and elapsed >= self.time_s:
            why = "time"
        if self.dist.active:
            t = torch.tensor([float(STOPS.index(why)), elapsed], device=self.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            why, elapsed = STOPS[int(t[0].item())], float(t[1].item())
        return why, elapsed

    def run(self) -> TrainResult:
        """Train until a limit or `stop`, holding the run folder's lock (runlock.py) throughout."""
        lock = RunLock(self.run_dir)
        busy = None
        if self.dist.main:  # rank 0 alone writes, so rank 0 alone locks; the others hear whether it could
            try:
                lock.acquire()
                if self.fresh and (self.run_dir / checkpoint.LAST).exists():  # a run started here since the plan looked
                    busy = ConfigError(f"{self.run_dir} already holds a run; resume it (--resume {self.run_dir}) or choose another name.")
            except CharRNNError as e:
                busy = e
            except OSError as e:  # rank 0 must not leave the others waiting for its answer
                busy = CheckpointError(f"cannot write into {self.run_dir}: {e.strerror or e}.")
        if self.dist.active:
            message = distributed.broadcast(self.dist, None if busy is None else str(busy))
            busy = busy or (RunBusyError(message) if message else None)
        try:
            if busy is not None:
                raise busy
            return self._run()
        finally:
            lock.release()

    def _run(self) -> TrainResult:
        cfg, task = self.cfg, self.task
        self.t0 = time.monotonic()
        if self.dist.main:
            for stale in self.run_dir.glob(".*.pt.*.tmp"):  # left by a process killed mid-save
                stale.unlink(missing_ok=True)
            if self.settings is not None:  # under the lock: a run refused as busy writes nothing
                from .. import runconfig

                runconfig.write(self.run_dir, *self.settings)
        self.out.emit("on_start", self._start_event())
        if self.dist.main:  # a full disk is better known now than at the first checkpoint
            last = self.run_dir / checkpoint.LAST
            need = max(space.estimate(self.model, self.optimizer), last.stat().st_size if last.exists() else 0)
            if (low := space.low_space(self.run_dir, need)) is not None:
                self.out.emit("on_message", MessageEvent("warning", low))
        if self._done()[0] not in (None, "interrupt"):
            raise ConfigError(
                f"this run already reached its limit at step {self.step}; "
                "give it a larger limit (--steps, --epochs or --time) to train further."
            )
        self.model.train()
        if self.fresh and self.step == 0:  # a kind may fit part of itself in closed form first (an ESN's readout)
            note = task.warm_start(self.model, lambda: self.stop.is_set() or (self.time_s is not None and self._elapsed() >= self.time_s))
            if note:
                self.out.emit("on_message", MessageEvent("info", note))
        gate = RateGate(STEP_HZ)
        next_probe = 0.0
        loss_sum = torch.zeros((), device=self.device)  # stays on the device between reports
        loss_n, eval_sum, eval_n, bad = 0, 0.0, 0, 0
        train_time, units_timed = 0.0, 0
        saved_at: float | None = None  # the run's clock at its last checkpoint, as the ranks agree on it (`elapsed`)
        while True:
            stopped_by, elapsed = self._done()
            if stopped_by is not None:
                break
            saved_at = elapsed if saved_at is None else saved_at
            t_step = time.monotonic()
            batch = task.batch(self.epoch, self.batch_i)
            lr = lr_at(cfg, self.step, self._progress(elapsed))
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            with autocast(self.device, self.amp):
                loss = task.loss(self.net, batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip)
            # The one host sync per step: a non-finite loss or gradient must skip the
            # update before it reaches the weights (GradScaler syncs here as well).
            # On a CPU the read is free. Under DDP the gradient norm, the same on
            # every rank after the all-reduce, decides alone, so ranks never disagree.
            finite = torch.isfinite(gnorm) if self.dist.active else torch.isfinite(loss.detach()) & torch.isfinite(gnorm)
            if bool(finite):
                self.scaler.step(self.optimizer)
                self.scaler.update()
                task.after_step(True)
                loss_sum += torch.nan_to_num(loss.detach().float(), nan=0.0, posinf=0.0)
                loss_n += 1
                bad = 0
            else:
                bad += 1
                task.after_step(False)
                self.out.emit("on_message", MessageEvent("warning", f"step {self.step + 1}: the loss was not finite; skipped the update."))
                self.scaler.update()
                if bad >= cfg.max_bad_steps:
                    self.save()
                    raise TrainingError(
                        f"the loss was not finite for {bad} steps in a row (step {self.step + 1}); training stopped. "
                        f"The last good weights are in {self.run_dir / checkpoint.LAST}. Try a lower --lr or --clip."
                    )
            self.step += 1
            self.batch_i += 1
            if self.batch_i >= task.steps_per_epoch:
                self.epoch, self.batch_i = self.epoch + 1, 0
                task.new_epoch()
            train_time += time.monotonic() - t_step
            units_timed += task.units_per_step

            if loss_n and (gate.ready() or self.step % cfg.eval_every == 0):
                mean = float(loss_sum) / loss_n
                eval_sum, eval_n = eval_sum + mean * loss_n, eval_n + loss_n
                loss_sum.zero_()
                self.out.emit("on_step", self._step_event(mean, lr, float(gnorm), units_timed / max(train_time, 1e-9)))
                loss_n = 0
            if self.wants_probes and time.monotonic() >= next_probe:
                next_probe = self._probe()
            if self.step % cfg.eval_every == 0:
                self._evaluate(eval_sum / eval_n if eval_n else None, units_timed / max(train_time, 1e-9), final=False)
                eval_sum, eval_n = 0.0, 0
                saved_at = elapsed
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save()
                saved_at = elapsed
            elif cfg.save_interval and elapsed - saved_at >= cfg.save_interval:  # type: ignore[operator]  # by wall clock: a kill loses at most this
                self.save()
                saved_at = elapsed

        final_loss = final_bpc = None
        if stopped_by != "interrupt":
            ev = self._evaluate(eval_sum / eval_n if eval_n else None, units_timed / max(train_time, 1e-9), final=True)
            if ev is not None:
                final_loss, final_bpc = ev.val_loss, ev.val_bpc
        else:
            self.save()
        end = EndEvent(self.step, stopped_by, self._elapsed(), self.best_val, final_loss, final_bpc, str(self.run_dir))
        self.out.emit("on_end", end)
        return TrainResult(self.run_dir, self.step, stopped_by, end.elapsed_s, self.best_val, final_loss, final_bpc)

    def _evaluate(self, train_loss: float | None, units_per_s: float, final: bool) -> EvalEvent | None:
        cfg = self.cfg
        ev = None
        scores = self.task.evaluate(self.model, final)
        if scores is not None:
            best = self.best_val is None or scores.loss < self.best_val
            if best:
                self.best_val, self.best_bpc = scores.loss, scores.bpc
            ev = EvalEvent(
                step=self.step, train_loss=train_loss, val_loss=scores.loss, val_bpc=scores.bpc,
                val_ppl=math.exp(min(scores.loss, 50.0)), tokens=scores.units, chars=scores.chars, elapsed_s=self._elapsed(),
                chars_per_s=units_per_s * self.task.chars_per_unit(), best=best, final=final, metrics=dict(scores.metrics),
                report=scores.report,
            )  # fmt: skip
            self.last_eval = ev.record()
            self.out.emit("on_eval", ev)
        if self.probes_at_eval:
            self._eval_probe()
        if cfg.sample_chars and self.dist.main and not (final and self.step % cfg.eval_every == 0):  # not twice a step
            text = self.use.sample(self.model, self.step)
            if text:
                self.out.emit("on_sample", SampleEvent(self.step, text))
        self.save(best=(ev.best if ev is not None else True) or not (self.run_dir / checkpoint.BEST).exists())
        return ev

    def _probe(self) -> float:
        """Trace the probe text between optimizer steps (one traced pass and one small
        backward for the gradient curve); returns when to probe next (next_probe: the probe
        and its frame's drawing cost at most PROBE_SHARE of the time). Only while a sink that
        wants probes is `watching` (the app: while its activations screen is shown)."""
        t = time.monotonic()
        if not any(getattr(s, "watching", True) for s in self.out.sinks if getattr(s, "wants_probes", False)):
            return t + PROBE_IDLE_S  # no frame is on screen now: none is made (ask again soon)
        with one_thread():  # its steps are tiny: a second thread costs a fork and a join each (bench/RESULTS.md)
            p = self._trace_probe("probe")
        if p is None:
            return t + 5.0
        self.out.emit("on_probe", ProbeEvent(self.step, p))
        return next_probe(t, time.monotonic() - t, self.out.sinks)

    def _eval_probe(self) -> None:
        """One probe at an evaluation, for the sinks that log one there (on_eval_probe)."""
        p = self._trace_probe("evaluation probe")
        if p is not None:
            self.out.emit("on_eval_probe", ProbeEvent(self.step, p))
        self.probes_at_eval = p is not None  # a task with no probe is not asked again

    def _trace_probe(self, what: str) -> Any:
        """The task's probe of the probe text, or None (and a warning) when it has none to give."""
        try:
            return self.use.probe(self.model, self.probe_text, self.step)
        except (CharRNNError, NotImplementedError) as e:  # a probe text with nothing the model knows; a task with no probe
            self.out.emit("on_message", MessageEvent("warning", f"{what} skipped: {e or 'this task has none'}"))
            return None

    def _step_event(self, loss: float, lr: float, gnorm: float, units_per_s: float) -> StepEvent:
        steps_per_s = units_per_s / self.task.units_per_step
        etas = []
        if self.total_steps:
            etas.append((self.total_steps - self.step) / max(steps_per_s, 1e-9))
        if self.time_s:
            etas.append(self.time_s - self._elapsed())
        return StepEvent(
            step=self.step, total_steps=self.total_steps,
            epoch=self.epoch + self.batch_i / self.task.steps_per_epoch,
            loss=loss, lr=lr, grad_norm=gnorm, tokens_per_s=units_per_s,
            chars_per_s=units_per_s * self.task.chars_per_unit(), elapsed_s=self._elapsed(),
            eta_s=max(0.0, min(etas)) if etas else None, progress=min(1.0, self._progress()),
        )  # fmt: skip

    def _start_event(self) -> StartEvent:
        trained = self.model.num_params(trainable=True)
        total = self.model.num_params()
        return StartEvent(
            run_dir=str(self.run_dir),
            corpus=self.task.summary(),
            model=self.model_cfg.summary(),
            params=total,
            device=str(self.device),
            precision=precision_name(self.amp),
            start_step=self.step,
            total_steps=self.total_steps,
            time_budget_s=self.time_s,
            steps_per_epoch=self.task.steps_per_epoch,
            tokens_per_step=self.task.units_per_step,
            world=self.dist.world,
            trained_params=trained,
            task=self.task.name,
            unit=self.task.unit,
            bpc=self.task.bpc,
            recipe=recipe.describe(self.model_cfg, self.cfg),
        )
