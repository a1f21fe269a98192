"""The built-in kinds' own settings: one frozen dataclass each, all with defaults.

They live apart from the kinds' implementations because the registry (and so
`charrnn --help`) reads them without importing torch. Each `validate()` raises
a one-line ConfigError naming the option as the user typed it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class LeakyOptions:
    tau_max: float = 100.0  # the slowest unit's time constant; the units' τ are log-spaced from 1 to this
    learn_tau: bool = False  # train the time constants too
    delays: tuple[int, ...] = (1,)  # recurrent connections from h(t-d), one matrix per d

    def validate(self) -> "LeakyOptions":
        _check(math.isfinite(self.tau_max) and self.tau_max >= 1.0, f"--tau-max must be a number >= 1 (a time constant in steps), got {self.tau_max}.")
        d = self.delays
        shown = ",".join(map(str, d)) or "nothing"
        ok = bool(d) and all(isinstance(x, int) and x >= 1 for x in d) and len(set(d)) == len(d)
        _check(ok, f"--delays takes distinct whole numbers >= 1 such as 1,4,16; got {shown}.")
        _check(max(d) <= 4096, f"--delays reach at most 4096 steps back; got {max(d)}.")
        return self


READOUTS = ("ridge", "gradient")


@dataclass(frozen=True)
class ESNOptions:
    density: float = 0.1  # the fraction of recurrent weights that are not zero
    spectral_radius: float = 0.98  # the reservoir's largest |eigenvalue|: just under 1, barely contractive
    input_scaling: float = 1.0  # how loud the input (and the bias) are against the recurrence
    leak: float = 1.0  # the leak rate a: h = (1 - a) h + a tanh(...); 1 is no leak
    readout: str = "ridge"  # ridge: fitted in closed form first, then refined by gradient; gradient: by gradient alone
    ridge: float = 1e-4  # the ridge penalty λ per token

    def validate(self) -> "ESNOptions":
        _check(0.0 < self.density <= 1.0, f"--density must be in (0, 1], got {self.density}.")
        _check(math.isfinite(self.spectral_radius) and self.spectral_radius >= 0, f"--spectral-radius must be a number >= 0, got {self.spectral_radius}.")
        _check(math.isfinite(self.input_scaling) and self.input_scaling > 0, f"--input-scaling must be a number > 0, got {self.input_scaling}.")
        _check(0.0 < self.leak <= 1.0, f"--leak must be in (0, 1], got {self.leak}.")
        _check(self.readout in READOUTS, f"--readout must be ridge or gradient, got {self.readout!r}.")
        _check(math.isfinite(self.ridge) and self.ridge > 0, f"--ridge must be a number > 0, got {self.ridge}.")
        return self


FEEDBACKS = ("target", "model")


@dataclass(frozen=True)
class JordanOptions:
    feedback: str = "target"  # target: teacher forcing (parallel over time); model: the model's own output distribution

    def validate(self) -> "JordanOptions":
        _check(self.feedback in FEEDBACKS, f"--feedback must be target or model, got {self.feedback!r}.")
        return self
