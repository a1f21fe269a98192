"""The training loop: teacher forcing, truncated BPTT, clipping, a schedule, checkpoints.

Teacher forcing: at every timestep the model reads the true previous token and
is scored on predicting the next one (section 10.2.1). Truncated BPTT: each row
of a batch is a contiguous stream, the hidden state is carried from batch to
batch but detached, so gradients flow back at most `seq_len` steps. Gradient
norm clipping keeps the occasional exploding gradient of a recurrent net from
throwing the weights off a cliff (section 10.11.1).

The loop knows nothing about any UI: it reports to sinks (telemetry.py) and
checks a `threading.Event` once per step to stop.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import checkpoint, distributed
from .batches import StreamBatcher
from .config import DataConfig, ModelConfig, SampleConfig, TrainConfig, to_dict
from .corpus import Corpus
from .errors import CharRNNError, ConfigError, TrainingError
from .evaluate import evaluate, sum_dtype
from .hardware import autocast, pick_device, pick_precision, precision_name
from .model import CharRNN, State
from .sample import eos_text, sample_text
from .telemetry import (
    CheckpointEvent,
    EndEvent,
    EvalEvent,
    Fanout,
    MessageEvent,
    ProbeEvent,
    RateGate,
    SampleEvent,
    StartEvent,
    StepEvent,
)

__all__ = ["Trainer", "TrainResult", "lr_at", "evaluate", "pick_device", "pick_precision", "autocast"]

STEP_HZ = 10.0  # step statistics to the sinks, at most
PROBE_PERIOD_S = 1.0  # activation probes, at most once per this


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    stopped_by: str
    elapsed_s: float
    best_val_loss: float | None
    final_val_loss: float | None
    final_val_bpc: float | None


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over `warmup` steps, then cosine decay from lr to min_lr as
    the run's progress (by steps, epochs or time, whichever is furthest) goes 0 -> 1."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(max(progress, 0.0), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * p))


class Trainer:
    """One training run: set up from configs (or a checkpoint), then `run()`."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        data_cfg: DataConfig,
        cfg: TrainConfig,
        corpus: Corpus,
        run_dir: Path,
        sinks: list[Any] | None = None,
        stop: threading.Event | None = None,
        resume: dict[str, Any] | None = None,
        probe_text: str | None = None,
        dist: distributed.Dist = distributed.SINGLE,
    ):
        self.cfg = cfg.validate()
        self.dist = dist
        self.data_cfg = data_cfg
        self.corpus = corpus
        self.tok = corpus.tokenizer
        self.run_dir = Path(run_dir)
        self.out = Fanout(sinks if dist.main else [])  # rank 0 alone talks to the world
        self.stop = stop or threading.Event()
        self.device = pick_device(cfg.device, dist.local_rank)
        self.amp = pick_precision(cfg.precision, self.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.model_cfg = ModelConfig(**{**to_dict(model_cfg), "vocab_size": self.tok.vocab_size}).validate()
        if resume is None:
            torch.manual_seed(cfg.seed)
        self.model = CharRNN(self.model_cfg).to(self.device)
        self.net = distributed.wrap(self.model, dist, self.device)  # what the training step calls
        if dist.active:
            torch.manual_seed(cfg.seed + 7919 * dist.rank)  # the same weights, different dropout masks
        self.batcher = StreamBatcher(corpus.train, cfg.batch_size, cfg.seq_len, seed=cfg.seed, rank=dist.rank, world=dist.world)
        if len(corpus.val) < 2 and data_cfg.val_frac > 0:
            raise ConfigError("the validation split is too small to score; use a larger corpus or a larger --val-frac.")
        self.optimizer = self._optimizer()
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp == torch.float16 else None
        self.char_lengths = torch.from_numpy(self.tok.char_lengths()).to(self.device, sum_dtype(self.device))
        self.reset_docs = cfg.doc_state == "reset" and self.tok.eos_id is not None
        steps = [cfg.steps] if cfg.steps else []
        if cfg.epochs:
            steps.append(math.ceil(cfg.epochs * self.batcher.steps_per_epoch))
        self.total_steps = min(steps) if steps else None
        self.time_s = cfg.time_s
        # where the run stands; a resumed run takes these from its checkpoint
        self.step, self.epoch, self.batch_i, self.elapsed0 = 0, 0, 0, 0.0
        self.best_val: float | None = None
        self.best_bpc: float | None = None
        self.last_eval: dict[str, Any] | None = None
        self.state: State = self.model.init_state(cfg.batch_size)
        if resume is not None:
            self._restore(resume)
        # Activation probes for UIs that ask for them (a sink with wants_probes = True).
        # The text may be replaced from another thread while training runs.
        self.wants_probes = any(getattr(s, "wants_probes", False) for s in self.out.sinks)
        self.probe_text = probe_text if probe_text is not None else self.default_probe_text()

    def default_probe_text(self, n: int = 96) -> str:
        """A slice of the validation split (else of the training split), from a line start."""
        ids = self.corpus.val if len(self.corpus.val) > 1 else self.corpus.train
        text = self.tok.decode(ids[: 4 * n])
        start = text.find("\n") + 1 if "\n" in text[: 2 * n] else 0
        return text[start : start + n] or text[:n]

    def _optimizer(self) -> torch.optim.Optimizer:
        # Weight decay on the matrices only: biases and the embedding table are left alone.
        decay = [p for n, p in self.model.named_parameters() if p.dim() >= 2 and not n.startswith("embed")]
        rest = [p for n, p in self.model.named_parameters() if not (p.dim() >= 2 and not n.startswith("embed"))]
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.cfg.lr, betas=(0.9, 0.99))

    # ------------------------------------------------------------ checkpoints

    def _payload(self, carried: list[torch.Tensor]) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model_config": to_dict(self.model_cfg),
            "data_config": to_dict(self.data_cfg),
            "train_config": to_dict(self.cfg),
            "trained_on": str(self.device),
            "trained_precision": precision_name(self.amp),  # what --precision auto chose
            "tokenizer": self.tok.to_state(),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_i,
            "elapsed_s": self._elapsed(),
            "carried_state": [s.cpu() for s in carried],  # (L, B x world, H): every rank's streams
            "world": self.dist.world,
            "steps_per_epoch": self.batcher.steps_per_epoch,
            "rng": rng,
            "best_val_loss": self.best_val,
            "best_val_bpc": self.best_bpc,
            "last_eval": self.last_eval,
            "corpus": {"chars_train": self.corpus.chars_train, "chars_val": self.corpus.chars_val, "tokens": len(self.corpus.ids)},
        }

    def _restore(self, ck: dict[str, Any]) -> None:
        self.model.load_state_dict(ck["model"])
        try:
            self.optimizer.load_state_dict(ck["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CharRNNError(f"the checkpoint's optimizer state does not fit this model ({e}).") from None
        self.step, self.epoch, self.batch_i = int(ck["step"]), int(ck.get("epoch", 0)), int(ck.get("batch_in_epoch", 0))
        self.elapsed0 = float(ck.get("elapsed_s", 0.0))
        self.best_val, self.best_bpc, self.last_eval = ck.get("best_val_loss"), ck.get("best_val_bpc"), ck.get("last_eval")
        carried = ck.get("carried_state")
        B, W = self.cfg.batch_size, self.dist.world
        if ck.get("world", 1) == W and carried and tuple(carried[0].shape) == (self.model_cfg.layers, B * W, self.model_cfg.hidden):
            rows = slice(self.dist.rank * B, (self.dist.rank + 1) * B)
            self.state = tuple(s[:, rows].to(self.device) for s in carried)
        else:
            # Another number of processes lays the streams out differently: keep the
            # place in the epoch, start the streams from a zero state.
            old = ck.get("steps_per_epoch") or self.batcher.steps_per_epoch
            self.batch_i = self.batch_i * self.batcher.steps_per_epoch // old
        if self.batch_i >= self.batcher.steps_per_epoch:  # the corpus changed length
            self.epoch, self.batch_i = self.epoch + 1, 0
        rng = ck.get("rng", {})
        if self.dist.active:
            torch.manual_seed(self.cfg.seed + 7919 * self.dist.rank + self.step)
        elif "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.device.type == "cuda" and not self.dist.active:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def save(self, best: bool = False) -> Path:
        """Write last.pt; with best, make best.pt the same file. Every rank calls it
        (the carried states are gathered); rank 0 writes."""
        path = self.run_dir / checkpoint.LAST
        carried = [distributed.gather_rows(self.dist, s.detach()) for s in self.state]
        if not self.dist.main:
            return path
        checkpoint.save(path, self._payload(carried))
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

    STOPS = (None, "steps", "epochs", "time", "interrupt")

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
            t = torch.tensor([float(self.STOPS.index(why)), elapsed], device=self.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            why, elapsed = self.STOPS[int(t[0].item())], float(t[1].item())
        return why, elapsed

    def run(self) -> TrainResult:
        cfg, model = self.cfg, self.model
        self.t0 = time.monotonic()
        self.out.emit("on_start", self._start_event())
        if self._done()[0] not in (None, "interrupt"):
            raise ConfigError(
                f"this run already reached its limit at step {self.step}; "
                "give it a larger limit (--steps, --epochs or --time) to train further."
            )
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.run_dir.glob(".*.pt.*.tmp"):  # left by a process killed mid-save
                stale.unlink(missing_ok=True)
        model.train()
        gate = RateGate(STEP_HZ)
        next_probe = 0.0
        loss_sum = torch.zeros((), device=self.device)  # stays on the device between reports
        loss_n, eval_sum, eval_n, bad = 0, 0.0, 0, 0
        train_time, tokens_timed = 0.0, 0
        stopped_by = None
        while True:
            stopped_by, elapsed = self._done()
            if stopped_by is not None:
                break
            t_step = time.monotonic()
            x, y = self.batcher.batch(self.epoch, self.batch_i)
            x = torch.from_numpy(x).to(self.device, non_blocking=True)
            y = torch.from_numpy(y).to(self.device, non_blocking=True)
            reset = (x == self.tok.eos_id) if self.reset_docs else None
            lr = lr_at(cfg, self.step, self._progress(elapsed))
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            with autocast(self.device, self.amp):
                _, loss, state = self.net(x, self.state, y, reset)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
            else:
                loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            # The one host sync per step: a non-finite loss or gradient must skip the
            # update before it reaches the weights (GradScaler syncs here as well).
            # On a CPU the read is free. Under DDP the gradient norm, the same on
            # every rank after the all-reduce, decides alone, so ranks never disagree.
            finite = torch.isfinite(gnorm) if self.dist.active else torch.isfinite(loss.detach()) & torch.isfinite(gnorm)
            if bool(finite):
                if self.scaler is not None:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.state = tuple(s.detach().float() for s in state)  # carried in fp32, whatever autocast did
                loss_sum += torch.nan_to_num(loss.detach(), nan=0.0, posinf=0.0)
                loss_n += 1
                bad = 0
            else:
                bad += 1
                self.state = model.init_state(cfg.batch_size)
                self.out.emit("on_message", MessageEvent("warning", f"step {self.step + 1}: the loss was not finite; skipped the update."))
                if self.scaler is not None:
                    self.scaler.update()
                if bad >= cfg.max_bad_steps:
                    self.save()
                    raise TrainingError(
                        f"the loss was not finite for {bad} steps in a row (step {self.step + 1}); training stopped. "
                        f"The last good weights are in {self.run_dir / checkpoint.LAST}. Try a lower --lr or --clip."
                    )
            self.step += 1
            self.batch_i += 1
            if self.batch_i >= self.batcher.steps_per_epoch:
                self.epoch, self.batch_i = self.epoch + 1, 0
                self.state = model.init_state(cfg.batch_size)  # new offsets: the streams restart
            train_time += time.monotonic() - t_step
            tokens_timed += self.batcher.tokens_per_step

            if loss_n and (gate.ready() or self.step % cfg.eval_every == 0):
                mean = float(loss_sum) / loss_n
                eval_sum, eval_n = eval_sum + mean * loss_n, eval_n + loss_n
                loss_sum.zero_()
                self.out.emit("on_step", self._step_event(mean, lr, float(gnorm), tokens_timed / max(train_time, 1e-9)))
                loss_n = 0
            if self.wants_probes and time.monotonic() >= next_probe:
                next_probe = self._probe()
            if self.step % cfg.eval_every == 0:
                speed = tokens_timed / max(train_time, 1e-9)
                self._evaluate(eval_sum / eval_n if eval_n else None, speed, final=False)
                eval_sum, eval_n = 0.0, 0
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.save()

        speed = tokens_timed / max(train_time, 1e-9)
        final_loss = final_bpc = None
        if stopped_by != "interrupt":
            ev = self._evaluate(eval_sum / eval_n if eval_n else None, speed, final=True)
            if ev is not None:
                final_loss, final_bpc = ev.val_loss, ev.val_bpc
        else:
            self.save()
        end = EndEvent(self.step, stopped_by, self._elapsed(), self.best_val, final_loss, final_bpc, str(self.run_dir))
        self.out.emit("on_end", end)
        return TrainResult(self.run_dir, self.step, stopped_by, end.elapsed_s, self.best_val, final_loss, final_bpc)

    def _evaluate(self, train_loss: float | None, tokens_per_s: float, final: bool) -> EvalEvent | None:
        cfg = self.cfg
        ev = None
        if len(self.corpus.val) >= 2:
            budget = cfg.final_eval_tokens if final else cfg.eval_tokens
            loss, bpc, n, chars = evaluate(
                self.model, self.corpus.val, self.char_lengths, budget, cfg.batch_size, cfg.seq_len,
                self.tok.eos_id if self.reset_docs else None, self.device, self.amp, self.dist,
            )  # fmt: skip
            best = self.best_val is None or loss < self.best_val
            if best:
                self.best_val, self.best_bpc = loss, bpc
            ev = EvalEvent(
                step=self.step, train_loss=train_loss, val_loss=loss, val_bpc=bpc, val_ppl=math.exp(min(loss, 50.0)),
                tokens=n, chars=chars, elapsed_s=self._elapsed(), chars_per_s=tokens_per_s * self._chars_per_token(),
                best=best, final=final,
            )  # fmt: skip
            self.last_eval = ev.record()
            self.out.emit("on_eval", ev)
            if self.dist.main:
                with open(self.run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(self.last_eval) + "\n")
        if cfg.sample_chars and self.dist.main and not (final and self.step % cfg.eval_every == 0):  # not twice a step
            self.out.emit("on_sample", SampleEvent(self.step, self._sample()))
        self.save(best=(ev.best if ev is not None else True) or not (self.run_dir / checkpoint.BEST).exists())
        return ev

    def _probe(self) -> float:
        """Trace the probe text between optimizer steps (no_grad for activations,
        one small backward for the gradient curve); returns when to probe next, so
        that probing costs at most ~2% of the time, and at most once a second."""
        t = time.monotonic()
        from .probe import probe

        text = self.probe_text
        try:
            p = probe(self.model, self.tok, text, self.step)
        except CharRNNError as e:  # e.g. a probe text with nothing the model knows
            self.out.emit("on_message", MessageEvent("warning", f"probe skipped: {e}"))
            return t + 5.0
        self.out.emit("on_probe", ProbeEvent(self.step, p))
        cost = time.monotonic() - t
        return t + max(PROBE_PERIOD_S, 50.0 * cost)

    def _sample(self) -> str:
        # Its own generator: sampling never touches the training RNG, so a resumed
        # run trains on exactly the numbers an uninterrupted one would.
        gen = torch.Generator().manual_seed(self.cfg.seed + self.step)
        scfg = SampleConfig(temperature=0.8, length=self.cfg.sample_chars)
        text = sample_text(self.model, self.tok, scfg, gen, eos_text(self.data_cfg.doc_sep))
        self.model.train()
        return text

    def _chars_per_token(self) -> float:
        return (self.corpus.chars_train + self.corpus.chars_val) / max(len(self.corpus.ids), 1)

    def _step_event(self, loss: float, lr: float, gnorm: float, tokens_per_s: float) -> StepEvent:
        steps_per_s = tokens_per_s / self.batcher.tokens_per_step
        etas = []
        if self.total_steps:
            etas.append((self.total_steps - self.step) / max(steps_per_s, 1e-9))
        if self.time_s:
            etas.append(self.time_s - self._elapsed())
        return StepEvent(
            step=self.step, total_steps=self.total_steps,
            epoch=self.epoch + self.batch_i / self.batcher.steps_per_epoch,
            loss=loss, lr=lr, grad_norm=gnorm, tokens_per_s=tokens_per_s,
            chars_per_s=tokens_per_s * self._chars_per_token(), elapsed_s=self._elapsed(),
            eta_s=max(0.0, min(etas)) if etas else None, progress=min(1.0, self._progress()),
        )  # fmt: skip

    def _start_event(self) -> StartEvent:
        m = self.model_cfg
        return StartEvent(
            run_dir=str(self.run_dir),
            corpus=self.corpus.summary(),
            model=f"{m.cell} {m.layers}x{m.hidden}, embedding {m.embed}, dropout {m.dropout}",
            params=self.model.num_params(),
            device=str(self.device),
            precision=precision_name(self.amp),
            start_step=self.step,
            total_steps=self.total_steps,
            time_budget_s=self.time_s,
            steps_per_epoch=self.batcher.steps_per_epoch,
            tokens_per_step=self.batcher.tokens_per_step,
            world=self.dist.world,
        )

