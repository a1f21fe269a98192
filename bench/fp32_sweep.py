"""fp32 recipes against the plain loop at a wall-clock budget (issue 17).

One recipe a process: `key=value` overrides of charrnn's defaults, trained for
`--budget` seconds by a loop that mirrors charrnn's Trainer step for step
(StreamBatcher, lr_at's warmup + cosine by elapsed time, clipping, the one
non-finite check a step, the carried state detached, evaluation of a 32k-token
slice, a 200-character sample and a checkpoint write every `eval_every` steps, all
inside the budget), then scored on the validation split both ways bench/quality.py
scores (carried state; independent 64-character windows). `plain` runs
bench/quality.py's reference loop instead. What this adds to charrnn's loop, each
off by default:

  ema=D[,D...]  exponential moving averages of the weights, w_ema <- D w_ema + (1 - D) w,
                updated after every optimizer step from ema_start (a fraction of the budget;
                the average starts from the weights there); each is scored beside the weights
  swa=F         a uniform average of the weights every swa_every steps over the last F
                of the budget (stochastic weight averaging), scored instead of the weights
  schedule=cosine|wsd|const  wsd: lr held, then linear to min_lr over the last decay_frac
  opt=adamw|adam|nadam|radam  with beta1, beta2, eps
  reset_p=P     zero each stream's carried state with chance P at every step

Run each under the exclusive CPU lock, one after another:

    /work/tools/cpulock -x python bench/fp32_sweep.py --budget 90 --log sweep.jsonl NAME key=value ...
    /work/tools/cpulock -x python bench/fp32_sweep.py --budget 90 --log sweep.jsonl plain
    python bench/fp32_sweep.py --speed            # fp32 chars/s by batch x sequence x width
    python bench/fp32_sweep.py --table sweep.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHAKESPEARE, header, machine, median  # noqa: E402
from quality import carried_loss, plain_reference, window_loss  # noqa: E402

from charrnn.config import DataConfig, ModelConfig, SampleConfig, TrainConfig  # noqa: E402
from charrnn.data.batches import StreamBatcher  # noqa: E402
from charrnn.data.corpus import prepare  # noqa: E402
from charrnn.models.lm import CharRNN  # noqa: E402
from charrnn.tasks.generate import sample_text  # noqa: E402
from charrnn.tasks.lm import evaluate  # noqa: E402
from charrnn.training import checkpoint  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "charrnn-fp32-sweep"


M, T = ModelConfig(), TrainConfig()


@dataclass(frozen=True)
class Recipe:
    # charrnn's defaults (config.py), fp32
    cell: str = M.cell
    layers: int = M.layers
    hidden: int = M.hidden
    embed: int = M.embed
    dropout: float = M.dropout
    batch: int = T.batch_size
    seq: int = T.seq_len
    lr: float = T.lr
    min_lr: float = T.min_lr
    warmup: int = T.warmup
    wd: float = T.weight_decay
    clip: float = T.clip
    opt: str = "adamw"
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    schedule: str = "cosine"
    decay_frac: float = 0.2  # wsd only
    ema: str = ""  # decays, comma-separated: each average is kept and scored
    ema_start: float = 0.0
    ema_every: int = 1
    swa: float = 0.0
    swa_every: int = 10
    reset_p: float = 0.0  # each stream's carried state zeroed with this chance at every step
    eval_every: int = 250
    seed: int = 1337


def parse_recipe(pairs: list[str]) -> Recipe:
    fields = {f.name: f for f in dataclasses.fields(Recipe)}
    kw = {}
    for pair in pairs:
        k, _, v = pair.partition("=")
        if k not in fields:
            raise SystemExit(f"unknown recipe key {k!r}; one of {', '.join(fields)}")
        kw[k] = type(getattr(Recipe(), k))(v)
    return Recipe(**kw)


def lr_at(r: Recipe, step: int, p: float) -> float:
    """charrnn's lr_at (warmup, then cosine by progress), plus the variants tried here."""
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    p = min(max(p, 0.0), 1.0)
    if r.schedule == "cosine":
        return r.min_lr + 0.5 * (r.lr - r.min_lr) * (1.0 + math.cos(math.pi * p))
    if r.schedule == "wsd":  # warmup, stable, decay (linear) over the last decay_frac
        q = max(0.0, (p - (1.0 - r.decay_frac)) / r.decay_frac)
        return r.lr + (r.min_lr - r.lr) * q
    if r.schedule == "const":
        return r.lr
    raise SystemExit(f"unknown schedule {r.schedule!r}")


def make_optimizer(model: CharRNN, r: Recipe) -> torch.optim.Optimizer:
    # as Trainer._optimizer: weight decay on the matrices only, not the biases or the embedding
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed")]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith("embed"))]
    groups = [{"params": decay, "weight_decay": r.wd}, {"params": rest, "weight_decay": 0.0}]
    cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "nadam": torch.optim.NAdam, "radam": torch.optim.RAdam}[r.opt]
    kw = {"decoupled_weight_decay": True} if r.opt in ("nadam", "radam") else {}
    return cls(groups, lr=r.lr, betas=(r.beta1, r.beta2), eps=r.eps, **kw)


class WeightAverage:
    """An exponential (decay > 0) or uniform (decay = 0) running average of the weights."""

    def __init__(self, model: CharRNN, decay: float):
        self.decay, self.n = decay, 0
        self.params = [p for p in model.parameters()]
        self.avg = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        self.n += 1
        weight = 1.0 / self.n if self.decay == 0 else (1.0 - self.decay)
        if self.n == 1:
            weight = 1.0  # the average starts from the weights of its first update
        torch._foreach_lerp_(self.avg, [p.detach() for p in self.params], weight)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the live weights and the average (call twice to undo)."""
        for p, a in zip(self.params, self.avg):
            tmp = p.detach().clone()
            p.copy_(a)
            a.copy_(tmp)


def score(model: CharRNN, val: torch.Tensor) -> tuple[float, float]:
    model.eval()

    def step(x, state):
        logits, _, state = model(x, state)
        return logits, state

    out = carried_loss(step, val), window_loss(step, val)
    model.train()
    return out


def busy_s() -> tuple[float, float]:
    """(CPU seconds the whole machine has spent busy, of which this process) so far."""
    with open("/proc/stat") as f:
        j = [int(v) for v in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    t = os.times()
    return (sum(j) - j[3] - j[4]) / hz, t.user + t.system  # minus idle and iowait


def train(r: Recipe, budget: float | None, corpus, val: torch.Tensor, run_dir: Path, steps: int | None = None) -> dict:
    """Train for `budget` seconds (the schedule by elapsed time, as charrnn's --time)
    or for `steps` steps (the schedule by step: the result no longer depends on the
    machine's speed, which wanders)."""
    torch.manual_seed(r.seed)
    tok = corpus.tokenizer
    mcfg = ModelConfig(cell=r.cell, layers=r.layers, hidden=r.hidden, embed=r.embed, dropout=r.dropout, vocab_size=tok.vocab_size)
    model = CharRNN(mcfg)
    opt = make_optimizer(model, r)
    batcher = StreamBatcher(corpus.train, r.batch, r.seq, seed=r.seed)
    char_lengths = torch.from_numpy(tok.char_lengths()).to(torch.float64)
    tcfg = TrainConfig(batch_size=r.batch, seq_len=r.seq)
    emas = {f"ema{d}": WeightAverage(model, float(d)) for d in r.ema.split(",") if d}
    swa = WeightAverage(model, 0.0) if r.swa > 0 else None
    state = model.init_state(r.batch)
    step = epoch = batch_i = 0
    evals = []
    model.train()
    busy0, mine0 = busy_s()
    t0 = time.monotonic()
    while (step < steps) if steps else ((elapsed := time.monotonic() - t0) < budget):
        p = step / steps if steps else elapsed / budget
        x, y = batcher.batch(epoch, batch_i)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        lr = lr_at(r, step, p)
        for g in opt.param_groups:
            g["lr"] = lr
        _, loss, new_state = model(x, state, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), r.clip)
        if bool(torch.isfinite(loss.detach()) & torch.isfinite(gnorm)):
            opt.step()
            state = tuple(s.detach() for s in new_state)
            if r.reset_p > 0:  # some streams start cold, as windows scored from a zero state do
                keep = (torch.rand(r.batch) >= r.reset_p).to(state[0].dtype).view(1, -1, 1)
                state = tuple(s * keep for s in state)
            if p >= r.ema_start and step % r.ema_every == 0:
                for ema in emas.values():
                    ema.update()
            if swa is not None and p >= 1.0 - r.swa and step % r.swa_every == 0:
                swa.update()
        else:
            state = model.init_state(r.batch)
        step += 1
        batch_i += 1
        if batch_i >= batcher.steps_per_epoch:
            epoch, batch_i = epoch + 1, 0
            state = model.init_state(r.batch)
        if r.eval_every and step % r.eval_every == 0:  # what charrnn does at an evaluation, inside the budget
            loss_v, _, _, _ = evaluate(model, corpus.val, char_lengths, tcfg.eval_tokens, r.batch, r.seq, None, torch.device("cpu"))
            evals.append((round(time.monotonic() - t0, 1), step, round(loss_v, 4)))
            gen = torch.Generator().manual_seed(r.seed + step)
            sample_text(model, tok, SampleConfig(temperature=0.8, length=200), gen)
            model.train()
            payload = {"model": {k: v.detach().clone() for k, v in model.state_dict().items()}, "optimizer": opt.state_dict(), "step": step}
            checkpoint.save(run_dir / "last.pt", payload)
    wall = time.monotonic() - t0
    busy1, mine1 = busy_s()
    raw_c, raw_w = score(model, val)
    out = {"steps": step, "epochs": round(epoch + batch_i / batcher.steps_per_epoch, 2), "wall_s": round(wall, 1),
           "chars_per_s": round(step * r.batch * r.seq / wall), "others_cpu_s": round(busy1 - busy0 - (mine1 - mine0), 1),
           "raw_carried": raw_c, "raw_windows": raw_w, "curve": evals}  # fmt: skip
    for name, avg in [*emas.items(), ("swa", swa)]:
        if avg is not None and avg.n:
            avg.swap()
            c, w = score(model, val)
            avg.swap()
            out[f"{name}_carried"], out[f"{name}_windows"], out[f"{name}_updates"] = c, w, avg.n
    best = min(["raw", *emas, "swa"], key=lambda k: out.get(f"{k}_carried", math.inf))
    out["carried"], out["windows"], out["scored"] = out[f"{best}_carried"], out[f"{best}_windows"], best
    return out


def speed(corpus, shapes: list[tuple[int, int, int, int]], steps: int, repeats: int = 3) -> None:
    """fp32 training chars/s by (layers, hidden, batch, seq): the model's step alone
    (forward, backward, clipping, AdamW), the shapes taken in turn `repeats` times so
    that the machine's wandering speed falls on all of them alike; medians."""
    V = corpus.tokenizer.vocab_size
    ids = torch.from_numpy(corpus.train[:200_000].astype("int64"))
    runs = []
    for L, H, B, T in shapes:
        torch.manual_seed(0)
        model = CharRNN(ModelConfig(layers=L, hidden=H, vocab_size=V))
        runs.append((model, make_optimizer(model, Recipe()), ids[: (len(ids) // B) * B].view(B, -1), [model.init_state(B)], []))
    for rep in range(repeats + 1):
        for (L, H, B, T), (model, opt, d, state, rates) in zip(shapes, runs):
            t0 = time.perf_counter()
            for i in range(steps if rep else 3):  # rep 0 warms up
                j = (i * T) % (d.shape[1] - T - 1)
                _, loss, s = model(d[:, j : j + T], state[0], d[:, j + 1 : j + T + 1])
                state[0] = tuple(v.detach() for v in s)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
            if rep:
                rates.append(steps / (time.perf_counter() - t0))
    base = None
    print("layers hidden batch  seq  params   steps/s   chars/s  chars/s vs first   (runs)")
    for (L, H, B, T), (model, _, _, _, rates) in zip(shapes, runs):
        r = median(rates)
        base = base or r * B * T
        runs_s = " ".join(f"{v * B * T:,.0f}" for v in rates)
        print(f"{L:>6} {H:>6} {B:>5} {T:>4} {model.num_params():>7,} {r:9.1f} {r * B * T:9,.0f}  {r * B * T / base:5.2f}   ({runs_s})", flush=True)


def table(log: Path) -> None:
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    print(f"{'name':<28} {'budget':>6} {'steps':>6} {'chars/s':>8} {'carried':>8} {'windows':>8}  {'raw c/w':>15}  scored")
    for x in rows:
        raw = f"{x.get('raw_carried', x['carried']):.4f}/{x.get('raw_windows', x['windows']):.4f}"
        avgs = " ".join(f"{k[:-8]} {v:.4f}/{x[k[:-8] + '_windows']:.4f}" for k, v in x.items() if k.endswith("_carried") and k[:3] in ("ema", "swa"))
        print(f"{x['name']:<28} {x['budget']:>6.0f} {x['steps']:>6,} {x.get('chars_per_s', 0):>8,} "
              f"{x['carried']:8.4f} {x['windows']:8.4f}  {raw:>15}  {x.get('scored', '')}  {avgs}  others {x.get('others_cpu_s', '')}")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", help="a label for the recipe, or `plain` for the reference loop")
    p.add_argument("overrides", nargs="*", help="key=value changes to charrnn's defaults (see Recipe)")
    p.add_argument("--corpus", type=Path, default=SHAKESPEARE)
    p.add_argument("--budget", type=float, default=90.0, help="seconds of training")
    p.add_argument("--steps", type=int, help="train for this many steps instead (the schedule by step, no in-run evaluation)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--log", type=Path, help="append the result as one JSON line")
    p.add_argument("--speed", action="store_true", help="chars/s by shape instead of a run")
    p.add_argument("--shapes", default="2x256x32x32,2x256x32x50,2x256x32x64,2x256x16x32,2x256x16x64,2x256x8x64,2x256x64x32,"
                   "2x192x32x32,2x192x16x32,2x192x16x64,2x128x32x32,2x128x16x32,2x128x16x64,1x256x16x64,1x384x16x64,1x512x16x64,3x128x16x64,3x192x16x64",
                   help="LAYERSxHIDDENxBATCHxSEQ,...")
    p.add_argument("--table", type=Path, help="print a logged sweep as a table")
    args = p.parse_args()
    if args.table:
        return table(args.table)
    torch.set_num_threads(args.threads)
    header("fp32 recipes at a wall-clock budget (issue 17)")
    text = args.corpus.read_text(encoding="utf-8")
    corpus = prepare(DataConfig(paths=(str(args.corpus),)), CACHE)
    if args.speed:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
        return speed(corpus, shapes, 20)
    split = round(len(text) * 0.9)
    val = torch.tensor(corpus.tokenizer.encode(text[split:]))
    if args.name == "plain":
        t0 = time.monotonic()
        c, w, steps = plain_reference(text, args.budget)
        res = {"steps": steps, "wall_s": round(time.monotonic() - t0, 1), "chars_per_s": round(steps * 32 * 50 / args.budget), "carried": c, "windows": w}
        recipe = {}
    else:
        r = parse_recipe(args.overrides)
        if args.steps:
            r = dataclasses.replace(r, eval_every=0)
        with tempfile.TemporaryDirectory() as tmp:
            res = train(r, None if args.steps else args.budget, corpus, val, Path(tmp), args.steps)
        recipe = {k: v for k, v in dataclasses.asdict(r).items() if v != getattr(Recipe(), k)}
    res = {"name": args.name, "budget": 0 if args.steps else args.budget, "recipe": recipe, **res, "machine": machine(), "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(json.dumps(res))
    if args.log:
        with open(args.log, "a") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
