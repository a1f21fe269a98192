"""`charrnn sample`: generate text from a trained model, streaming it as it comes.

With --json each text is one JSON object on a line of its own (JSON Lines),
written as it is finished: {"text", "seed"} (and "index" with --num, "logp" with
--beam), so several samples with newlines inside stay apart for a script.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from ..config import DataConfig, Device, SampleConfig, Unknown
from ..errors import ConfigError
from .common import (
    DEFAULT_ROOT,
    P_HW,
    P_SAMPLE,
    CheckpointsOpt,
    Command,
    RunArg,
    S,
    UnknownOpt,
    app,
    err,
    given_options,
    user_errors,
)


def _check_beam(beam: int, cfg: SampleConfig, given: set[str]) -> None:
    if beam < 1:
        raise ConfigError(f"--beam must be a whole number > 0, got {beam}.")
    sampling = [f"--{n.replace('_', '-')}" for n in ("temperature", "top_k", "top_p", "seed") if n in given]
    if sampling:
        raise ConfigError(f"--beam searches for the most likely text, so {', '.join(sampling)} (for sampling) does not apply.")
    if cfg.num > beam:
        raise ConfigError(f"--num {cfg.num} asks for more texts than the beam keeps (--beam {beam}).")


@app.command(cls=Command)
@user_errors
def sample(
    ctx: typer.Context,
    run_or_checkpoint: RunArg = None,
    prime: Annotated[str, typer.Option(help="Text to start from; it is printed first.", rich_help_panel=P_SAMPLE)] = S.prime,
    temperature: Annotated[float, typer.Option(help="Softmax temperature; 0 picks the most likely token.", rich_help_panel=P_SAMPLE)] = S.temperature,
    top_k: Annotated[Optional[int], typer.Option(help="Sample among the k most likely tokens only.", rich_help_panel=P_SAMPLE)] = S.top_k,
    top_p: Annotated[Optional[float], typer.Option(help="Sample from the smallest set with this much probability.", rich_help_panel=P_SAMPLE)] = S.top_p,
    length: Annotated[int, typer.Option(help="At most this many characters after the prime.", rich_help_panel=P_SAMPLE)] = S.length,
    num: Annotated[int, typer.Option(help="How many samples (run as one batch, printed when all have ended).", rich_help_panel=P_SAMPLE)] = S.num,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: a new one, printed to stderr).", rich_help_panel=P_SAMPLE)] = S.seed,
    stop: Annotated[Optional[list[str]], typer.Option(help="Stop at this string (repeatable); it is not printed.", rich_help_panel=P_SAMPLE)] = None,
    no_stop: Annotated[bool, typer.Option("--no-stop", help="Run past the end of a document.", rich_help_panel=P_SAMPLE)] = False,
    label: Annotated[
        Optional[str], typer.Option(help="Generate for this label (a model trained with --label-from; default: no label).", rich_help_panel=P_SAMPLE, show_default=False)
    ] = None,
    beam: Annotated[Optional[int], typer.Option(help="Beam search with this width: the most likely continuation instead of a sample (--num N: the N best).", rich_help_panel=P_SAMPLE, show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print each text as a JSON object on a line of its own (JSON Lines).", rich_help_panel=P_SAMPLE)] = False,
    unknown: UnknownOpt = Unknown(S.unknown),
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
    device: Annotated[Device, typer.Option(help="Where to run the model.", rich_help_panel=P_HW)] = Device.cpu,
) -> None:
    """Generate text from a trained model, streaming it as it comes."""
    cfg = SampleConfig(
        prime=prime, temperature=temperature, top_k=top_k, top_p=top_p, length=length, num=num, seed=seed,
        stop=tuple(stop or ()), stop_at_eos=not no_stop, unknown=unknown.value,
    ).validate()  # fmt: skip
    if beam is not None:
        _check_beam(beam, cfg, given_options(ctx))
    import torch

    from ..tasks.generate import eos_text, generate, generate_batch, label_index, new_seed
    from ..training import checkpoint
    from ..runtime.hardware import pick_device

    path = checkpoint.find(run_or_checkpoint, checkpoints)
    ck = checkpoint.load(path)
    task = ck.task_name
    if task != "lm":
        raise ConfigError(f"{path} is a {task} run, not a language model; ask it with `charrnn predict`.")
    model, tok = checkpoint.model_from(ck, path)
    label_id = label_index(ck.labels(), label)  # an unknown label: fail before printing anything
    model.to(pick_device(device.value))
    doc_sep = ck.data_config.doc_sep
    tok.encode(cfg.prime, unknown=cfg.unknown)  # unknown characters: fail before printing anything
    if beam is not None:
        if model.context is not None or model.ends is not None:
            raise ConfigError("--beam searches a model without labels or an end output (halt, length); sample this one instead.")
        from ..tasks.generate import beam_texts

        for i, (text, logp) in enumerate(beam_texts(model, tok, cfg, beam, eos_text(doc_sep))[: cfg.num]):
            if as_json:
                _json_line({"text": text, "beam": i + 1, "logp": logp})
                continue
            sys.stdout.write(("\n" if i else "") + text + "\n")  # as samples are: a blank line between texts
            sys.stdout.flush()
            err.print(f"[dim]beam {i + 1} of {beam}: log-probability {logp:.3f}[/]")
        return
    seed_used = cfg.seed if cfg.seed is not None else new_seed()
    gen = torch.Generator().manual_seed(seed_used)
    if as_json:
        if cfg.num == 1:
            _json_line({"text": "".join(generate(model, tok, cfg, gen, eos_text(doc_sep), label_id)), "seed": seed_used})
        else:
            for i, text in enumerate(generate_batch(model, tok, cfg, cfg.num, gen, eos_text(doc_sep), label_id)):
                _json_line({"text": text, "seed": seed_used, "index": i})
    elif cfg.num == 1:
        for piece in generate(model, tok, cfg, gen, eos_text(doc_sep), label_id):
            sys.stdout.write(piece)
            sys.stdout.flush()
    else:  # one batch of num streams, printed when all have ended
        sys.stdout.write("\n\n".join(generate_batch(model, tok, cfg, cfg.num, gen, eos_text(doc_sep), label_id)))
    if not as_json:
        sys.stdout.write("\n")
        sys.stdout.flush()
    if cfg.seed is None:
        err.print(f"[dim]seed {seed_used} (pass --seed {seed_used} to get this text again)[/]")


def _json_line(record: dict) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()
