"""What a checkpoint says about its run, typed: `charrnn info`, `charrnn runs` and
`Model.info` print a `Summary` (Checkpoint.summary()); `--json` prints its fields.

Part of the checkpoint's schema (training/checkpoint.py): it reads the loaded
`Checkpoint` only, never the file's keys, and builds no model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tasks.state import PairFacts
from .telemetry import METRICS


@dataclass(frozen=True)
class LabelCount:
    docs: int
    chars: int


@dataclass(frozen=True)
class Summary:
    checkpoint: str
    format_version: int  # the format the file was written in
    task: str
    cell: str
    options: dict[str, Any]  # the kind's and the task's own settings
    summary: str  # the model in one line
    layers: int
    hidden: int
    embed: int
    dropout: float
    parameters: int
    trained_parameters: int
    tokenizer: str | None  # char, spm, tree
    spm_type: str | None
    vocab_size: int
    classes: int | None  # the labels a model tells apart (classify, tree)
    end_of_document_token: bool
    chars_per_token: float | None
    corpus: list[str]
    doc_sep: str | None
    train_chars: int | None
    val_chars: int | None
    step: int
    epoch: int
    elapsed_s: float
    best_val_loss: float | None
    best_val_bpc: float | None
    best_val_ppl: float | None
    last_val_loss: float | None
    last_val_bpc: float | None
    last_val_accuracy: float | None
    seq_len: int
    batch_size: int
    lr: float
    limits: dict[str, Any]  # steps, epochs, time
    device_trained_on: str
    precision: str
    frozen: list[str]
    kind: dict[str, Any]  # what the model's kind says about these weights (models.registry Kind.describe)
    label_from: str | None
    labels: dict[str, LabelCount] | None  # label -> documents and characters in the corpus (None: no labels)
    last_val_bpc_no_label: float | None
    last_metrics: dict[str, float]
    pairs: PairFacts | None  # an encoder-decoder run's pairs
    recipe: list[str]  # settings taken from the fp32 CPU recipe (training/recipe.py)
    recipe_note: str | None  # what --precision auto chose, and the recipe's settings
    settings: dict[str, Any]  # every option of the run by name, as its config.toml holds them (runconfig.resolved)

    @property
    def unit(self) -> str:
        """What its losses are per."""
        return {"classify": "document", "tree": "tree"}.get(self.task, "token")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summarize(ck: Any, path: Path | str) -> Summary:
    """Plain facts about a loaded checkpoint (a training.checkpoint.Checkpoint; no model is built)."""
    from . import recipe

    m, d, t, task = ck.model_config, ck.data_config, ck.train_config, ck.task
    tok = task.tokenizer  # the tokenizer's own state (data/tokenizer.py)
    corpus = task.corpus
    chars = corpus.chars_train + corpus.chars_val if corpus else 0
    tokens = corpus.tokens if corpus else 0
    last = ck.last_eval or {}
    best = ck.best_val_loss
    frozen = set(ck.frozen)
    total = sum(v.numel() for v in ck.weights.values())
    names = task.label_set()
    return Summary(
        checkpoint=str(path), format_version=ck.version, task=m.task, cell=m.cell, options=dict(m.options),
        summary=m.summary(), layers=m.layers, hidden=m.hidden, embed=m.embed, dropout=m.dropout, parameters=total,
        trained_parameters=total - sum(v.numel() for k, v in ck.weights.items() if k in frozen),
        tokenizer=tok.get("kind"), spm_type=tok.get("type") if tok.get("kind") == "spm" else None, vocab_size=m.vocab_size,
        classes=len(names) if names is not None else None,
        end_of_document_token=bool(tok.get("eos", False)) if tok.get("kind") == "char" else tok.get("eos_id") is not None,
        chars_per_token=round(chars / tokens, 4) if tokens else None, corpus=list(d.paths), doc_sep=d.doc_sep,
        train_chars=corpus.chars_train if corpus else None, val_chars=corpus.chars_val if corpus else None,
        step=ck.step, epoch=ck.epoch, elapsed_s=round(ck.elapsed_s, 1), best_val_loss=best, best_val_bpc=ck.best_val_bpc,
        best_val_ppl=math.exp(best) if best is not None else None, last_val_loss=last.get("val_loss"),
        last_val_bpc=last.get("val_bpc"), last_val_accuracy=last.get("accuracy"), seq_len=t.seq_len,
        batch_size=t.batch_size, lr=t.lr, limits={"steps": t.steps, "epochs": t.epochs, "time": t.time},
        device_trained_on=ck.trained_on or t.device, precision=ck.trained_precision or t.precision, frozen=list(ck.frozen),
        kind=_kind_facts(ck), label_from=d.label_from, labels=_labels(ck) if names is not None else None,
        last_val_bpc_no_label=last.get("val_bpc_no_label"),
        last_metrics={k: last[k] for k in METRICS if isinstance(last.get(k), (int, float))},
        pairs=getattr(task, "pairs", None),
        recipe=list(t.recipe or []), recipe_note=recipe.describe(m, t) if t.recipe or t.auto_choice else None,
        settings=_settings(ck),
    )  # fmt: skip


def _settings(ck: Any) -> dict[str, Any]:
    """Every option of the run, by name (empty for a kind or task this charrnn does not have)."""
    from ..errors import CharRNNError
    from ..runconfig import resolved

    try:
        return resolved(ck.data_config, ck.model_config, ck.train_config)
    except CharRNNError:
        return {}


def _kind_facts(ck: Any) -> dict[str, Any]:
    """What the model's kind says about these weights (a reservoir's measured spectral radius, ...)."""
    from ..models import registry

    cfg = ck.model_config
    if cfg.cell not in registry.KINDS:
        return {}
    return registry.get(cfg.cell).load().describe(ck.weights, cfg)


def _labels(ck: Any) -> dict[str, LabelCount]:
    """label -> documents and characters over the run's corpus."""
    from ..data.labels import LabelStats

    names = ck.task.label_set()
    counts = LabelStats.from_state(ck.task.label_stats).counts() if ck.task.label_stats else {}
    return {n: LabelCount(counts[n].docs, counts[n].chars) if n in counts else LabelCount(0, 0) for n in names}
