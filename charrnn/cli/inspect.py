"""`charrnn inspect`: the inside of a trained model, on a text of the user's choosing.

Like every command it imports torch only when it runs, and its mistakes end as
one red line. The numbers come from inspect/trace.py and inspect/stats.py, the
pictures from inspect/view.py, the JSON from inspect/export.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from ..config import Unknown, to_dict
from ..errors import ConfigError, CorpusError, TokenizerError
from ..models import registry
from .common import DEFAULT_ROOT, P_OUT, CheckpointsOpt, Command, RunArg, UnknownOpt, app, err, out, user_errors
from .declared import option_type

P_TEXT, P_UNIT, P_MORE, P_ATLAS = "Text", "Unit (0-based, as in PyTorch)", "Analyses", "Atlas and search"
SAMPLED_CHARS = 200  # what inspect reads when given no text


def _signals_help() -> str:
    return "...and this signal of it (default h): " + "; ".join(
        f"{k.name}: {', '.join(k.signal_names)}" for k in registry.KINDS.values()
    ) + "."


@app.command(cls=Command)
@user_errors
def inspect(
    run_or_checkpoint: RunArg = None,
    text: Annotated[Optional[str], typer.Option("--text", "-t", help="The text to read.", rich_help_panel=P_TEXT, show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the text from this UTF-8 file.", rich_help_panel=P_TEXT, show_default=False)] = None,
    max_chars: Annotated[int, typer.Option(help="Read at most this many characters.", rich_help_panel=P_TEXT)] = 2000,
    unknown: UnknownOpt = Unknown.error,
    seed: Annotated[
        Optional[int],
        typer.Option(help=f"Without --text or --file, {SAMPLED_CHARS} characters are sampled from the model with this seed.", rich_help_panel=P_TEXT),
    ] = None,
    label: Annotated[Optional[str], typer.Option(help="Read the text under this label (a model trained with --label-from; default: no label).", rich_help_panel=P_TEXT, show_default=False)] = None,
    layer: Annotated[Optional[int], typer.Option(help="Colour the text by a unit of this layer (default: the top one).", rich_help_panel=P_UNIT, show_default=False)] = None,
    unit: Annotated[Optional[int], typer.Option(help="...this unit (default: the one that varies most along the text).", rich_help_panel=P_UNIT, show_default=False)] = None,
    what: Annotated[Optional[str], typer.Option(help=_signals_help(), metavar="SIGNAL", rich_help_panel=P_UNIT, show_default=False)] = None,
    at: Annotated[
        Optional[str],
        typer.Option(help="Top predictions after this position (0-based), 'end', or 'all' for a row per position.", rich_help_panel=P_MORE, show_default="end"),
    ] = None,
    top_k: Annotated[int, typer.Option(help="How many predictions to list.", rich_help_panel=P_MORE)] = 5,
    find: Annotated[
        Optional[str],
        typer.Option(help="Rank the units that best tell characters inside matches of this regex (its first group, if any) from those outside.", rich_help_panel=P_MORE, show_default=False),
    ] = None,
    top: Annotated[int, typer.Option(help="How many units --find lists.", rich_help_panel=P_MORE)] = 10,
    atlas: Annotated[bool, typer.Option("--atlas", help="Score every unit of every layer and signal against built-in annotations (quotes, brackets, "
                                        "line position, words, code) over the run's validation text (or --text/--file): the atlas.", rich_help_panel=P_ATLAS)] = False,
    atlas_chars: Annotated[int, typer.Option(help="Characters the atlas and the search read (streamed: memory does not grow with it).", rich_help_panel=P_ATLAS)] = 300_000,
    annotate: Annotated[Optional[list[str]], typer.Option(help="Add an annotation to the atlas: NAME=REGEX (yes inside matches); repeatable.", metavar="NAME=REGEX",
                                                          rich_help_panel=P_ATLAS, show_default=False)] = None,
    select: Annotated[Optional[str], typer.Option(help="Search by example: the units of --what on throughout positions START:END (0-based, END exclusive) and off "
                                                  "around them, then every other place where they are on together.", metavar="START:END",
                                                  rich_help_panel=P_ATLAS, show_default=False)] = None,
    threshold: Annotated[Optional[float], typer.Option(help="--select: a unit is on at or above this value (default 0.3; 0.5 for a gate).", rich_help_panel=P_ATLAS,
                                                       show_default=False)] = None,
    margin: Annotated[int, typer.Option(help="--select: positions each side of the span where a chosen unit must be off.", rich_help_panel=P_ATLAS)] = 2,
    gradients: Annotated[bool, typer.Option("--gradients", help="Plot the gradient through time, |dL_T/dh_t| against T - t, per layer.", rich_help_panel=P_MORE)] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write every array, the text and the tokens to this JSON file.", rich_help_panel=P_OUT, show_default=False)] = None,
    html_path: Annotated[
        Optional[Path], typer.Option("--html", help="Also write all of it as one self-contained HTML page (works offline) to this file.", rich_help_panel=P_OUT, show_default=False)
    ] = None,
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
    threads: option_type("threads") = None,  # type: ignore[valid-type]
) -> None:
    """Look inside a model: a text coloured by one unit, the next-character predictions
    and gate saturation; --find the units that track a pattern; --gradients through time.

    Without --find or --gradients it shows the unit, the predictions and the saturation.
    """
    if text is not None and file is not None:
        raise ConfigError("give the text with --text or --file, not both.")
    for name, v in (("--max-chars", max_chars), ("--top-k", top_k), ("--top", top), ("--threads", 1 if threads is None else threads),
                    ("--atlas-chars", atlas_chars)):
        if v < 1:
            raise ConfigError(f"{name} must be at least 1, got {v}.")
    if margin < 0:
        raise ConfigError(f"--margin must be 0 or more, got {margin}.")
    import torch

    from ..inspect import view
    from ..inspect.export import to_json
    from ..inspect.palette import depth_of
    from ..inspect.stats import busiest_unit, find_units, match_mask, position, saturation, unit_values
    from ..inspect.trace import activations, gradient_flow
    from ..training import checkpoint

    if threads is not None:
        torch.set_num_threads(threads)  # the whole process is this one command
    path = checkpoint.find(run_or_checkpoint, checkpoints)
    ck = checkpoint.load(path)
    if ck.task_name != "tree":  # a tree run shows its nodes (below)
        checkpoint.require_task(ck, path, "lm", "charrnn inspect looks inside language models and tree nets; for this run use "
                                "charrnn predict (--trace for a classifier, --attention-map for an encoder-decoder).")  # fmt: skip
    model, tok = checkpoint.model_from(ck, path)
    from ..tasks.generate import label_index

    label_id = label_index(ck.labels(), label)
    if file is not None:
        text = _read(file)
    if atlas or select is not None:
        from . import atlas as atlas_cli

        return atlas_cli.run(ck, path, model, tok, text, atlas=atlas, chars=atlas_chars, annotate=annotate or [], find=find, select=select,
                             what=what, threshold=threshold, margin=margin, unknown=unknown.value, json_path=json_path, html_path=html_path,
                             max_chars=max_chars, top_k=top_k)  # fmt: skip
    if annotate or threshold is not None:
        raise ConfigError("--annotate and --threshold belong to --atlas and --select.")
    if model.cfg.task == "tree":  # a tree's nodes, not a text's positions
        unfit = [flag for flag, on in (("--find", find is not None), ("--at", at is not None), ("--seed", seed is not None),
                 ("--unknown skip", unknown != Unknown.error), ("--html", html_path is not None), ("--label", label is not None)) if on]  # fmt: skip
        return _inspect_tree(path, ck, model, text, what, layer, unit, top_k, gradients, json_path, unfit)
    if text is None:
        text = _sampled(model, tok, seed, label_id)
    if len(text) > max_chars:
        err.print(f"[dim]reading the first {max_chars:,} of {len(text):,} characters (--max-chars)[/]")
        text = text[:max_chars]

    acts = activations(model, tok, text, unknown=unknown.value, label=label_id)
    what_ = what if what is not None else "h"
    layer_ = acts.layers - 1 if layer is None else layer
    unit_values(acts, what_, layer_, 0 if unit is None else unit)  # names and ranges: fail before printing anything
    at_ = _position(at, len(acts.ids))
    if isinstance(at_, int):
        position(acts, at_)
    inside = match_mask(acts, find) if find is not None else None
    found = find_units(acts, inside, top=top) if inside is not None else []
    flow = gradient_flow(model, tok, text, unknown=unknown.value, label=label_id) if gradients or ((json_path or html_path) and len(acts.ids) > 1) else None

    m = model.cfg
    depth = depth_of(out.color_system)  # scales of colours this terminal has (256 in tmux, say)
    out.print(view.header(str(path), acts, f"{m.cell} {m.layers}x{m.hidden}, step {ck.step:,}"))
    overview = find is None and not gradients
    sections = []
    if overview or layer is not None or unit is not None or what is not None:
        note = "" if unit is not None else " (the unit that varies most here; choose one with --unit)"
        sections.append(view.unit_view(acts, what_, layer_, busiest_unit(acts, what_, layer_) if unit is None else unit, note, depth))
    if overview:
        sections.append(view.probability_view(acts, depth))
    if overview or at is not None:
        sections.append(view.along_table(acts, top_k, depth) if at_ == "all" else view.top_k_table(acts, len(acts.ids) - 1 if at_ is None else at_, top_k))
    sat = saturation(acts) if overview else {}
    if sat and model.kind.gates:
        sections.append(view.saturation_table(sat))
    elif sat:
        sections.append(view.saturation_table(sat, "< −0.9", "> 0.9", _no_gates_title(m.cell, sat)))
    if find is not None:
        sections.append(view.find_view(acts, find, found, inside, depth))
    if gradients and flow is not None:
        bar = max(8, min(30, (out.width - 6) // sum(v.shape[0] for v in flow.values()) - 10))
        sections.append(view.gradient_view(flow, bar))
    for s in sections:
        out.print()
        out.print(s)

    if json_path is not None:
        meta = {"checkpoint": str(path), "step": ck.step, "model_config": to_dict(ck.model_config)}
        doc = to_json(acts, meta, flow, found, find, inside)
        json_path.write_text(doc, encoding="utf-8")
        err.print(f"[dim]wrote {escape(str(json_path))} ({len(doc) / 1e6:.1f} MB)[/]")
    if html_path is not None:
        if unit is None and found:  # the page opens on the unit that best tracks the pattern
            shown = (found[0].what, found[0].layer, found[0].unit)
        else:
            shown = (what_, layer_, busiest_unit(acts, what_, layer_) if unit is None else unit)
        _write_html(html_path, acts, str(path), f"{m.cell} {m.layers}x{m.hidden}, step {ck.step:,}", shown, top_k, flow, found, find, inside)


def _no_gates_title(cell: str, sat: dict) -> str:
    names = ", ".join(sat)
    return f"no gates in {_a(cell)}; saturation of {names}, where tanh's gradient vanishes: fraction of timesteps per unit"


def _write_html(html_path: Path, acts, source: str, model: str, shown: tuple, top_k: int, flow, found, find, inside) -> None:  # type: ignore[no-untyped-def]
    from ..inspect import html as page
    from ..inspect.stats import saturation

    sat = saturation(acts)
    if registry.get(acts.cell).gates:
        meta = page.PageMeta(source, model, *shown, top_k=top_k)
    else:
        meta = page.PageMeta(source, model, *shown, top_k=top_k, saturation_title=_no_gates_title(acts.cell, sat), saturation_low="< −0.9")
    doc = page.render(acts, meta, sat, flow, found, find, inside)
    html_path.write_text(doc, encoding="utf-8")
    err.print(f"[dim]wrote {escape(str(html_path))} ({len(doc.encode('utf-8')) / 1e6:.1f} MB)[/]")


def _inspect_tree(path: Path, ck: Any, model, text: str | None, what: str | None, layer: int | None, unit: int | None,  # type: ignore[no-untyped-def]
                  top_k: int, gradients: bool, json_path: Path | None, unfit: list[str]) -> None:  # fmt: skip
    """inspect on a tree run: the node states of a tree the user types, drawn as the tree."""
    import numpy as np

    from ..data.treedata import TreeVocab
    from ..inspect import treeview, view
    from ..inspect.stats import saturation, unit_values
    from ..inspect.treetrace import by_depth, read_tree, tree_activations

    if unfit:
        raise ConfigError(f"{', '.join(unfit)} {'reads' if len(unfit) == 1 else 'read'} a text's positions; a tree run "
                          "shows its nodes (--what, --layer, --unit, --top-k, --gradients, --json).")  # fmt: skip
    if text is None:
        text = ck.task.probe_tree
        if not text:
            raise ConfigError("give a tree to read with --text, such as --text '[MAX 2 9 [MIN 4 7 ] 0 ]'.")
        err.print(f"[dim]no --text or --file: reading a validation tree of the run, {escape(text[:60])}[/]")
    vocab, classes = TreeVocab.from_state(ck.task.tokenizer), ck.labels()
    acts = tree_activations(model, vocab, classes, read_tree(text))
    what_ = what if what is not None else "h"
    layer_ = acts.layers - 1 if layer is None else layer
    unit_values(acts, what_, layer_, 0 if unit is None else unit)  # names and ranges: fail before printing anything
    m = model.cfg
    layers = "layer 0" if acts.layers == 1 else f"layers 0-{acts.layers - 1}"
    out.print(f"[bold]inspect[/] {escape(str(path))}: {m.cell} {m.layers}x{m.hidden}, step {ck.step:,}; {len(acts.tokens)} nodes, "
              f"height {int(acts.depth.max())}; {layers}, units 0-{acts.hidden - 1} (0-based)", highlight=False)  # fmt: skip
    sections = []
    if not gradients or what is not None or layer is not None or unit is not None:
        values = np.nan_to_num(acts.signals[what_][layer_])  # a forget gate has no value at the root
        pick = unit if unit is not None else int(np.argmax(values.std(axis=0)))  # stats.busiest_unit, NaN-safe
        note = "" if unit is not None else " (the unit that varies most over the nodes; choose one with --unit)"
        sections.append(treeview.state_view(acts, what_, layer_, pick, note))
    if not gradients:
        sections.append(treeview.answer_table(acts, top_k))
        sat = saturation(acts)
        if sat:
            low, high, names = ("< 0.1", "> 0.9", "gate") if model.kind.gates else ("< −0.9", "> 0.9", ", ".join(sat))
            sections.append(view.saturation_table(sat, low, high, f"{names} saturation: fraction of nodes per unit"))
    else:
        flow = by_depth(acts)
        bar = max(8, min(30, (out.width - 8) // max(1, sum(v.shape[0] for v in flow.values())) - 10))
        sections.append(treeview.depth_gradients(flow, bar))
    for s in sections:
        out.print()
        out.print(s)
    if json_path is not None:
        doc = treeview.tree_json(acts, {"checkpoint": str(path), "step": ck.step, "model_config": to_dict(ck.model_config)})
        json_path.write_text(doc, encoding="utf-8")
        err.print(f"[dim]wrote {escape(str(json_path))} ({len(doc) / 1e6:.1f} MB)[/]")


def _read(file: Path) -> str:
    data = file.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{file} is not valid UTF-8 at byte {e.start}; inspect reads UTF-8 text.") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _sampled(model, tok, seed: int | None, label: int | None = None) -> str:  # type: ignore[no-untyped-def]
    import torch

    from ..config import SampleConfig
    from ..tasks.generate import generate, new_seed

    seed = new_seed() if seed is None else seed
    cfg = SampleConfig(length=SAMPLED_CHARS, seed=seed)
    text = "".join(generate(model, tok, cfg, torch.Generator().manual_seed(seed), label=label))
    err.print(f"[dim]no --text or --file: reading {len(text)} characters sampled from the model (--seed {seed} to repeat)[/]")
    if not text:
        raise TokenizerError("the model's sample came out empty; give a text with --text or --file.")
    return text


def _a(cell: str) -> str:
    """'a vanilla RNN' for rnn, else 'a leaky model' (the kind's name)."""
    return "a vanilla RNN" if cell == "rnn" else f"a {cell} model"


def _position(at: str | None, n: int) -> int | str | None:
    """None for the default (the end), "all", or a 0-based position."""
    if at is None or at == "end":
        return None
    if at == "all":
        return at
    try:
        return int(at)
    except ValueError:
        raise ConfigError(f"--at takes a position (0 to {n - 1}), 'end' or 'all', not {at!r}.") from None
