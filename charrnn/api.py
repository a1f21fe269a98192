"""The Python API: charrnn from a notebook or a script.

    import charrnn
    m = charrnn.load("checkpoints/shakespeare-lstm")      # a run folder, a checkpoint or a run name
    print(m.sample(prime="ROMEO:", temperature=0.8, length=200, seed=1))
    t = m.trace("To be, or not to be")                    # the inspector's arrays, as NumPy
    t.signals["h"].shape                                  # (layers, characters, units)
    m.info["best_val_bpc"]
    run = charrnn.train("tiny.txt", steps=200, hidden=64, name="tiny")

The same code paths as the command line: `Model.sample(..., seed=s)` is the text
`charrnn sample RUN --seed s` prints (without its final newline), `trace` is what
`charrnn inspect` reads, `info` what `charrnn info --json` prints. `import charrnn`
stays light: this module (and torch) load when `charrnn.load` or `charrnn.train`
is first called. Errors are `charrnn.errors.CharRNNError`s with the CLI's messages.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import DEFAULT_CHECKPOINTS, DataConfig, ModelConfig, SampleConfig
from .errors import ConfigError
from .inspect.trace import Activations, activations, gradient_flow
from .runtime.hardware import pick_device
from .tasks.generate import eos_text, generate, new_seed
from .training import checkpoint

__all__ = ["Model", "load", "train"]


class Model:
    """A trained model and its tokenizer, loaded from a checkpoint."""

    def __init__(self, path: Path, ck: checkpoint.Checkpoint, device: str = "cpu"):
        self.path = path
        self.run_dir = path.parent
        self._ck = ck
        self.net, self.tokenizer = checkpoint.model_from(ck, path)
        self.device = pick_device(device)
        self.net.to(self.device)
        self.config = ck.model_config
        self.doc_sep = ck.data_config.doc_sep
        self.result: Any = None  # train()'s TrainResult, for a model it just trained

    def __repr__(self) -> str:
        return f"charrnn.Model({str(self.path)!r}: {self.config.summary()}, step {self._ck.step:,})"

    @property
    def info(self) -> dict[str, Any]:
        """What `charrnn info --json` prints: configs, vocabulary, steps, validation loss."""
        return self._ck.summary(self.path).to_json()

    def _language_model(self, what: str) -> None:
        if self.config.task != "lm":
            raise ConfigError(f"{what} needs a language model; {self.path} was trained for the {self.config.task} task.")

    def sample(
        self, prime: str = "", temperature: float = 0.8, length: int = 500, top_k: int | None = None,
        top_p: float | None = None, stop: str | tuple[str, ...] | list[str] = (), stop_at_eos: bool = True,
        seed: int | None = None, unknown: str = "error",
    ) -> str:  # fmt: skip
        """Text from the model: the prime, then up to `length` generated characters
        (see `charrnn sample --help` for each setting; `seed=None` picks a new one)."""
        self._language_model("sample")
        cfg = SampleConfig(
            prime=prime, temperature=temperature, top_k=top_k, top_p=top_p, length=length, seed=seed,
            stop=(stop,) if isinstance(stop, str) else tuple(stop), stop_at_eos=stop_at_eos, unknown=unknown,
        ).validate()  # fmt: skip
        gen = torch.Generator().manual_seed(seed if seed is not None else new_seed())
        return "".join(generate(self.net, self.tokenizer, cfg, gen, eos_text(self.doc_sep)))

    def trace(self, text: str, unknown: str = "error", gradients: bool = False) -> Activations:
        """The inspector's view of `text`: `.signals` (name -> (layers, T, units) array,
        e.g. "h", "c", "forget"), `.probs` (T, vocabulary) the prediction after each
        token, `.tokens`, `.ids`, `.vocab`, `.offsets`. With `gradients=True` it also
        carries `.grad_flow` (name -> (layers, T-1)): |dL_T/ds_t|, the gradient of
        the last prediction back through time."""
        self._language_model("trace")
        acts = activations(self.net, self.tokenizer, text, unknown)
        if gradients:
            object.__setattr__(acts, "grad_flow", gradient_flow(self.net, self.tokenizer, text, unknown))
        return acts

    def probabilities(self, text: str) -> dict[str, float]:
        """The distribution of the token after `text` (T=1), as token text -> probability."""
        acts = self.trace(text)
        return dict(zip(acts.vocab, np.asarray(acts.probs[-1], dtype=float).tolist()))


def load(run_or_checkpoint: str | Path | None = None, device: str = "cpu", checkpoints: str | Path = DEFAULT_CHECKPOINTS,
         prefer: str = "best") -> Model:  # fmt: skip
    """A run folder (its best checkpoint unless prefer="last"), a checkpoint file, a
    run's name under `checkpoints`, or None for the newest run there."""
    if prefer not in ("best", "last"):
        raise ConfigError(f"prefer must be best or last, got {prefer!r}.")
    path = checkpoint.find(run_or_checkpoint, checkpoints, prefer=checkpoint.BEST if prefer == "best" else checkpoint.LAST)
    return Model(path, checkpoint.load(path), device)


def train(corpus: str | Path | list[str | Path], name: str | None = None, checkpoints: str | Path = DEFAULT_CHECKPOINTS,
          progress: bool = False, tensorboard: bool | str | Path = False, **options: Any) -> Model:  # fmt: skip
    """Train a new run on files, folders or a built-in corpus (`charrnn corpora`) with
    `charrnn train`'s options as keywords (steps=500, cell="gru", hidden=128,
    tokenizer="spm", tau_max=50.0, ...: every option `charrnn train --help` lists,
    a kind's and a task's own included); returns the trained Model (its best checkpoint), whose
    `.result` says how the run ended. progress=True prints a line per evaluation;
    tensorboard=True writes TensorBoard logs to RUN/tensorboard, a folder writes them to
    FOLDER/NAME, as `--tensorboard` and `--tensorboard-dir` do. As
    with `charrnn train`, a run in fp32 on a CPU, and a new LSTM classifier, take their
    recipe for the settings not given (training/recipe.py)."""
    from .training import plan

    from .runconfig import build_configs

    if "paths" in options:
        raise ConfigError("charrnn.train() takes the corpus as its first argument, not paths=.")
    data, model, tcfg = build_configs(options, paths=corpus, keyword=True)  # as `charrnn train` builds them
    p = plan.new_run(data, model, tcfg, Path(checkpoints), name, given=set(options))  # the recipes, as `charrnn train`
    sinks: list[Any] = []
    if progress:
        from rich.console import Console

        from .views.progress import PlainSink

        sinks.append(PlainSink(Console(stderr=True)))
    logs: list[Any] = []
    if tensorboard is not False:
        from .training.tensorboard import TensorBoardSink

        logs.append(TensorBoardSink(None if tensorboard is True else Path(tensorboard)))  # a missing extra: one line, now
    try:
        result = plan.trainer(p, [*sinks, *logs], threading.Event()).run()
    finally:
        for sink in logs:
            sink.close()
    m = load(result.run_dir)
    m.result = result
    return m
