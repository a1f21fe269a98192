"""Tree cells (models/recursive.py) against the equations, node by node.

Parity: a batch evaluated level by level (every node of one height, across the
batch, in one matrix product) gives, in fp64 to 1e-10, the same node states and
root logits as each tree evaluated alone, and as a plain recursion over each
tree written from the module docstring's equations in Python, one node at a time.

The textbook check: the recursive unit's forward pass and its gradients
(back-propagation through structure), written in numpy float64 from
h = tanh(b + W [h_left; h_right]), h_leaf = tanh(d + V x), o = c + V_o h_root,
against autograd on TreeNet.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from charrnn.config import ModelConfig
from charrnn.data.listops import make_listops
from charrnn.data.treebatch import batch_trees
from charrnn.data.treedata import TreeVocab, binarize_mapped
from charrnn.data.treedata import shaped as reshape
from charrnn.data.trees import JOIN, Tree, binarize, fold_arguments, format_sexpr, nodes, parse_tree
from charrnn.errors import ConfigError
from charrnn.models.recursive import TreeLevels, TreeNet
from test_trees import random_tree

E, H, C = 5, 6, 10


def trees(n: int = 12, seed: int = 3) -> list[Tree]:
    """ListOps trees and arbitrary shapes (arity 1..5, one-leaf trees)."""
    rng = random.Random(seed)
    listops = [e.tree for e in make_listops(seed, n_train=n, n_val=0, train_depth=3, max_args=4)[0]]
    return listops + [random_tree(rng, 4) for _ in range(n)] + [Tree("7"), parse_tree("[SM 3 ]")]


def net(cell: str, layers: int, vocab: TreeVocab, seed: int = 0) -> TreeNet:
    torch.manual_seed(seed)
    cfg = ModelConfig(cell=cell, layers=layers, hidden=H, embed=E, dropout=0.0, vocab_size=vocab.vocab_size, task="tree",
                      options={"classes": C})  # fmt: skip
    m = TreeNet(cfg).double().eval()
    with torch.no_grad():
        for p in m.parameters():  # larger than the init, so that every term matters
            p.normal_(0, 0.5)
    return m


def reference(m: TreeNet, tree: Tree, vocab: TreeVocab) -> list[list[dict[str, torch.Tensor]]]:
    """Node by node, from the equations: for each node in pre-order, per layer, its h (and c, f)."""
    core, L = m.core, m.cfg.layers
    out: list[list[dict[str, torch.Tensor]]] = []

    def visit(t: Tree) -> list[dict[str, torch.Tensor]]:
        slot = len(out)
        out.append([])
        kids = [visit(k) for k in t.children]
        x = m.embed.weight[vocab.stoi[t.label]] if t.label != JOIN else torch.zeros(E, dtype=torch.float64)
        res = []
        for l in range(L):
            if m.cfg.cell == "recursive":
                V, d, W, b = core.layer_params(l)
                a = d + V @ x if not kids else b + W @ torch.cat([kids[0][l]["h"], kids[1][l]["h"]]) + V @ x
                res.append({"h": torch.tanh(a)})
            elif m.cfg.cell == "bintreelstm":  # Tai et al.'s N-ary Tree-LSTM, N = 2, over folded trees
                W, bias, U = core.layer_params(l)
                wx = W @ x + bias
                zero = torch.zeros(H, dtype=torch.float64)
                h_l, h_r = (kids[j][l]["h"] if j < len(kids) else zero for j in (0, 1))
                c_l, c_r = (kids[j][l]["c"] if j < len(kids) else zero for j in (0, 1))
                U_L, U_R = U[:, :H], U[:, H:]  # the columns each child's h meets
                gate = [wx[g * H : (g + 1) * H] + U_L[g * H : (g + 1) * H] @ h_l + U_R[g * H : (g + 1) * H] @ h_r for g in range(3)]
                i, o, u = torch.sigmoid(gate[0]), torch.sigmoid(gate[1]), torch.tanh(gate[2])
                c = i * u
                for j, k in enumerate(kids):
                    rows = slice((3 + j) * H, (4 + j) * H)  # f_L, then f_R: W_f x shared, U's own rows
                    f = torch.sigmoid(wx[3 * H :] + U_L[rows] @ h_l + U_R[rows] @ h_r)
                    k[l]["forget"] = f
                    c = c + f * k[l]["c"]
                res.append({"h": o * torch.tanh(c), "c": c})
            else:
                W, bias, U_iou, U_f = core.layer_params(l)
                wx = W @ x + bias
                h_sum = sum((k[l]["h"] for k in kids), torch.zeros(H, dtype=torch.float64))
                i = torch.sigmoid(wx[:H] + U_iou[:H] @ h_sum)
                o = torch.sigmoid(wx[H : 2 * H] + U_iou[H : 2 * H] @ h_sum)
                u = torch.tanh(wx[2 * H : 3 * H] + U_iou[2 * H :] @ h_sum)
                c = i * u
                for k in kids:
                    f = torch.sigmoid(wx[3 * H :] + U_f @ k[l]["h"])  # this child's own forget gate
                    k[l]["forget"] = f
                    c = c + f * k[l]["c"]
                res.append({"h": o * torch.tanh(c), "c": c})
            x = res[-1]["h"]
        out[slot] = res
        return res

    visit(tree)
    return out


@pytest.mark.parametrize("cell", ["recursive", "treelstm", "bintreelstm"])
@pytest.mark.parametrize("layers", [1, 2])
def test_level_by_level_equals_each_tree_alone_and_the_equations(cell, layers):
    ts = trees()
    vocab = TreeVocab(n.label for t in ts for n in nodes(t))
    m = net(cell, layers, vocab)
    shaped = [reshape(t, m.form) for t in ts]
    batch = batch_trees(shaped, vocab.stoi)
    assert batch.is_binary == (cell == "recursive")  # folded trees keep their one-child nodes
    assert cell != "bintreelstm" or max(c.shape[1] for c in batch.children) == 2
    lv = TreeLevels.of(batch)
    with torch.no_grad():
        together, _ = m(lv)  # (B, C)
        node_logits, tr = m.trace(lv)
    assert batch.n_levels > 4 and torch.equal(node_logits[lv.roots], together)
    for b, t in enumerate(shaped):
        with torch.no_grad():
            alone, _ = m(TreeLevels.of(batch_trees([t], vocab.stoi)))
            ref = reference(m, t, vocab)
        np.testing.assert_allclose(alone[0].numpy(), together[b].numpy(), atol=1e-10, rtol=0)
        np.testing.assert_allclose(m.head(ref[0][-1]["h"]).detach().numpy(), together[b].numpy(), atol=1e-10, rtol=0)
        for j, per_layer in enumerate(ref):  # every node, every layer, every state
            node = batch.preorder[batch.offsets[b] + j]
            for l, want in enumerate(per_layer):
                for name, v in want.items():
                    got = tr.signals[name][l, node]
                    np.testing.assert_allclose(got.detach().numpy(), v.detach().numpy(), atol=1e-10, rtol=0, err_msg=f"{name} {l}")
        if cell != "recursive":  # a forget gate sits on the child it forgets; the root has none
            assert torch.isnan(tr.signals["forget"][:, batch.roots[b]]).all()


def test_binarize_mapped_finds_each_written_node():
    t = parse_tree("[MAX 2 9 [MIN 4 7 ] 0 ]")
    b, where = binarize_mapped(t)
    assert b == binarize(t)
    flat = list(nodes(b))
    written = list(nodes(t))
    for i, n in enumerate(written):
        if n.is_leaf:
            assert flat[where[i]] == n
        else:  # the top of its chain: its own subtree, binarised
            assert flat[where[i]] == binarize(n)
    for t in trees():
        b, where = binarize_mapped(t)
        assert b == binarize(t) and len(where) == sum(1 for _ in nodes(t)) and len(set(where)) == len(where)


def test_folded_trees_map_each_written_node():
    t = parse_tree("[MAX 2 9 [MIN 4 7 ] 0 ]")
    b, where = binarize_mapped(t, "folded")
    assert b == fold_arguments(t) and format_sexpr(b) == "((MAX (MAX (MAX 2 9) ((MIN 4 7))) 0))"  # each fold closed by a JOIN
    assert b.label == JOIN and len(b.children) == 1 and b.children[0].label == "MAX"  # the close reads the fold's state alone
    flat, written = list(nodes(b)), list(nodes(t))
    for i, n in enumerate(written):  # a leaf to itself, an operator to the top of its fold
        assert flat[where[i]] == (n if n.is_leaf else fold_arguments(n))
    for t in trees():
        b, where = binarize_mapped(t, "folded")
        assert b == fold_arguments(t) and len(where) == sum(1 for _ in nodes(t)) and len(set(where)) == len(where)
        assert all(len(n.children) <= 2 for n in nodes(b))


def test_tree_cells_serve_the_tree_task_only():
    with pytest.raises(ConfigError, match="--cell lstm reads sequences; --task tree takes --cell recursive, treelstm, bintreelstm."):
        ModelConfig(cell="lstm", task="tree").validate()
    with pytest.raises(ConfigError, match="--cell treelstm composes trees; --task lm takes --cell rnn, lstm, gru"):
        ModelConfig(cell="treelstm").validate()


# ------------------------------------------------------------------ the book


def preorder(t: Tree) -> tuple[list[Tree], list[list[int]]]:
    """The nodes in pre-order and each one's children's positions (leaves are shared
    objects in generated trees, so positions, not identities)."""
    order: list[Tree] = []
    kids_at: list[list[int]] = []

    def visit(n: Tree) -> int:
        i = len(order)
        order.append(n)
        kids_at.append([])
        kids_at[i] = [visit(k) for k in n.children]
        return i

    visit(t)
    return order, kids_at


def book_recursive(p: dict[str, np.ndarray], ts: list[Tree], ys: list[int], stoi: dict[str, int]) -> dict[str, object]:
    """Forward and back-propagation through structure for the recursive unit, in numpy:

        leaf  h = tanh(d + V x),  x = E[token]      inner  h = tanh(b + W [h_l; h_r])
        o = c + V_o h_root,  L = sum over trees of -log softmax(o)[y]

    Returns the loss, every gradient and dL/dh of every node (per tree, pre-order)."""
    g = {k: np.zeros_like(v) for k, v in p.items()}
    loss, hs, dhs = 0.0, [], []
    for t, y in zip(ts, ys):
        order, kids_at = preorder(t)  # a parent before its children
        h = [np.zeros(0)] * len(order)
        for i in reversed(range(len(order))):  # children before parents
            n = order[i]
            if n.is_leaf:
                h[i] = np.tanh(p["d"] + p["V"] @ p["E"][stoi[n.label]])
            else:
                h[i] = np.tanh(p["b"] + p["W"] @ np.concatenate([h[k] for k in kids_at[i]]))
        o = p["c"] + p["Vo"] @ h[0]
        e = np.exp(o - o.max())
        yhat = e / e.sum()
        loss += -np.log(yhat[y])
        go = yhat - np.eye(len(o))[y]  # dL/do = yhat - e_y
        g["c"] += go
        g["Vo"] += np.outer(go, h[0])
        dh = [np.zeros(H) for _ in order]
        dh[0] = p["Vo"].T @ go
        for i, n in enumerate(order):  # parents first: dh[i] is whole when node i is reached
            da = (1 - h[i] ** 2) * dh[i]  # dL/da = diag(1 - h^2) dL/dh
            if n.is_leaf:
                x = p["E"][stoi[n.label]]
                g["d"] += da
                g["V"] += np.outer(da, x)
                g["E"][stoi[n.label]] += p["V"].T @ da
            else:
                kids = np.concatenate([h[k] for k in kids_at[i]])
                g["b"] += da
                g["W"] += np.outer(da, kids)
                back = p["W"].T @ da  # dL/d[h_l; h_r]
                dh[kids_at[i][0]] += back[:H]
                dh[kids_at[i][1]] += back[H:]
        hs.append(np.array(h))
        dhs.append(np.array(dh))
    return {"loss": loss, "grads": g, "h": hs, "dh": dhs}


def test_textbook_backprop_through_structure_for_the_recursive_unit():
    ts = [binarize(t) for t in trees(4, seed=5)[:6]]
    vocab = TreeVocab(n.label for t in ts for n in nodes(t) if n.label != JOIN)
    m = net("recursive", 1, vocab, seed=2)
    ys = [random.Random(i).randrange(C) for i in range(len(ts))]
    core = m.core
    p = {"V": core.V[0], "d": core.d[0], "W": core.W[0], "b": core.b[0], "Vo": m.head.weight, "c": m.head.bias, "E": m.embed.weight}
    book = book_recursive({k: v.detach().numpy() for k, v in p.items()}, ts, ys, vocab.stoi)

    batch = batch_trees(ts, vocab.stoi)
    lv = TreeLevels.of(batch)
    y = torch.tensor(ys)
    logits, _ = m(lv)
    loss = F.cross_entropy(logits, y, reduction="sum")
    loss.backward()
    assert abs(loss.item() - book["loss"]) < 1e-10
    for name, t in p.items():
        np.testing.assert_allclose(t.grad.numpy(), book["grads"][name], atol=1e-10, rtol=0, err_msg=name)

    # and dL/dh at every node, the recursion itself, through the traced path's own tensors
    node_logits, tr = m.trace(lv)
    loss = F.cross_entropy(node_logits[lv.roots], y, reduction="sum")
    dh = torch.cat(torch.autograd.grad(loss, tr.steps["h"][0]))  # (N, H) in the batch's node order
    for b in range(len(ts)):
        at = batch.preorder[batch.offsets[b] : batch.offsets[b + 1]]
        np.testing.assert_allclose(tr.signals["h"][0, at].detach().numpy(), book["h"][b], atol=1e-12, rtol=0)
        np.testing.assert_allclose(dh[at].numpy(), book["dh"][b], atol=1e-10, rtol=0)
