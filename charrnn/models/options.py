"""The built-in kinds' own settings: one frozen dataclass each, all with defaults.

They live apart from the kinds' implementations because the registry (and so
`charrnn --help`) reads them without importing torch. Each field is an option,
declared once (spec.option: its help; a kind's options go in the "Cell options"
panel of `charrnn train --help`, marked with the kind's name), and each
`validate()` raises a one-line ConfigError naming the option as the user typed it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..spec import comma_floats, comma_ints, option


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class LeakyOptions:
    tau_max: float = option(100.0, "The slowest unit's time constant τ in steps; the units' τ are log-spaced from 1 to this.")
    learn_tau: bool = option(False, "Learn the time constants too.", flag="--learn-tau")
    # recurrent connections from h(t-d), one matrix per d
    delays: tuple[int, ...] = option((1,), "Recurrent connections from h(t-d) for each d, e.g. 1,4,16: skip connections through time.",
                                     parse=comma_ints, show_default="1")  # fmt: skip

    def validate(self) -> "LeakyOptions":
        _check(math.isfinite(self.tau_max) and self.tau_max >= 1.0, f"--tau-max must be a number >= 1 (a time constant in steps), got {self.tau_max}.")
        d = self.delays
        shown = ",".join(map(str, d)) or "nothing"
        ok = bool(d) and all(isinstance(x, int) and x >= 1 for x in d) and len(set(d)) == len(d)
        _check(ok, f"--delays takes distinct whole numbers >= 1 such as 1,4,16; got {shown}.")
        _check(max(d) <= 4096, f"--delays reach at most 4096 steps back; got {max(d)}.")
        return self


@dataclass(frozen=True)
class GatedOptions:
    # Tallec and Ollivier (2018), "Can recurrent neural networks warp time?": a gate that keeps a
    # fraction k = sigmoid(b) of the old state each step holds it for about 1 / (1 - k) = 1 + e^b
    # steps, so b = log(u), u ~ U(1, T - 1), spreads the units' memories from 1 to T steps
    chrono: float = option(0.0, "Chrono initialisation: the keep gate's bias log(u), u ~ U(1, T-1), so the units hold their "
                           "memory for 1 to T steps at the start (0: PyTorch's uniform start).", metavar="T")  # fmt: skip

    def validate(self) -> "GatedOptions":
        ok = self.chrono == 0 or (math.isfinite(self.chrono) and 2 <= self.chrono <= 1e6)
        _check(ok, f"--chrono takes 0 (off) or a number of steps from 2 to 1e6, the longest memory to start with; got {self.chrono}.")
        return self


READOUTS = ("closed", "ridge", "lda", "gradient")


@dataclass(frozen=True)
class ESNOptions:
    density: float = option(0.1, "Fraction of the reservoir's recurrent weights that are not zero.")
    spectral_radius: float = option(0.98, "The reservoir's spectral radius (largest |eigenvalue|): just under 1 is barely contractive.")
    input_scaling: float = option(1.0, "Scale of the fixed input weights and bias.")  # against the recurrence
    # several rates make populations: 1,0.05 = fast units for the present, slow ones (τ = 20 steps) for the recent past
    leak: tuple[float, ...] = option((1.0,), "Leak rates a: h = (1-a) h + a tanh(...), 1 is no leak; several (1,0.05) split the units evenly.",
                                     parse=comma_floats, show_default="1")  # fmt: skip
    readout: str = option("ridge", "ridge or lda: fitted in closed form in one pass, then refined by gradient; closed: both, the better "
                          "on the pass's last chunk kept; gradient: by gradient alone.", choices=READOUTS)  # fmt: skip
    ridge: float = option(1e-4, "The ridge penalty λ (per timestep) of the closed-form readout.")

    def __post_init__(self) -> None:  # a checkpoint from before several leak rates says leak = 1.0
        if not isinstance(self.leak, tuple):
            object.__setattr__(self, "leak", tuple(self.leak) if isinstance(self.leak, list) else (self.leak,))

    def validate(self) -> "ESNOptions":
        _check(0.0 < self.density <= 1.0, f"--density must be in (0, 1], got {self.density}.")
        _check(math.isfinite(self.spectral_radius) and self.spectral_radius >= 0, f"--spectral-radius must be a number >= 0, got {self.spectral_radius}.")
        _check(math.isfinite(self.input_scaling) and self.input_scaling > 0, f"--input-scaling must be a number > 0, got {self.input_scaling}.")
        shown = ",".join(map(str, self.leak)) or "nothing"
        _check(bool(self.leak) and all(0.0 < a <= 1.0 for a in self.leak), f"--leak takes rates in (0, 1] such as 1 or 1,0.05; got {shown}.")
        _check(math.isfinite(self.ridge) and self.ridge > 0, f"--ridge must be a number > 0, got {self.ridge}.")
        return self


@dataclass(frozen=True)
class BinaryTreeOptions:
    open_folds: bool = option(False, "Fold an operator's arguments without the closing node (the form before issue 24's fix; "
                              "checkpoints written before it read trees this way).", flag="--open-folds")  # fmt: skip

    def validate(self) -> "BinaryTreeOptions":
        return self


FEEDBACKS = ("target", "model")


@dataclass(frozen=True)
class JordanOptions:
    feedback: str = option("target", "What o(t-1) is in training: target (teacher forcing, parallel over time) or model (its own output).",
                           choices=FEEDBACKS)  # fmt: skip

    def validate(self) -> "JordanOptions":
        return self
