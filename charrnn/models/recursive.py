"""Recursive networks (section 10.6): one composition function applied at every node
of a tree, bottom-up, so that a leaf is as many steps from the root as the tree is
high (about log n for a balanced tree) rather than n as in a chain.

Three cells, registered in registry.py as kinds of structure TREE:

    recursive   the chapter's recursive unit, over a binarised tree (data/trees.binarize):
                    leaf    h = tanh(d + V x)                       x = E[token]
                    inner   h = tanh(b + W [h_left; h_right])
    treelstm    the Child-Sum Tree-LSTM (Tai, Socher & Manning 2015): any number of
                children, one forget gate per child, x the node's own token (an operator):
                    h~  = sum_k h_k
                    i   = sigmoid(W_i x + U_i h~ + b_i)      o = sigmoid(W_o x + U_o h~ + b_o)
                    u   = tanh(W_u x + U_u h~ + b_u)
                    f_k = sigmoid(W_f x + U_f h_k + b_f)     for each child k
                    c   = i * u + sum_k f_k * c_k,   h = o * tanh(c)
                a leaf is a node without children (h~ = 0, no c_k).
    bintreelstm the binary (N-ary, N = 2) Tree-LSTM of the same paper, over trees whose
                arguments are folded under their operator and closed by a node without
                a token (data/trees.fold_arguments: [OP a b c] -> (JOIN (OP (OP a b) c))),
                x the operator at every fold, 0 at the close:
                    g   = W_g x + U_g^L h_L + U_g^R h_R + b_g      for g in i, o, u
                    f_L = sigmoid(W_f x + U_fL^L h_L + U_fL^R h_R + b_f)   (f_R alike)
                    c   = i * u + f_L * c_L + f_R * c_R,   h = o * tanh(c)
                (i, o sigmoid, u tanh); a leaf as in the Child-Sum cell. The children
                keep their order and each gate sees both, so a fold step can compute
                OP(partial result, next argument), which a sum of children cannot,
                and the close turns the running state into the value (MED's differ):
                on ListOps the Child-Sum cell is at 63% after 2,000 steps, this one at 86%
                without the close, 93% with it after 1,500 and 98% after 4,000 (3 seeds;
                bench/tree_cells.py, RESULTS.md).

Stacked layers read, at each node, the state of the layer below at the same node
as their x (the recursive unit then adds V x at inner nodes too; at layer 0 an
inner node of a binarised tree has no token, x = 0, and the book's equation is
exact). Dropout falls between layers and before the head, as in CharRNN.

Batches are evaluated level by level (data/treebatch.py): every node of one
height, across the batch, in one matrix product, the input projections of all
nodes in one product before the loop. The loop runs over the trees' height,
never over nodes in Python. TreeNet is embedding -> cell -> linear head, read at
the roots for training and at every node for `charrnn predict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ModelConfig
from ..data.treebatch import TreeBatch
from . import registry
from .base import Model

NodeState = tuple[Tensor, ...]  # each (n, H): h first (and c for a Tree-LSTM)


@dataclass(frozen=True)
class TreeLevels:
    """A TreeBatch as tensors on a device (the layout is treebatch.py's)."""

    tokens: Tensor  # (N,) token ids, -1 for a binarised tree's JOIN nodes
    bounds: tuple[tuple[int, int], ...]  # (lo, hi) of each level's nodes
    children: tuple[Tensor, ...]  # levels 1..: (n_k, A_k) child node indices, padded with 0
    mask: tuple[Tensor, ...]  # levels 1..: (n_k, A_k) True where a child is real
    roots: Tensor  # (B,) each tree's root

    @classmethod
    def of(cls, batch: TreeBatch, device: torch.device | str = "cpu") -> "TreeLevels":
        def put(a: np.ndarray) -> Tensor:
            return torch.from_numpy(a).to(device, non_blocking=True)

        s = batch.level_starts.tolist()
        return cls(put(batch.tokens), tuple(zip(s[:-1], s[1:])), tuple(map(put, batch.children)), tuple(map(put, batch.mask)),
                   put(batch.roots))  # fmt: skip


@dataclass(frozen=True)
class NodeTrace:
    """Every node's signals, in the batch's node order: signals[name] is (L, N, H).
    `steps[name][layer]` holds the graph's own per-level tensors (for autograd.grad);
    `levels` their (lo, hi). A signal given per child (a forget gate) sits on the child,
    and is NaN where a node has no parent."""

    out: Tensor  # (N, H) the top layer's h
    signals: dict[str, Tensor]
    steps: dict[str, list[list[Tensor]]]


class TreeCore(nn.Module):
    """The level loop every tree cell shares. A cell defines, for one layer:

        layer_params(l)               its parameters, a tuple
        project(x, p)                 x (n, I) -> (n, G): the input's share, one matmul for many nodes
        compose(xp, kids, mask, p)    the nodes of one level from their children's states
                                      (kids None at the leaves) -> (state, {signal: tensor})
    """

    form: ClassVar[str] = "tree"  # how it reads a tree: data/treedata.FORMS (as written, "joined", "folded")

    @classmethod
    def form_for(cls, cfg: ModelConfig) -> str:
        """How a model of this config reads a tree (a kind's options may change it)."""
        return cls.form

    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__()
        self.kind = registry.get(cfg.cell)
        self.num_layers, self.hidden_size, self.input_size = cfg.layers, cfg.hidden, input_size
        self.dropout = cfg.dropout if cfg.layers > 1 else 0.0

    @classmethod
    def describe(cls, weights: dict[str, Tensor], cfg: ModelConfig) -> dict[str, Any]:
        """Facts about a checkpoint's weights for `charrnn info` (as `core.Recurrent.describe`): none."""
        return {}

    def layer_params(self, l: int) -> tuple[Any, ...]:
        raise NotImplementedError

    def project(self, x: Tensor, p: tuple[Any, ...]) -> Tensor:
        raise NotImplementedError

    def compose(self, xp: Tensor, kids: NodeState | None, mask: Tensor | None, p: tuple[Any, ...]) -> tuple[NodeState, dict[str, Tensor]]:
        raise NotImplementedError

    def _init(self, params: list[Tensor]) -> None:
        k = 1.0 / math.sqrt(self.hidden_size)  # as nn.LSTM initialises
        for w in params:
            nn.init.uniform_(w, -k, k)

    def _between(self, x: Tensor, l: int) -> Tensor:
        if self.training and self.dropout > 0 and l < self.num_layers - 1:
            return F.dropout(x, self.dropout, True)
        return x

    def forward(self, x: Tensor, lv: TreeLevels, keep: bool = False) -> NodeTrace:
        """x (N, I) every node's input (zeros where it has no token) -> every node's state.
        With `keep`, every signal of every layer (slower: for tracing, not training)."""
        L = self.num_layers
        states: list[NodeState | None] = [None] * L  # per layer: the levels done so far, concatenated
        names = self.kind.signal_names if keep else ()
        rec: dict[str, list[list[Tensor]]] = {n: [[] for _ in range(L)] for n in names}
        per_child: dict[str, list[list[tuple[Tensor, Tensor]]]] = {}
        xp0 = self.project(x, self.layer_params(0))  # (N, G): every node's input share, one product
        for k, (lo, hi) in enumerate(lv.bounds):
            kids_idx, m = (lv.children[k - 1], lv.mask[k - 1]) if k else (None, None)
            below: Tensor | None = None  # the layer below's h at these nodes
            for l in range(L):
                p = self.layer_params(l)
                xp = xp0[lo:hi] if l == 0 else self.project(self._between(below, l - 1), p)  # type: ignore[arg-type]  # (n, G)
                kids = None
                if kids_idx is not None:
                    kids = tuple(s[kids_idx] for s in states[l])  # type: ignore[union-attr]  # (n, A, H) each
                new, sig = self.compose(xp, kids, m, p)
                prev = states[l]
                states[l] = new if prev is None else tuple(torch.cat([a, b]) for a, b in zip(prev, new))
                below = new[0]
                for n in names:
                    v = sig.get(n)
                    if v is not None and v.dim() == 3:  # one per child: it belongs to the child
                        per_child.setdefault(n, [[] for _ in range(L)])[l].append((kids_idx[m], v[m]))  # type: ignore[index]
                    elif v is not None:
                        rec[n][l].append(v)
        top = states[-1][0]  # type: ignore[index]  # (N, H)
        signals: dict[str, Tensor] = {}
        for n in names:
            if n in per_child:
                full = top.new_full((L, *top.shape), float("nan"))
                for l, parts in enumerate(per_child[n]):
                    for idx, v in parts:
                        full[l, idx] = v.to(full.dtype)
                signals[n] = full
            else:
                signals[n] = torch.stack([torch.cat(levels) for levels in rec[n]])  # (L, N, H)
        return NodeTrace(top, signals, rec)


class RecursiveUnit(TreeCore):
    """The chapter's recursive unit over a binarised tree (module docstring)."""

    form = "joined"

    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__(cfg, input_size)
        H = cfg.hidden
        self.V = nn.ParameterList(nn.Parameter(torch.empty(H, input_size if l == 0 else H)) for l in range(cfg.layers))
        self.d = nn.ParameterList(nn.Parameter(torch.empty(H)) for _ in range(cfg.layers))
        self.W = nn.ParameterList(nn.Parameter(torch.empty(H, 2 * H)) for _ in range(cfg.layers))
        self.b = nn.ParameterList(nn.Parameter(torch.empty(H)) for _ in range(cfg.layers))
        self._init(list(self.parameters()))

    def layer_params(self, l: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.V[l], self.d[l], self.W[l], self.b[l]

    def project(self, x: Tensor, p: tuple[Tensor, ...]) -> Tensor:
        return x @ p[0].t()  # (n, H)  V x

    def compose(self, xp, kids, mask, p):  # type: ignore[no-untyped-def]
        _, d, W, b = p
        if kids is None:
            a = xp + d  # (n, H)  a leaf: d + V x
        else:
            (h_kids,) = kids  # (n, 2, H): left and right
            if h_kids.shape[1] != 2:
                raise ValueError("the recursive unit reads binarised trees (two children a node)")
            a = torch.addmm(xp + b, h_kids.reshape(len(h_kids), -1), W.t())  # (n, H)  b + W [h_left; h_right] (+ V x)
        h = torch.tanh(a)
        return (h,), {"h": h, "a": a}


class ChildSumTreeLSTM(TreeCore):
    """The Child-Sum Tree-LSTM (module docstring). W's rows are i, o, u, f."""

    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__(cfg, input_size)
        H = cfg.hidden
        self.W = nn.ParameterList(nn.Parameter(torch.empty(4 * H, input_size if l == 0 else H)) for l in range(cfg.layers))
        self.b = nn.ParameterList(nn.Parameter(torch.empty(4 * H)) for _ in range(cfg.layers))
        self.U_iou = nn.ParameterList(nn.Parameter(torch.empty(3 * H, H)) for _ in range(cfg.layers))
        self.U_f = nn.ParameterList(nn.Parameter(torch.empty(H, H)) for _ in range(cfg.layers))
        self._init(list(self.parameters()))

    def layer_params(self, l: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.W[l], self.b[l], self.U_iou[l], self.U_f[l]

    def project(self, x: Tensor, p: tuple[Tensor, ...]) -> Tensor:
        return F.linear(x, p[0], p[1])  # (n, 4H)  W x + b

    def compose(self, xp, kids, mask, p):  # type: ignore[no-untyped-def]
        _, _, U_iou, U_f = p
        H = self.hidden_size
        iou, f, fc = xp[:, : 3 * H], None, None
        if kids is not None:
            real = mask.unsqueeze(-1).to(xp.dtype)  # (n, A, 1)
            h_kids, c_kids = kids[0] * real, kids[1] * real  # (n, A, H): padding zeroed
            iou = iou + h_kids.sum(1) @ U_iou.t()  # (n, 3H)  ... + U h~
            f = torch.sigmoid(xp[:, None, 3 * H :] + h_kids @ U_f.t())  # (n, A, H)  one forget gate per child
            fc = (f * c_kids).sum(1)  # (n, H)
        return _node(iou, fc, f, H)


def _node(iou: Tensor, fc: Tensor | None, f: Tensor | None, H: int) -> tuple[tuple[Tensor, Tensor], dict[str, Tensor]]:
    """A Tree-LSTM node from its gates' pre-activations iou (n, 3H) and the children's
    forgotten-into cell f * c summed (n, H; None at a leaf): c = i * u + sum f * c_k, h = o * tanh(c)."""
    i, o, u = torch.sigmoid(iou[:, :H]), torch.sigmoid(iou[:, H : 2 * H]), torch.tanh(iou[:, 2 * H :])
    c = i * u if fc is None else i * u + fc
    h = o * torch.tanh(c)
    sig = {"h": h, "c": c, "input": i, "candidate": u, "output": o}
    if f is not None:
        sig["forget"] = f
    return (h, c), sig


class BinaryTreeLSTM(TreeCore):
    """The binary Tree-LSTM over folded trees (module docstring). W's rows are i, o, u, f
    (W_f shared by both forget gates, as in Tai et al.); U's rows i, o, u, f_L, f_R, its
    columns [h_L; h_R]."""

    form = "folded"

    @classmethod
    def form_for(cls, cfg: ModelConfig) -> str:
        return "folded-open" if cfg.cell_options().open_folds else "folded"

    def __init__(self, cfg: ModelConfig, input_size: int):
        super().__init__(cfg, input_size)
        H = cfg.hidden
        self.W = nn.ParameterList(nn.Parameter(torch.empty(4 * H, input_size if l == 0 else H)) for l in range(cfg.layers))
        self.b = nn.ParameterList(nn.Parameter(torch.empty(4 * H)) for _ in range(cfg.layers))
        self.U = nn.ParameterList(nn.Parameter(torch.empty(5 * H, 2 * H)) for _ in range(cfg.layers))
        self._init(list(self.parameters()))

    def layer_params(self, l: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.W[l], self.b[l], self.U[l]

    def project(self, x: Tensor, p: tuple[Tensor, ...]) -> Tensor:
        return F.linear(x, p[0], p[1])  # (n, 4H)  W x + b

    def compose(self, xp, kids, mask, p):  # type: ignore[no-untyped-def]
        U = p[2]
        H = self.hidden_size
        iou, f, fc = xp[:, : 3 * H], None, None
        if kids is not None:
            real = mask.unsqueeze(-1).to(xp.dtype)  # (n, A, 1): a node of one child has no right one
            h_kids, c_kids = kids[0] * real, kids[1] * real  # (n, A, H), A is 1 or 2
            if h_kids.shape[1] == 1:  # a level of one-child nodes only: the right child is absent
                h_kids, c_kids = F.pad(h_kids, (0, 0, 0, 1)), F.pad(c_kids, (0, 0, 0, 1))
            elif h_kids.shape[1] != 2:
                raise ValueError("the binary Tree-LSTM reads folded trees (at most two children a node)")
            g = h_kids.reshape(len(h_kids), 2 * H) @ U.t()  # (n, 5H)  U [h_L; h_R]
            iou = iou + g[:, : 3 * H]
            f = torch.sigmoid(xp[:, None, 3 * H :] + g[:, 3 * H :].view(-1, 2, H))  # (n, 2, H)  f_L, f_R
            fc = (f * c_kids).sum(1)  # (n, H)
            if mask.shape[1] == 1:
                f = f[:, :1]  # the gate of the absent child belongs to no node
        return _node(iou, fc, f, H)


class TreeNet(Model):
    """x = E[token] at every node -> a tree cell bottom-up -> logits = head(h) (a label per tree)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        classes = cfg.task_options().classes
        if cfg.vocab_size < 1 or classes < 1:
            raise ValueError("ModelConfig.vocab_size and options['classes'] must be set from the data")
        self.cfg = cfg
        self.kind: registry.Kind = registry.get(cfg.cell)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed)
        self.core: TreeCore = self.kind.load()(cfg, cfg.embed)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, classes)

    @property
    def form(self) -> str:
        """How the model reads a tree (data/treedata.FORMS)."""
        return self.core.form_for(self.cfg)

    def inputs(self, tokens: Tensor) -> Tensor:
        """(N,) -> (N, E): each node's embedded token, zeros for a node without one."""
        x = self.embed(tokens.clamp(min=0))
        return x * (tokens >= 0).unsqueeze(1).to(x.dtype)

    def forward(self, lv: TreeLevels, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The batch's trees -> logits (B, C) at the roots, and the mean cross-entropy if targets (B,)."""
        h = self.core(self.inputs(lv.tokens), lv).out  # (N, H)
        logits = self.head(self.drop(h[lv.roots]))  # (B, C)
        loss = None if targets is None else F.cross_entropy(logits.float(), targets)
        return logits, loss

    def trace(self, lv: TreeLevels) -> tuple[Tensor, NodeTrace]:
        """Every node's logits (N, C) (what the head makes of each subtree) and every signal, under autograd."""
        tr = self.core(self.inputs(lv.tokens), lv, keep=True)
        return self.head(self.drop(tr.out)), tr
