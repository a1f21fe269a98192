"""`charrnn train`: options into configs, then a run planned, trained and shown.

Options group into panels (Task, Corpus, Model, Cell options, Optimisation,
Evaluation, Output, Hardware) so `--help` stays readable as kinds and tasks bring
their own. A kind's or task's own settings (the names in its options dataclass,
see models/registry.py and tasks/) are given as options here and travel in
`ModelConfig.options`; one that does not fit the chosen cell or task is a
one-line error.
"""

from __future__ import annotations

import enum
import signal
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..config import (
    DEFAULT_CORPUS,
    DEFAULT_SPM_VOCAB,
    DataConfig,
    Device,
    DocState,
    LabelFrom,
    ModelConfig,
    Precision,
    SpmType,
    TokenizerKind,
    TrainConfig,
    option_flag,
)
from ..config import (
    RESUMABLE as RESUMABLE_SETTINGS,
)
from ..errors import ConfigError, PeerLostError
from ..models import registry
from ..tasks import task_spec
from ..tasks.options import ATTENTIONS, POOLS, ClassifyOptions, Seq2SeqOptions
from . import kind_options as ko
from ..tasks.lm_options import Condition, LengthModel, LMOptions
from .common import (
    DEFAULT_ROOT,
    P_CORPUS,
    P_EVAL,
    P_HW,
    P_MODEL,
    P_OPT,
    P_OUT,
    TC,
    CellOpt,
    CheckpointsOpt,
    Command,
    DeviceOpt,
    HiddenOpt,
    LayersOpt,
    M,
    NameOpt,
    StepsOpt,
    TaskOpt,
    ThreadsOpt,
    TimeOpt,
    _choice,
    app,
    err,
    given_options,
    out,
    user_errors,
)

D = DataConfig()
KIND_OPTIONS = ko.OPTION_PARAMS
LM = LMOptions()
CO, SO = ClassifyOptions(), Seq2SeqOptions()
P_ENDS = "Conditioning (lm, seq2seq) and ends (lm)"
P_CLASSIFY, P_SEQ2SEQ = "Classification (--task classify)", "Encoder-decoder (--task seq2seq)"

# train's parameters that are a kind's or a task's own settings: given ones go into
# ModelConfig.options (the next cells and tasks add theirs here and to the signature)
OPTION_PARAMS: tuple[str, ...] = (*KIND_OPTIONS, "pool", "max_chars", "attention", "condition", "decoder_cell", "sampling_prob",
                                  "label_dropout", "label_embed", "length_model")  # fmt: skip

Pool = enum.Enum("Pool", {p: p for p in POOLS}, type=str)  # type: ignore[misc]
Attention = enum.Enum("Attention", {a: a for a in ATTENTIONS}, type=str)  # type: ignore[misc]


@app.command(cls=Command)
@user_errors
def train(
    ctx: typer.Context,
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(help=f"Text files, folders, or built-in corpora (see `charrnn corpora`). Default: {DEFAULT_CORPUS}.", show_default=False),
    ] = None,
    task: TaskOpt = M.task,
    glob: Annotated[str, typer.Option(help="Files to take from folders.", rich_help_panel=P_CORPUS)] = D.glob,
    encoding: Annotated[str, typer.Option(help="Text encoding of the files.", rich_help_panel=P_CORPUS)] = D.encoding,
    errors: Annotated[str, typer.Option(help="On undecodable bytes: strict (stop), replace or ignore.", rich_help_panel=P_CORPUS)] = D.errors,
    doc_sep: Annotated[
        Optional[str],
        typer.Option(help="Split into documents: line, blank (blank lines), file, or a separator line such as %.", rich_help_panel=P_CORPUS),
    ] = D.doc_sep,
    val_frac: Annotated[float, typer.Option(help="Fraction held out for validation.", rich_help_panel=P_CORPUS)] = D.val_frac,
    label_from: Annotated[
        Optional[LabelFrom],
        typer.Option(help="Labelled documents: the label is the file's name, its folder, a label<TAB> prefix, or a TSV's first column.", rich_help_panel=P_CORPUS),
    ] = None,
    tokenizer: Annotated[
        TokenizerKind, typer.Option(help="Characters, or sentencepiece subword tokens.", rich_help_panel=P_CORPUS)
    ] = TokenizerKind(D.tokenizer),
    vocab_size: Annotated[
        Optional[int],
        typer.Option(
            help=f"Sentencepiece vocabulary size (--tokenizer spm; {DEFAULT_SPM_VOCAB} when not given, lowered to fit a small corpus).",
            rich_help_panel=P_CORPUS,
        ),
    ] = D.vocab_size,
    spm_type: Annotated[SpmType, typer.Option(help="Sentencepiece model type (--tokenizer spm).", rich_help_panel=P_CORPUS)] = SpmType(
        D.spm_type
    ),
    condition: Annotated[
        Condition,
        typer.Option(
            help="Where a context enters (section 10.2.4): an extra input at every step, the initial state h(0), or both. "
            "--task lm: a document's label (--label-from); --task seq2seq: the encoder's summary of the source.",
            rich_help_panel=P_ENDS,
        ),
    ] = Condition(LM.condition),
    label_dropout: Annotated[float, typer.Option(help="Share of documents trained with no label, so the model also samples without one.", rich_help_panel=P_ENDS)] = LM.label_dropout,
    label_embed: Annotated[int, typer.Option(help="Width of the learned label embedding.", rich_help_panel=P_ENDS)] = LM.label_embed,
    length_model: Annotated[
        LengthModel, typer.Option(help="How a document ends: an end token (eos), an extra halt output, or a predicted length with the remaining length as an input.", rich_help_panel=P_ENDS)
    ] = LengthModel(LM.length_model),
    cell: CellOpt = M.cell,
    layers: LayersOpt = M.layers,
    hidden: HiddenOpt = M.hidden,
    embed: Annotated[int, typer.Option(help="Embedding size.", rich_help_panel=P_MODEL)] = M.embed,
    dropout: Annotated[float, typer.Option(help="Dropout between layers and before the output.", rich_help_panel=P_MODEL)] = M.dropout,
    tau_max: ko.TauMaxOpt = ko.LEAKY.tau_max,
    learn_tau: ko.LearnTauOpt = ko.LEAKY.learn_tau,
    delays: ko.DelaysOpt = None,
    density: ko.DensityOpt = ko.ESN.density,
    spectral_radius: ko.RadiusOpt = ko.ESN.spectral_radius,
    input_scaling: ko.InputScalingOpt = ko.ESN.input_scaling,
    leak: ko.LeakOpt = ko.ESN.leak,
    readout: ko.ReadoutOpt = ko.Readout(ko.ESN.readout),
    ridge: ko.RidgeOpt = ko.ESN.ridge,
    feedback: ko.FeedbackOpt = ko.Feedback(ko.JORDAN.feedback),
    pool: Annotated[Pool, typer.Option(help="What feeds the label's softmax: the final state, the mean of the states, or attention over them.", rich_help_panel=P_CLASSIFY)] = Pool(CO.pool),
    max_chars: Annotated[int, typer.Option(help="Characters read per document (a random window in training, the first ones in validation).", rich_help_panel=P_CLASSIFY)] = CO.max_chars,
    attention: Annotated[Attention, typer.Option(help="none: the fixed-length context alone; dot or additive attention over the encoder's states.", rich_help_panel=P_SEQ2SEQ)] = Attention(SO.attention),
    decoder_cell: Annotated[Optional[str], typer.Option(help="The decoder's cell kind (default: --cell).", metavar="KIND", callback=lambda v: v if v is None else _choice(registry.names)(v), rich_help_panel=P_SEQ2SEQ, show_default=False)] = SO.decoder_cell,
    sampling_prob: Annotated[float, typer.Option(help="Scheduled sampling: the chance, at each step, of feeding the decoder its own previous output instead of the true one.", rich_help_panel=P_SEQ2SEQ)] = SO.sampling_prob,
    seq_len: Annotated[int, typer.Option(help="Timesteps backpropagated through (truncated BPTT).", rich_help_panel=P_OPT)] = TC.seq_len,
    batch_size: Annotated[int, typer.Option(help="Streams per batch.", rich_help_panel=P_OPT)] = TC.batch_size,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).", rich_help_panel=P_OPT)] = TC.lr,
    min_lr: Annotated[float, typer.Option(help="Learning rate at the end of the cosine decay.", rich_help_panel=P_OPT)] = TC.min_lr,
    warmup: Annotated[int, typer.Option(help="Steps of linear warmup.", rich_help_panel=P_OPT)] = TC.warmup,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay on weight matrices.", rich_help_panel=P_OPT)] = TC.weight_decay,
    clip: Annotated[float, typer.Option(help="Clip the gradient norm to this.", rich_help_panel=P_OPT)] = TC.clip,
    steps: StepsOpt = TC.steps,
    epochs: Annotated[Optional[float], typer.Option(help="Stop after this many passes over the training split.", rich_help_panel=P_OPT)] = TC.epochs,
    time_: TimeOpt = TC.time,
    doc_state: Annotated[DocState, typer.Option(help="At a document's end: reset the state, or carry it on.", rich_help_panel=P_OPT)] = DocState(
        TC.doc_state
    ),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same run on a CPU).", rich_help_panel=P_OPT)] = TC.seed,
    eval_every: Annotated[int, typer.Option(help="Evaluate, sample and checkpoint every N steps.", rich_help_panel=P_EVAL)] = TC.eval_every,
    eval_tokens: Annotated[int, typer.Option(help="Validation tokens scored during training.", rich_help_panel=P_EVAL)] = TC.eval_tokens,
    final_eval_tokens: Annotated[int, typer.Option(help="Validation tokens scored at the end.", rich_help_panel=P_EVAL)] = TC.final_eval_tokens,
    sample_chars: Annotated[int, typer.Option(help="Characters of sample shown at each evaluation (0: none).", rich_help_panel=P_EVAL)] = TC.sample_chars,
    name: NameOpt = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: CHECKPOINTS/NAME).", rich_help_panel=P_OUT)] = None,
    checkpoints: CheckpointsOpt = DEFAULT_ROOT,
    save_every: Annotated[Optional[int], typer.Option(help="Also checkpoint every N steps.", rich_help_panel=P_OUT)] = TC.save_every,
    save_interval: Annotated[float, typer.Option(help="Also checkpoint when this many seconds have passed since the last checkpoint (0: never), so a killed run loses at most that much.", rich_help_panel=P_OUT)] = TC.save_interval,
    resume: Annotated[Optional[str], typer.Option(help="Continue a run (folder or checkpoint file).", rich_help_panel=P_OUT)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines instead of a progress bar.", rich_help_panel=P_OUT)] = False,
    tui: Annotated[bool, typer.Option("--tui", help="Watch training in the interactive terminal app.", rich_help_panel=P_OUT)] = False,
    device: DeviceOpt = Device(TC.device),
    precision: Annotated[
        Precision,
        typer.Option(
            help="auto: bf16 autocast on GPUs and on CPUs with native bf16, else fp32; or fp32, bf16, fp16 (CUDA). "
            "An LSTM trained in fp32 on a CPU defaults to --layers 1 --dropout 0 --lr 0.01.",
            rich_help_panel=P_HW,
        ),
    ] = Precision(TC.precision),
    threads: ThreadsOpt = TC.threads,
) -> None:
    """Train a recurrent network: a language model by default (--task lm), of any cell kind (--cell)."""
    params = dict(locals())
    given = given_options(ctx)
    spec = task_spec(task)
    unfit = sorted(given & set(spec.unused))
    if unfit:
        flags = ", ".join(option_flag(k) for k in unfit)
        raise ConfigError(f"{flags} {'does' if len(unfit) == 1 else 'do'} not fit --task {task}.")
    if "cell" not in given and spec.default_cell:
        cell = spec.default_cell
    data = DataConfig(
        paths=tuple(paths or [spec.default_data or DEFAULT_CORPUS]), glob=glob, encoding=encoding, errors=errors, doc_sep=doc_sep, val_frac=val_frac,
        tokenizer=tokenizer.value, vocab_size=vocab_size, spm_type=spm_type.value,
        label_from=label_from.value if label_from is not None else None,
    )  # fmt: skip
    options = ko.given_kind_options(params, given, OPTION_PARAMS)
    model = ModelConfig(cell=cell, layers=layers, hidden=hidden, embed=embed, dropout=dropout, task=task, options=options)
    tcfg = TrainConfig(
        seq_len=seq_len, batch_size=batch_size, lr=lr, min_lr=min_lr, warmup=warmup, weight_decay=weight_decay, clip=clip,
        steps=steps, epochs=epochs, time=time_, eval_every=eval_every, eval_tokens=eval_tokens,
        final_eval_tokens=final_eval_tokens, sample_chars=sample_chars, save_every=save_every, save_interval=save_interval, doc_state=doc_state.value,
        seed=seed, device=device.value, precision=precision.value, threads=threads,
    )  # fmt: skip
    run(data, model, tcfg, given, name=name, out_dir=out_dir, root=checkpoints, resume=resume, quiet=quiet, tui=tui)


# train's parameters a resumed run may change: the settings in config.RESUMABLE
# (`--time` is the parameter time_), where the corpus now lies, and how to show it
RESUMABLE = {"time_" if f == "time" else f for f in RESUMABLE_SETTINGS} | {"paths", "checkpoints", "quiet", "tui", "resume", "out_dir"}


def run(
    data: DataConfig,
    model: ModelConfig,
    tcfg: TrainConfig,
    given: set[str],
    name: str | None,
    out_dir: Path | None,
    root: Path,
    resume: str | None,
    quiet: bool,
    tui: bool = False,
) -> None:
    """`charrnn train` after parsing: plan the run, then train it in this process
    (or in the TUI), joined to the other processes when torchrun started us."""
    data.validate()
    model.validate()
    tcfg.validate()
    unused = sorted(set(task_spec(model.task).unused) & given) if resume is None else []
    if unused:
        flags = ", ".join(option_flag(u) for u in unused)
        raise ConfigError(f"{flags} {'does' if len(unused) == 1 else 'do'} not fit --task {model.task}.")
    from ..training import distributed, plan

    if tui and distributed.launched():
        raise ConfigError("--tui runs in a single process; drop it under torchrun.")
    d = distributed.init(tcfg.device)  # a no-op unless started by torchrun
    clean = False
    try:
        if resume is not None:
            fixed = sorted(given - RESUMABLE - {"name"})
            if fixed:
                opts = ", ".join("--" + f.rstrip("_").replace("_", "-") for f in fixed)
                raise ConfigError(f"{opts} cannot change when resuming; a resumed run keeps its own settings.")
            changes = {f: getattr(tcfg, f) for f in RESUMABLE_SETTINGS if (f + "_" if f == "time" else f) in given}
            p = plan.resume_run(resume, root, changes, data.paths if "paths" in given else None, out_dir)
        else:
            p = plan.new_run(data, model, tcfg, root, name, out_dir, d, given=given)
            _say(window_note(data.paths, p.train.seq_len) if d.main else None)
        opened = plan.open_data(p, d)
        if tui:
            _train_in_app(p, opened)
        else:
            _train_here(p, opened, quiet, d)
        clean = True
    except RuntimeError as e:
        if not (d.active and distributed.is_peer_error(e)):
            raise
        raise PeerLostError(
            "another process of this run stopped, so this one stops too; the launcher's report says which and why. "
            "The last checkpoint is intact: continue with --resume."
        ) from None
    finally:
        distributed.shutdown(clean)


def window_note(paths: tuple[str, ...], seq_len: int) -> str | None:
    from ..data.window import note  # (numpy: not for --help)

    return note(paths, seq_len)


def _say(line: str | None) -> None:
    if line:
        from rich.markup import escape

        err.print(f"[yellow]{escape(line)}[/]")


def _train_in_app(p: Any, opened: Any) -> None:
    from ..training import plan
    from ..tui.app import train_in_app

    # The app owns the training thread, its sinks and its stop event.
    result, quit_by_user = train_in_app(lambda sinks, stop: plan.trainer(p, sinks, stop, opened), root=p.root)
    if result is not None:
        how = "stopped" if result.stopped_by == "interrupt" else "done"
        out.print(f"{how} at step {result.step:,}; checkpoints in {result.run_dir} (continue: charrnn train --resume {result.run_dir})")
    if result is not None and result.stopped_by == "interrupt" and not quit_by_user:
        raise typer.Exit(130)  # q (or x, then q) is a deliberate stop after a clean save: 0; a signal stays 130


def _train_here(p: Any, opened: Any, quiet: bool, d: Any) -> None:
    from ..training import plan
    from .progress import PlainSink, RichSink

    console = err if quiet else out
    sink = PlainSink(console) if quiet else RichSink(console)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set():
            # Under torchrun a Ctrl-C reaches each worker twice (from the terminal and
            # forwarded by the launcher): there, only the launcher's own timeout kills.
            if not d.active:
                raise KeyboardInterrupt
            return
        stop.set()
        if d.main:
            console.print("[yellow]stopping: saving a checkpoint (Ctrl-C again to quit at once)[/]")

    trainer = plan.trainer(p, [sink], stop, opened, d)
    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        result = trainer.run()
    finally:
        if not d.active:  # under torchrun the launcher's SIGTERM may still come: keep catching it
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
        if isinstance(sink, RichSink):
            sink.close()
    if result.stopped_by == "interrupt":
        raise typer.Exit(130)  # stopped by the user: the checkpoint is saved, but the run did not finish
