"""`charrnn export`: a language model's weights in files other programs open.

Three formats, each beside a `config.json` (the architecture, the state tensors and
their shapes, where the files are) and the tokenizer (`vocab.json`: each id's
character; or sentencepiece's own `tokenizer.model`):

- `safetensors`: `model.safetensors`, the state_dict under charrnn's names. For rnn,
  lstm and gru these are PyTorch's own: `embed.*` an nn.Embedding, `core.*` an
  nn.RNN / nn.LSTM / nn.GRU (batch_first), `head.*` an nn.Linear, so plain
  PyTorch rebuilds the model without charrnn (docs/export.md shows how).
- `onnx`: `model.onnx`, one timestep of the model as a graph,
  (idx (B,) int64, state...) -> (logits (B, V), state...), the batch dynamic.
- `torchscript`: `model.torchscript.pt`, the same step as a TorchScript module
  (`torch.jit.load`), called as `logits, *state = m(idx, *state)`.

The step is the model's own per-step path (`CharRNN.step`: the one sampling uses),
traced through a small module with a fixed signature, so every sequence kind with a
step exports: rnn, lstm, gru, leaky, esn, jordan. A state starts as zeros of the
shapes config.json gives. Models of other tasks, and language models conditioned on
labels or with an end output (whose steps take more inputs), are not exported.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..spec import VERSION as __version__
from ..config import ModelConfig, to_dict
from ..data.tokenizer import Tokenizer
from ..errors import ConfigError, ExportError
from . import checkpoint

FORMATS = ("safetensors", "onnx", "torchscript")
FILES = {"safetensors": "model.safetensors", "onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
FORMAT, VERSION = "charrnn-export", 1
OPSET = 17


@dataclass(frozen=True)
class Exported:
    folder: Path
    files: tuple[Path, ...]  # what was written, the model's file first
    cell: str
    step: int  # the training step of the checkpoint


class Step(nn.Module):
    """One timestep with a fixed signature: (idx (B,), *state) -> (logits (B, V), *state),
    each state tensor (L, B, ...) as the model keeps it. Inference only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, idx: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        logits, new = self.model.step(idx, tuple(state))  # (B, V), each (L, B, ...)
        return (logits, *new)


def export(target: str | Path | None, fmt: str, out: Path | None = None, root: Path | str = "checkpoints") -> Exported:
    """Write a run's model (its best checkpoint, as `sample` reads it) in `fmt` to `out`
    (default: the run's folder/export), with config.json and the tokenizer."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    needs(fmt)
    path = checkpoint.find(target, root)
    ck = checkpoint.load(path)
    cfg = ck.model_config
    if cfg.task != "lm":
        raise ConfigError(f"{path} holds a {cfg.task} run; charrnn export writes language models (--task lm), whose one step "
                          "is the whole model.")  # fmt: skip
    model, tok = checkpoint.model_from(ck, path)
    if model.context is not None or model.ends is not None:
        raise ConfigError(f"{path} is a language model conditioned on labels or with an end output (--label-from, --length-model); "
                          "export covers plain language models, whose step takes a token and the state alone.")  # fmt: skip
    model = model.float().eval()
    folder = Path(out) if out is not None else path.parent / "export"
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / FILES[fmt]
    try:
        extra = WRITERS[fmt](model, model_file)
    except (RuntimeError, TypeError, ValueError) as e:  # torch.onnx's errors are RuntimeErrors: a step it cannot trace
        model_file.unlink(missing_ok=True)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ExportError(f"the {cfg.cell} model's step could not be written as {fmt}: {first}") from None
    files = [model_file, *_tokenizer(tok, folder)]
    files.append(_config(model, tok, fmt, folder, path, ck, extra))
    return Exported(folder, tuple(files), cfg.cell, int(ck.step))


def needs(fmt: str) -> None:
    """A one-line error naming the extra when the package a format writes with is missing."""
    module = {"safetensors": "safetensors.torch", "onnx": "onnx"}.get(fmt)
    if module is None:
        return
    try:
        __import__(module)
    except ImportError:
        raise ConfigError(f'--format {fmt} needs the {module.split(".")[0]} package: pip install "charrnn[export]".') from None


# ------------------------------------------------------------------ the model files


def example(model: nn.Module, batch: int = 1) -> tuple[Tensor, ...]:
    """A token and a zero state: what the traced step is given."""
    return (torch.zeros(batch, dtype=torch.long), *model.init_state(batch))


def _safetensors(model: nn.Module, file: Path) -> dict[str, Any]:
    from safetensors.torch import save_file

    weights = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(weights, str(file), metadata={"format": "pt", "producer": f"charrnn {__version__}", "cell": model.kind.name})
    return {}


def _onnx(model: nn.Module, file: Path) -> dict[str, Any]:
    """The graph keeps the inputs the step reads: a Jordan net's step reads the token alone
    (its state is the output it fed back, which is the token), so it has no state input."""
    names = _names(model)
    batch = {"idx": {0: "batch"}, "logits": {0: "batch"}}
    batch.update({n: {1: "batch"} for n in names["state"] + names["state_out"]})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is "legacy" in torch 2.9+, and needs nothing beyond onnx
        torch.onnx.export(Step(model), example(model), str(file), dynamo=False, opset_version=OPSET,
                          input_names=["idx", *names["state"]], output_names=["logits", *names["state_out"]],
                          dynamic_axes=batch)  # fmt: skip
    import onnx

    graph = onnx.load(str(file), load_external_data=False).graph
    return {"onnx_inputs": [i.name for i in graph.input], "onnx_opset": OPSET}


def _torchscript(model: nn.Module, file: Path) -> dict[str, Any]:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Step(model), example(model), check_trace=False)
    traced.save(str(file))
    return {}


WRITERS = {"safetensors": _safetensors, "onnx": _onnx, "torchscript": _torchscript}


def _names(model: nn.Module) -> dict[str, list[str]]:
    state = list(model.kind.state)
    return {"state": state, "state_out": [f"{n}_out" for n in state]}


# ------------------------------------------------------------ what travels beside it


def _tokenizer(tok: Tokenizer, folder: Path) -> list[Path]:
    state = tok.to_state()
    if state["kind"] == "spm":
        file = folder / "tokenizer.model"
        file.write_bytes(bytes(state["model"]))
        return [file]
    file = folder / "vocab.json"
    doc = {"kind": "char", "tokens": list(state["chars"]), "eos_id": tok.eos_id}
    file.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return [file]


def _config(model: nn.Module, tok: Tokenizer, fmt: str, folder: Path, path: Path, ck: checkpoint.Checkpoint, extra: dict[str, Any]) -> Path:
    cfg: ModelConfig = model.cfg
    kind = model.kind
    names = _names(model)
    shapes = [list(s.shape) for s in model.init_state(1)]
    opts = cfg.cell_options()
    tokenizer: dict[str, Any] = {"kind": tok.to_state()["kind"], "eos_id": tok.eos_id}
    if tokenizer["kind"] == "spm":
        tokenizer.update(file="tokenizer.model", ids="sentencepiece's piece ids; charrnn encodes a text a line at a time, "
                         "each newline the byte piece <0x0A>")  # fmt: skip
    else:
        tokenizer.update(file="vocab.json", ids="id i is tokens[i]; eos_id (if not null) ends a document")
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "model": "CharRNN: x = E[idx]; h = core(x, state); logits = c + V h",
        "cell": kind.name,
        "cell_about": kind.about,
        "cell_options": to_dict(opts) if opts is not None else {},
        "layers": cfg.layers,
        "hidden": cfg.hidden,
        "embed": cfg.embed,
        "vocab_size": cfg.vocab_size,
        "state": [{"name": n, "shape": [s[0], "batch", *s[2:]]} for n, s in zip(names["state"], shapes)],
        "state_note": "each state tensor is (layers, batch, ...); a text starts from zeros",
        "inputs": ["idx", *names["state"]],
        "outputs": ["logits", *names["state_out"]],
        "files": {fmt: FILES[fmt], "tokenizer": tokenizer["file"]},
        "pytorch_modules": _pytorch_modules(cfg) if kind.fused else None,
        "tokenizer": tokenizer,
        "source": {"checkpoint": str(path), "step": int(ck.step), "charrnn": __version__},
        **extra,
    }
    file = folder / "config.json"
    try:  # another format of the same checkpoint exported here before: keep its entry in "files"
        old = json.loads(file.read_text(encoding="utf-8"))
        if old.get("source") == doc["source"]:
            doc = {**old, **doc, "files": {**old["files"], **doc["files"]}}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass
    file.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return file


def _pytorch_modules(cfg: ModelConfig) -> dict[str, str]:
    """How plain PyTorch holds the weights of a fused kind (rnn, lstm, gru), by key prefix."""
    core = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cfg.cell]
    return {"embed": f"nn.Embedding({cfg.vocab_size}, {cfg.embed})",
            "core": f"nn.{core}({cfg.embed}, {cfg.hidden}, num_layers={cfg.layers}, batch_first=True)",
            "head": f"nn.Linear({cfg.hidden}, {cfg.vocab_size})"}  # fmt: skip
