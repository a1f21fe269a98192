"""charrnn: recurrent language models you can train, sample and look inside.

From Python: `charrnn.load(run).sample(...)`, `.trace(text)`, `.info`, and
`charrnn.train(corpus, **options)` (charrnn/api.py). Importing charrnn is light:
torch loads when one of these is first called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .spec import VERSION as __version__

__all__ = ["Model", "load", "train"]

if TYPE_CHECKING:
    from .api import Model


def load(run_or_checkpoint: Any = None, **kw: Any) -> Model:
    """A trained model from a run folder, a checkpoint or a run name (see charrnn.api.load)."""
    from .api import load as load_

    return load_(run_or_checkpoint, **kw)


def train(corpus: Any, **options: Any) -> Model:
    """Train a new run with `charrnn train`'s options as keywords (see charrnn.api.train)."""
    from .api import train as train_

    return train_(corpus, **options)


def __getattr__(name: str) -> Any:
    if name == "Model":
        from .api import Model as Model_

        return Model_
    raise AttributeError(f"module 'charrnn' has no attribute {name!r}")
