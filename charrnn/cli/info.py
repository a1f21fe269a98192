"""`charrnn info`: what a checkpoint holds, for people and for scripts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..config import ModelConfig, TrainConfig, format_duration, from_dict
from ..errors import CharRNNError
from ..training.telemetry import METRICS, metric_text
from .common import DEFAULT_ROOT, CheckpointsOpt, Command, RunArg, app, out, user_errors

MAX_LABELS = 30  # labels listed in the table


@app.command(cls=Command)
@user_errors
def info(
    run_or_checkpoint: RunArg = None,
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Show a checkpoint: config, vocabulary, parameters, steps, validation loss."""
    from ..training import checkpoint

    path = checkpoint.find(run_or_checkpoint, checkpoints, prefer=checkpoint.LAST)
    describe(path, checkpoint.load(path), out, as_json)


def summarize(path: Path, ck: dict[str, Any]) -> dict[str, Any]:
    """Plain facts about a loaded checkpoint (no model is built)."""
    m, d, t = ck["model_config"], ck.get("data_config", {}), ck.get("train_config", {})
    tok = ck["tokenizer"]
    corpus = ck.get("corpus", {})
    chars = corpus.get("chars_train", 0) + corpus.get("chars_val", 0)
    tokens = corpus.get("tokens", 0)
    last = ck.get("last_eval") or {}
    best = ck.get("best_val_loss")
    cfg = from_dict(ModelConfig, m)
    frozen = sum(v.numel() for k, v in ck["model"].items() if k in set(ck.get("frozen", ())))
    return {
        "checkpoint": str(path),
        "format_version": ck.get("version"),
        "task": cfg.task,
        "cell": m["cell"],
        "options": dict(cfg.options),
        "summary": cfg.summary(),
        "layers": m["layers"],
        "hidden": m["hidden"],
        "embed": m["embed"],
        "dropout": m["dropout"],
        "parameters": sum(v.numel() for v in ck["model"].values()),
        "trained_parameters": sum(v.numel() for v in ck["model"].values()) - frozen,
        "tokenizer": tok.get("kind"),
        "spm_type": tok.get("type") if tok.get("kind") == "spm" else None,
        "vocab_size": m["vocab_size"],
        "classes": len(ck["labels"]["labels"]) if isinstance(ck.get("labels"), dict) and "labels" in ck["labels"] else None,
        "end_of_document_token": bool(tok.get("eos", False)) if tok.get("kind") == "char" else tok.get("eos_id") is not None,
        "chars_per_token": round(chars / tokens, 4) if tokens else None,
        "corpus": list(d.get("paths", [])),
        "doc_sep": d.get("doc_sep"),
        "train_chars": corpus.get("chars_train"),
        "val_chars": corpus.get("chars_val"),
        "step": ck["step"],
        "epoch": ck.get("epoch"),
        "elapsed_s": round(ck.get("elapsed_s", 0.0), 1),
        "best_val_loss": best,
        "best_val_bpc": ck.get("best_val_bpc"),
        "best_val_ppl": math.exp(best) if best is not None else None,
        "last_val_loss": last.get("val_loss"),
        "last_val_bpc": last.get("val_bpc"),
        "last_val_accuracy": last.get("accuracy"),
        "seq_len": t.get("seq_len"),
        "batch_size": t.get("batch_size"),
        "lr": t.get("lr"),
        "limits": {k: t.get(k) for k in ("steps", "epochs", "time")},
        "device_trained_on": ck.get("trained_on", t.get("device")),
        "precision": ck.get("trained_precision", t.get("precision")),
        "frozen": list(ck.get("frozen", ())),
        "kind": _kind_facts(ck, cfg),
        "label_from": d.get("label_from"),
        "labels": _labels(ck),
        "last_val_bpc_no_label": last.get("val_bpc_no_label"),
        "last_metrics": {k: last[k] for k in METRICS if isinstance(last.get(k), (int, float))},
        "pairs": ck.get("pairs"),
        "recipe": list(t.get("recipe") or []),  # settings taken from the fp32 CPU recipe (training/recipe.py)
        "recipe_note": _recipe_note(cfg, t),
        "settings": _settings(ck),
    }


def _settings(ck: dict[str, Any]) -> dict[str, Any]:
    """Every option of the run, by name, as its config.toml holds them (runconfig.resolved)."""
    from ..config import DataConfig
    from ..runconfig import resolved

    try:
        return resolved(from_dict(DataConfig, ck.get("data_config", {})), from_dict(ModelConfig, ck["model_config"]),
                        from_dict(TrainConfig, ck.get("train_config", {})))  # fmt: skip
    except CharRNNError:  # a kind or task this charrnn does not have: the rows above still say what they can
        return {}


def _kind_facts(ck: dict[str, Any], cfg: ModelConfig) -> dict[str, Any]:
    """What the model's kind says about these weights (a reservoir's measured spectral radius, ...)."""
    from ..models import registry

    if cfg.cell not in registry.KINDS:
        return {}
    return registry.get(cfg.cell).load().describe(ck["model"], cfg)
def _labels(ck: dict[str, Any]) -> dict[str, dict[str, int]] | None:
    """label -> {docs, chars} over the run's corpus (None: a model without labels)."""
    names = (ck.get("labels") or {}).get("labels")
    if not isinstance(names, list):
        return None
    stats = ck.get("label_stats") or {}
    return {n: {"docs": stats.get(n, [0, 0])[0], "chars": stats.get(n, [0, 0])[1]} for n in names}


def _recipe_note(model: ModelConfig, t: dict[str, Any]) -> str | None:
    from ..training import recipe

    return recipe.describe(model, from_dict(TrainConfig, t)) if t.get("recipe") or t.get("auto_choice") else None


def describe(path: Path, ck: dict[str, Any], console: Console, as_json: bool = False) -> None:
    s = summarize(path, ck)
    if as_json:
        console.print_json(json.dumps(s))
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()

    def row(k: str, v: Any) -> None:
        table.add_row(k, escape(str(v)))

    row("checkpoint", s["checkpoint"])
    row("model", s["summary"])
    frozen = s["parameters"] - s["trained_parameters"]
    row("parameters", f"{s['parameters']:,}" + (f" ({s['trained_parameters']:,} trained, {frozen:,} frozen)" if frozen else ""))
    eod = "with an end-of-document token" if s["end_of_document_token"] else "no documents"
    kind = f"sentencepiece {s['spm_type']} with byte fallback" if s["tokenizer"] == "spm" else f"{s['tokenizer']} tokenizer"
    if s["tokenizer"] == "tree":
        row("vocabulary", f"{s['vocab_size']} node labels; {s['classes']} classes")
    else:
        row("vocabulary", f"{s['vocab_size']} ({kind}, {eod})")
    if s["chars_per_token"]:
        row("chars/token", f"{s['chars_per_token']:.3f}")
    corpus = ", ".join(s["corpus"]) or "?"
    sizes = f" ({s['train_chars']:,} train / {s['val_chars']:,} validation chars)" if s["train_chars"] is not None else ""
    row("corpus", corpus + sizes + (f", documents by {s['doc_sep']!r}" if s["doc_sep"] else ""))
    if s["pairs"]:
        p = s["pairs"]
        row("pairs", f"{p.get('train', 0):,} train / {p.get('val', 0):,} validation; sources up to {p.get('train_max_source')} chars in training")
    row("trained", f"{s['step']:,} steps, epoch {s['epoch']}, {format_duration(s['elapsed_s'])}")
    if s["task"] == "lm":
        batch = f"{s['batch_size']} x {s['seq_len']}"
    else:
        batch = f"{s['batch_size']} {'trees' if s['task'] == 'tree' else 'pairs' if s['pairs'] else 'documents'}"
    row("batch", f"{batch}, lr {s['lr']}, {s['precision']} on {s['device_trained_on']}")
    unit = {"classify": "document", "tree": "tree"}.get(s["task"], "token")
    if s["recipe_note"]:
        row("defaults", s["recipe_note"])
    if s["settings"]:
        from ..runconfig import changed

        row("options", changed(s["settings"]) or "the defaults")
    if s["best_val_loss"] is not None:
        bpc = f", {s['best_val_bpc']:.4f} bits/char, perplexity {s['best_val_ppl']:.2f}" if s["best_val_bpc"] is not None else ""
        row("best val", f"{s['best_val_loss']:.4f} nats/{unit}{bpc}")
    if s["last_val_loss"] is not None:
        bpc = f", {s['last_val_bpc']:.4f} bits/char" if s["last_val_bpc"] is not None else ""
        metrics = "".join(f", {metric_text(k, v)}" for k, v in s["last_metrics"].items())
        none = f" ({s['last_val_bpc_no_label']:.4f} with no label)" if s["last_val_bpc_no_label"] is not None else ""
        row("last val", f"{s['last_val_loss']:.4f} nats/{unit}{bpc}{none}{metrics}")
    for k, v in s["kind"].items():
        row(k, v)
    if s["labels"] is not None:
        labels = s["labels"]
        row("labels", f"{len(labels)} from --label-from {s['label_from']} (documents / characters in the corpus)")
        width = max(len(n) for n in labels)
        for name, c in list(labels.items())[:MAX_LABELS]:
            row("", f"  {name:<{width}}  {c['docs']:>9,} docs  {c['chars']:>12,} chars")
        if len(labels) > MAX_LABELS:
            row("", f"  and {len(labels) - MAX_LABELS} more (--json lists them all)")
    console.print(table)
