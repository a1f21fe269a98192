"""The built-in kinds' own options, declared once for `charrnn train` and `charrnn compare`.

Each parameter's name is a field of the kind's options dataclass
(models/options.py), so a given option travels in ModelConfig.options as is;
one that does not fit the chosen cell is a one-line error there. Defaults come
from those dataclasses, so `--help` shows the values the code uses.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Optional

import typer

from ..models.options import ESNOptions, JordanOptions, LeakyOptions
from .common import P_CELL

LEAKY, ESN, JORDAN = LeakyOptions(), ESNOptions(), JordanOptions()


class Readout(str, enum.Enum):
    ridge = "ridge"
    gradient = "gradient"


class Feedback(str, enum.Enum):
    target = "target"
    model = "model"


def _delays(value: Optional[str]) -> Optional[tuple[int, ...]]:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter(f"takes whole numbers separated by commas, such as 1,4,16; got {value!r}.") from None


def _opt(help: str, *names: str, **kw: Any) -> Any:
    return typer.Option(*names, help=help, rich_help_panel=P_CELL, **kw)


TauMaxOpt = Annotated[float, _opt("[leaky] The slowest unit's time constant τ in steps; the units' τ are log-spaced from 1 to this.")]
LearnTauOpt = Annotated[bool, _opt("[leaky] Learn the time constants too.", "--learn-tau")]
DelaysOpt = Annotated[
    Optional[str],
    _opt("[leaky] Recurrent connections from h(t-d) for each d, e.g. 1,4,16: skip connections through time.", callback=_delays,
         show_default=",".join(map(str, LEAKY.delays))),
]  # fmt: skip
DensityOpt = Annotated[float, _opt("[esn] Fraction of the reservoir's recurrent weights that are not zero.")]
RadiusOpt = Annotated[float, _opt("[esn] The reservoir's spectral radius (largest |eigenvalue|): just under 1 is barely contractive.")]
InputScalingOpt = Annotated[float, _opt("[esn] Scale of the fixed input weights and bias.")]
LeakOpt = Annotated[float, _opt("[esn] Leak rate a: h = (1-a) h + a tanh(...); 1 is no leak.")]
ReadoutOpt = Annotated[Readout, _opt("[esn] ridge: fitted in closed form in one pass, then refined by gradient; gradient: by gradient alone.")]
RidgeOpt = Annotated[float, _opt("[esn] The ridge penalty λ (per timestep) of the closed-form readout.")]
FeedbackOpt = Annotated[
    Feedback, _opt("[jordan] What o(t-1) is in training: target (teacher forcing, parallel over time) or model (its own output).")
]

# the parameters above, by name: the given ones go into ModelConfig.options
OPTION_PARAMS: tuple[str, ...] = ("tau_max", "learn_tau", "delays", "density", "spectral_radius", "input_scaling", "leak", "readout",
                                  "ridge", "feedback")  # fmt: skip


def given_kind_options(params: dict[str, Any], given: set[str], names: tuple[str, ...] = OPTION_PARAMS) -> dict[str, Any]:
    """The kind options the user typed, as plain values (an Enum's value, a tuple of delays)."""
    return {k: getattr(params[k], "value", params[k]) for k in names if k in given}
