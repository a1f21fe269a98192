"""`--precision auto` on a CPU: chosen by measuring this machine, not by a flag in /proc/cpuinfo.

Two very different CPUs report native bf16. On a Xeon with AMX tiles a bf16 matrix
product runs several times faster than fp32; on a CPU with AVX512-BF16 alone (AMD
Zen 4) a bf16 training step of the default model is only 1.3-1.6x faster. What
`auto` chooses between is therefore two *recipes*, each with its precision:

    bf16 defaults   config.py's defaults (a 2x256 LSTM, dropout 0.1, AdamW at 3e-3), bf16 autocast
    fp32 recipe     config.FP32_CPU_RECIPE (a 1x256 LSTM, no dropout, AdamW at 1e-2), plain fp32

and the better one is the one that reaches the lower validation loss in the run's
budget. That takes two numbers only this machine knows, the time of one training
step of each, and one thing recorded once, how far each recipe gets in a given
number of steps: `CURVES`, the final validation loss of runs of N steps on
tinyshakespeare (each its own cosine schedule, so a run of N steps is what a time
budget that buys N steps trains; `bench/precision_probe.py --curves` remakes it).
Each recipe gets budget / its step time steps, and the choice is the recipe whose
curve is lower there. The budget is the run's `--time`, or the default three
minutes when the run is limited by steps or epochs: quality per minute is what
`auto` buys, so a run of a few steps chooses as a three-minute run would.

The probe times both steps on the default shapes (batch 32 x 32, a 96-token
vocabulary) for a few seconds, alternating the two so that a machine's drift hits
both, and keeps the median. It runs once per machine (CPU model and features) and
torch version, at the thread count the process starts with: the result is cached as JSON under the user's cache folder
(`CHARRNN_CACHE_DIR`, else `$XDG_CACHE_HOME/charrnn`, else `~/.cache/charrnn`).
`CHARRNN_REPROBE=1` measures again. A probe taken while other work held the cores
(it got under 60% of its threads' CPU time: `share`) decides for that run only and
is not cached, because its step times are the load's, not the machine's; a session
of this project cached one taken at 8x load that said 465 steps in 3 minutes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import DEFAULT_TIME, FP32_CPU_RECIPE, ModelConfig, TrainConfig, format_duration, parse_duration

# Final validation loss (nats/char over the whole split, state carried) of a run of
# `charrnn train tinyshakespeare.txt` that made N steps of 32 x 32, for each recipe
# (bench/RESULTS.md, "Issue 25"). Runs budgeted by time and by steps both appear: a
# time budget's cosine schedule by elapsed time is, at a steady speed, the schedule
# by steps. Per step the two recipes come close from ~2,500 steps on (1.517 and
# 1.512); below that the fp32 recipe's higher rate is ahead, above ~10k the bf16
# defaults (dropout, two layers) keep improving a little longer. Sources:
#   bf16:  900 (issue 17 sweep, A-default), 1,854 (issue 17 baseline, fp32 on AVX2),
#          2,685 / 5,260 / 10,085 / 31,467 (issue 6, bf16, 1/2/3/10 minutes)
#   fp32:  1,500 (issue 25, --steps 1500 --precision fp32), 2,426 (issue 17, C-1x256-b32),
#          11,300 (issue 17's two 3-minute runs on the AMX Xeon: 10,605 -> 1.444, 12,000 -> 1.425)
CURVES: dict[str, tuple[tuple[int, float], ...]] = {
    "bf16": ((900, 1.711), (1854, 1.564), (2685, 1.517), (5260, 1.463), (10085, 1.430), (31467, 1.427)),
    "fp32": ((1500, 1.569), (2426, 1.512), (11300, 1.435)),
}
PRECISION = {"bf16": "bf16", "fp32": "fp32"}  # recipe -> the precision it trains in

PROBE_VERSION = 2
BUSY = 0.6  # a probe that got less of its threads' time than this was taken on a busy machine
VOCAB, BATCH, SEQ = 96, 32, 32


@dataclass(frozen=True)
class Probe:
    """Seconds a training step of each recipe took on this machine (medians)."""

    bf16_step_s: float  # the bf16 defaults under bf16 autocast
    fp32_step_s: float  # the fp32 recipe in plain fp32
    cpu: str = ""
    torch: str = ""
    threads: int = 0
    cpu_class: str = ""  # AMX, AVX512-BF16 or fp32-only (hardware.cpu_class)
    share: float = 1.0  # the CPU time the probe got over its threads' wall time: well under 1 on a busy machine

    @property
    def ratio(self) -> float:
        """How many fp32-recipe steps one bf16 step costs (> 1: the bf16 step is slower)."""
        return self.bf16_step_s / self.fp32_step_s


@dataclass(frozen=True)
class Choice:
    precision: str  # "bf16" or "fp32": what auto resolves to on this CPU
    reason: str  # one line for `charrnn train` and `charrnn info`
    probe: Probe | None = None


def predicted_loss(recipe: str, steps: float) -> float:
    """The recorded curve at `steps`, interpolated in log(steps), flat beyond its ends."""
    pts = CURVES[recipe]
    if steps <= pts[0][0]:
        return pts[0][1]
    if steps >= pts[-1][0]:
        return pts[-1][1]
    for (s0, l0), (s1, l1) in zip(pts, pts[1:]):
        if s0 <= steps <= s1:
            w = (math.log(steps) - math.log(s0)) / (math.log(s1) - math.log(s0))
            return l0 + w * (l1 - l0)
    raise AssertionError("unreachable")


def decide(probe: Probe, budget_s: float) -> Choice:
    """The recipe with the lower predicted loss after `budget_s` seconds of training,
    each recipe taking budget / its step time steps."""
    n = {"bf16": budget_s / probe.bf16_step_s, "fp32": budget_s / probe.fp32_step_s}
    loss = {r: predicted_loss(r, n[r]) for r in n}
    pick = "bf16" if loss["bf16"] < loss["fp32"] else "fp32"
    reason = (f"auto chose {pick}: a bf16 step of the defaults takes {probe.ratio:.2f}x an fp32 step of the fp32 recipe here"
              f"{' (' + probe.cpu_class + ')' if probe.cpu_class else ''}, so {format_duration(budget_s)} buy {n['bf16']:,.0f} against {n['fp32']:,.0f} steps "
              f"(predicted {loss['bf16']:.2f} against {loss['fp32']:.2f} nats/char)"
              + (f"; measured on a busy machine ({probe.share:.0%} of its threads' time), so not cached" if probe.share < BUSY else ""))  # fmt: skip
    return Choice(pick, reason, probe)


# ---------------------------------------------------------------- measuring


def _step_timer(model_cfg: ModelConfig, lr: float, amp: torch.dtype | None):  # type: ignore[no-untyped-def]
    from ..models.lm import CharRNN
    from ..runtime.hardware import autocast

    g = torch.Generator().manual_seed(0)
    model = CharRNN(dataclasses.replace(model_cfg, vocab_size=VOCAB))
    opt = model.configure_optimizers(lr, 0.1)
    idx = torch.randint(0, VOCAB, (BATCH, SEQ), generator=g)
    targets = torch.randint(0, VOCAB, (BATCH, SEQ), generator=g)
    cpu = torch.device("cpu")

    def step() -> None:
        with autocast(cpu, amp):
            _, loss, _ = model(idx, targets=targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def measure(rounds: int = 5, steps: int = 4) -> Probe:
    """Time both recipes' training steps, alternating, and keep each one's median."""
    defaults, t = ModelConfig(), TrainConfig()
    small = dataclasses.replace(defaults, **{k: v for k, v in FP32_CPU_RECIPE.items() if k != "lr"})
    times: dict[str, list[float]] = {"bf16": [], "fp32": []}
    with torch.random.fork_rng(devices=[]):  # the run's own RNG stream is not touched
        timers = {"bf16": _step_timer(defaults, t.lr, torch.bfloat16), "fp32": _step_timer(small, FP32_CPU_RECIPE["lr"], None)}
        for fn in timers.values():
            fn(), fn()  # warm up: allocations, oneDNN's kernel choice
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(rounds):
            for name, fn in timers.items():
                t0 = time.perf_counter()
                for _ in range(steps):
                    fn()
                times[name].append((time.perf_counter() - t0) / steps)
        share = (time.process_time() - cpu0) / max((time.perf_counter() - wall0) * torch.get_num_threads(), 1e-9)
    from ..runtime.hardware import cpu_class

    return Probe(statistics.median(times["bf16"]), statistics.median(times["fp32"]), cpu_name(), torch.__version__,
                 torch.get_num_threads(), cpu_class(), round(min(share, 1.0), 3))  # fmt: skip


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_dir() -> Path:
    env = os.environ.get("CHARRNN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "charrnn"


def _cache_path() -> Path:
    from ..runtime.hardware import cpu_features

    key = json.dumps([PROBE_VERSION, cpu_name(), cpu_features(), torch.__version__])
    return cache_dir() / f"precision-probe-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def probe() -> Probe:
    """This machine's probe: from the cache, or measured now (a few seconds) and cached."""
    if os.environ.get("CHARRNN_REPROBE") != "1":
        try:
            return Probe(**json.loads(_cache_path().read_text()))
        except (OSError, ValueError, TypeError):
            pass  # none yet, or unreadable: measure
    p = measure()
    if p.share >= BUSY:  # a probe taken while other work held the cores is used for this run, not kept
        save(p)
    return p


def save(p: Probe) -> None:
    """Cache a probe for this machine (written whole or not at all; a read-only home is no error)."""
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(p)))
        os.replace(tmp, path)
    except OSError:
        pass  # measured again next time


def choose(train: TrainConfig) -> Choice:
    """What `--precision auto` is for a new run on this CPU (which has native bf16)."""
    budget = parse_duration(train.time) if train.time is not None else parse_duration(DEFAULT_TIME)
    return decide(probe(), budget)
