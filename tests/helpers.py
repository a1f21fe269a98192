"""Helpers the tests share: tiny generated corpora, tiny training options, and the
checks every CLI test makes of a one-line error. Fixtures live in conftest.py."""

from __future__ import annotations

import random
import time
from typing import Any, Callable

WORDS = "the a cat dog sat ran on under mat log and quickly slowly big small red blue".split()

# training options small enough for a test to take a second or two
TINY = ["--layers", "1", "--hidden", "32", "--embed", "16", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "10", "--eval-tokens", "512", "--sample-chars", "20", "--warmup", "5"]  # fmt: skip


def make_text(n_lines: int = 400, seed: int = 0) -> str:
    """Lines of a toy grammar: structured enough for a tiny model to learn something."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        n = rng.randint(3, 8)
        words = [rng.choice(WORDS) for _ in range(n)]
        lines.append(" ".join(words).capitalize() + rng.choice([".", "!", "?"]))
    return "\n".join(lines) + "\n"


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert 'File "' not in text, text


def one_line_error(result, *fragments, code=1):  # type: ignore[no-untyped-def]
    """A CliRunner result that failed as a user mistake should: exit `code`, no
    traceback, exactly one line on stderr starting 'error: ' and holding every fragment."""
    assert result.exit_code == code, result.output
    no_traceback(result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


async def until(pilot: Any, cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Let the app run until cond() holds (or fail after timeout seconds)."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        await pilot.pause(0.05)


def resumes_exactly(root: Any, data: Any, model: Any, steps: int = 30, at: int = 15, **train: Any) -> None:
    """A run of `steps` steps interrupted at step `at` and resumed ends with exactly the weights of
    one that never stopped (any task: the schedule, optimizer, data position and RNG come back)."""
    import threading

    import torch

    from charrnn.config import TrainConfig
    from charrnn.training import checkpoint, plan
    from charrnn.training.telemetry import BaseSink

    class StopAt(BaseSink):
        def __init__(self, stop: threading.Event):
            self.stop = stop

        def on_checkpoint(self, e: Any) -> None:
            if e.step >= at:
                self.stop.set()

    cfg = TrainConfig(steps=steps, eval_every=at, device="cpu", **train)
    plan.trainer(plan.new_run(data, model, cfg, root, "straight"), [], threading.Event()).run()
    stop = threading.Event()
    first = plan.trainer(plan.new_run(data, model, cfg, root, "split"), [StopAt(stop)], stop).run()
    assert first.stopped_by == "interrupt" and first.step == at
    second = plan.trainer(plan.resume_run(root / "split", root), [], threading.Event()).run()
    assert second.step == steps and second.stopped_by == "steps"
    a, b = (checkpoint.load(root / run / "last.pt").weights for run in ("straight", "split"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0)


def scripted(monkeypatch: Any, ids: list[int]) -> None:
    """Make generation draw `ids` in order, whatever the model says: replaces the
    sampler generate() uses (tasks/sampler.Sampler) with one reading from the script."""
    import torch

    from charrnn.tasks import generate as generate_mod

    it = iter(ids)

    class Scripted:
        def __init__(self, *args: Any, **kwargs: Any):
            pass

        def ids_top(self, top: Any) -> Any:
            return torch.tensor([next(it)], device=top.device)

        def rows_top(self, top: Any) -> Any:
            return torch.tensor([next(it) for _ in range(top.shape[0])], device=top.device)

        def one(self, logits: Any) -> int:
            return next(it)

    monkeypatch.setattr(generate_mod, "Sampler", Scripted)


# ------------------------------------------------------------ every registered kind

# The options each sequence kind is trained with in the per-kind tests (tests/test_every_kind.py),
# beyond its defaults: a kind not named here is trained at its defaults. Each entry is one run.
KIND_ARGS: dict[str, list[tuple[str, ...]]] = {
    "leaky": [("--delays", "1,4", "--tau-max", "50")],
    "esn": [("--spectral-radius", "0.9", "--leak", "0.7")],
    "jordan": [(), ("--feedback", "model")],
}


def kind_cases() -> list[tuple[str, tuple[str, ...]]]:
    """(cell, options) for every registered sequence kind: what the per-kind tests run over."""
    from charrnn.models import registry

    return [(cell, args) for cell in registry.names(registry.SEQUENCE) for args in KIND_ARGS.get(cell, [()])]


def assert_paths_agree(m: Any, vocab_size: int) -> None:
    """A float64 model's three paths give the same numbers from a non-zero state: training's
    forward (fused or unrolled), the inspector's trace (every signal kept), and the sampler's
    step at a time; the trace ends in the state forward returns and records every signal the
    kind's registry entry names."""
    import torch

    from charrnn.models import registry

    kind = registry.get(m.cfg.cell)
    idx = torch.randint(vocab_size, (3, 9))
    s0 = tuple(torch.randn_like(s) * 0.5 for s in m.init_state(3))
    with torch.no_grad():
        logits, _, final = m(idx, s0)
        tr = m.trace(idx, s0)
        layers, steps = m.split_state(s0), []
        for t in range(9):
            out, layers = m.step_layers(idx[:, t], layers)
            steps.append(out)
    torch.testing.assert_close(tr.logits, logits, atol=1e-10, rtol=0)
    assert len(tr.state) == len(final) == len(kind.state)
    for got, want in zip(tr.state, final):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    assert set(tr.signals) == set(kind.signal_names)
    assert all(v.shape[:3] == (m.cfg.layers, 3, 9) for v in tr.signals.values())
    torch.testing.assert_close(torch.stack(steps, 1), logits, atol=1e-10, rtol=0)
