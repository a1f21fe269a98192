"""Helpers for the app's tests: a scripted trainer, scripted activation frames,
a tiny checkpoint, and ways to wait for the app without fixed sleeps."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers import until  # noqa: F401  (the pilot tests import it from here too)

from charrnn.training import checkpoint
from charrnn.models import registry
from charrnn.config import ModelConfig
from charrnn.models.lm import CharRNN
from charrnn.tasks.state import LMState
from charrnn.inspect.trace import Activations, Probe
from charrnn.training.telemetry import (
    CheckpointEvent,
    EndEvent,
    EvalEvent,
    Fanout,
    ProbeEvent,
    SampleEvent,
    StartEvent,
    StepEvent,
)
from charrnn.data.tokenizer import CharTokenizer
from charrnn.training.trainer import TrainResult

PROBE_TEXT = "the cat sat on the mat.\nA dog ran under the log!"


def scripted_probe(step: int, text: str = PROBE_TEXT, cell: str = "lstm", layers: int = 2, hidden: int = 24) -> Probe:
    """A deterministic activation frame shaped like the trainer's: signals (L, T, H)
    in each signal's own range, and a gradient curve that decays back in time."""
    rng = np.random.default_rng(step)
    T = len(text)
    signals = {}
    for s in registry.get(cell).signals:
        z = rng.normal(size=(layers, T, hidden)).astype(np.float32) * 2
        signals[s.name] = {registry.GATE: 1 / (1 + np.exp(-z)), registry.TANH: np.tanh(z)}.get(s.range, z)
    ids = np.arange(T)
    acts = Activations(
        text=text, ids=ids, tokens=tuple(text), cell=cell, signals=signals,
        probs=np.full((T, 30), 1 / 30, dtype=np.float32),
    )  # fmt: skip
    decay = np.exp(np.linspace(-12, 0, T, dtype=np.float32))
    flow = {"h": np.stack([decay * (k + 1) for k in range(layers)])}
    if cell == "lstm":
        flow["c"] = np.stack([decay**0.5 * (k + 1) for k in range(layers)])
    return Probe(step, acts, flow)


def start_event(run_dir: str = "checkpoints/scripted", total: int | None = 400) -> StartEvent:
    return StartEvent(
        run_dir=run_dir, corpus="corpus: 1 file, 10,562 characters, vocabulary 30", model="lstm 2x24, embedding 16, dropout 0.0",
        params=7_830, device="cpu", precision="fp32", start_step=0, total_steps=total, time_budget_s=None,
        steps_per_epoch=100, tokens_per_step=256,
    )  # fmt: skip


def step_event(step: int, total: int | None = 400) -> StepEvent:
    loss = 3.4 * np.exp(-step / 60) + 1.1 + 0.05 * np.sin(step)
    return StepEvent(
        step=step, total_steps=total, epoch=step / 100, loss=float(loss), lr=2e-3, grad_norm=0.8, tokens_per_s=25_600.0,
        chars_per_s=25_600.0, elapsed_s=step / 100, eta_s=(total - step) / 100 if total else None,
        progress=step / total if total else 0.0,
    )  # fmt: skip


def eval_event(step: int) -> EvalEvent:
    loss = 3.3 * np.exp(-step / 60) + 1.3
    return EvalEvent(
        step=step, train_loss=None, val_loss=float(loss), val_bpc=float(loss / np.log(2)), val_ppl=float(np.exp(loss)),
        tokens=512, chars=512.0, elapsed_s=step / 100, chars_per_s=25_600.0, best=True,
    )  # fmt: skip


class ScriptedTrainer:
    """Acts like train.Trainer from the app's side: emits a fixed script of events
    through its sinks from whatever thread calls run(), checking `stop` each step."""

    def __init__(self, sinks: list[Any], stop: threading.Event, run_dir: Path, steps: int = 100_000, period: float = 0.01):
        self.out, self.stop, self.run_dir, self.steps, self.period = Fanout(sinks), stop, Path(run_dir), steps, period
        self.probe_text = PROBE_TEXT
        self.probe_texts: list[str] = []  # the texts it traced, in order
        self.saved = False

    def default_probe_text(self) -> str:
        return PROBE_TEXT

    def run(self) -> TrainResult:
        out = self.out
        out.emit("on_start", start_event(str(self.run_dir), self.steps))
        step = 0
        while step < self.steps and not self.stop.is_set():
            time.sleep(self.period)
            step += 1
            out.emit("on_step", step_event(step, self.steps))
            if step % 5 == 0:
                out.emit("on_eval", eval_event(step))
            if step % 10 == 0:
                out.emit("on_sample", SampleEvent(step, f"sample at step {step}: the cat sat"))
            if step % 3 == 0:
                self.probe_texts.append(self.probe_text)
                out.emit("on_probe", ProbeEvent(step, scripted_probe(step, self.probe_text)))
        stopped = "interrupt" if self.stop.is_set() else "steps"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "last.pt").write_bytes(b"scripted")
        self.saved = True
        out.emit("on_checkpoint", CheckpointEvent(step, str(self.run_dir / "last.pt"), "last"))
        out.emit("on_end", EndEvent(step, stopped, step / 100, 1.5, None, None, str(self.run_dir)))
        return TrainResult(self.run_dir, step, stopped, step / 100, 1.5, None, None)


class Script:
    """A trainer factory for the app that remembers the trainers it made."""

    def __init__(self, run_dir: Path, **kw: Any):
        self.run_dir, self.kw, self.made = run_dir, kw, []

    def __call__(self, sinks: list[Any], stop: threading.Event) -> ScriptedTrainer:
        t = ScriptedTrainer(sinks, stop, self.run_dir, **self.kw)
        self.made.append(t)
        return t


def tiny_checkpoint(path: Path, text: str = PROBE_TEXT, cell: str = "lstm", seed: int = 0) -> Path:
    """An untrained but complete checkpoint: enough for the explore screen."""
    tok = CharTokenizer(sorted(set(text)))
    cfg = ModelConfig(cell=cell, layers=2, hidden=16, embed=8, vocab_size=tok.vocab_size)
    model = CharRNN(cfg)
    rng = np.random.default_rng(seed)  # weights of our own, whatever CharRNN's initialisation becomes
    weights = {k: torch.from_numpy(rng.normal(0.0, 0.4, v.shape).astype(np.float32)) for k, v in model.state_dict().items()}
    checkpoint.save(path, checkpoint.Checkpoint(model_config=cfg, weights=weights, task=LMState(tokenizer=tok.to_state()), step=0))
    return path


def busy_threads() -> list[str]:
    """Threads other than the main one that are running charrnn or the scripted trainer."""
    frames = sys._current_frames()
    out = []
    for t in threading.enumerate():
        if t is threading.main_thread() or t.ident not in frames:
            continue
        stack = traceback.extract_stack(frames[t.ident])
        if any("/charrnn/" in f.filename or f.filename.endswith("tui/scripted.py") for f in stack):
            out.append(f"{t.name}: {stack[-1].filename}:{stack[-1].lineno}")
    return out


async def no_threads_left() -> None:
    """Nothing of the app is still running, and the event loop's worker threads join."""
    assert busy_threads() == []
    await asyncio.wait_for(asyncio.get_running_loop().shutdown_default_executor(), 10)
    assert [t.name for t in threading.enumerate() if t.name.startswith("asyncio_")] == []
