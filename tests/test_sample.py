import pytest
import torch

from charrnn.config import ModelConfig, SampleConfig
from charrnn.errors import UnknownCharactersError
from charrnn.models.lm import CharRNN
from charrnn.tasks.generate import generate, sample_text
from charrnn.tasks.sampler import Sampler
from charrnn.data.tokenizer import CharTokenizer
from helpers import scripted


def pick(logits, temperature, top_k, top_p, gen):
    """One draw from logits (V,), from a fresh sampler on `gen`."""
    return Sampler(temperature, top_k, top_p, gen).one(logits)


def model_for(tok, cell="lstm"):
    return CharRNN(ModelConfig(cell=cell, layers=2, hidden=16, embed=8, vocab_size=tok.vocab_size)).eval()


@pytest.fixture
def tok():
    return CharTokenizer("abcdefgh \n.", eos=True)


class Pieces:
    """A tokenizer whose tokens are several characters long (as sentencepiece's are)."""

    kind = "test"

    def __init__(self, pieces, eos=True):
        self.pieces = pieces
        self.has_eos = eos

    vocab_size = property(lambda self: len(self.pieces) + int(self.has_eos))
    eos_id = property(lambda self: len(self.pieces) if self.has_eos else None)

    def encode(self, text, unknown="error"):
        return [self.pieces.index(text)] if text else []

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids if i != self.eos_id)

    def stream_decoder(self):
        outer = self

        class D:
            def push(self, i):
                return outer.pieces[i]

        return D()


def test_same_seed_same_text(tok):
    m = model_for(tok)
    cfg = SampleConfig(length=200, stop_at_eos=False, temperature=1.0)
    a = sample_text(m, tok, SampleConfig(**{**cfg.__dict__, "seed": 7}))
    b = sample_text(m, tok, SampleConfig(**{**cfg.__dict__, "seed": 7}))
    c = sample_text(m, tok, SampleConfig(**{**cfg.__dict__, "seed": 8}))
    assert a == b and a != c and len(a) == 200


def test_prime_is_printed_first_and_length_counts_after_it(tok):
    text = sample_text(model_for(tok), tok, SampleConfig(prime="ab", length=30, seed=1, stop_at_eos=False))
    assert text.startswith("ab") and len(text) == 32


def test_greedy_top_k1_and_tiny_top_p_agree():
    logits = torch.tensor([0.1, 2.0, -1.0, 1.9])
    g = torch.Generator().manual_seed(0)
    assert pick(logits, 0.0, None, None, g) == 1
    assert all(pick(logits, 1.0, 1, None, g) == 1 for _ in range(20))
    assert all(pick(logits, 1.0, None, 0.01, g) == 1 for _ in range(20))
    assert {pick(logits, 1.0, 2, None, g) for _ in range(200)} == {1, 3}
    assert {pick(logits, 5.0, None, None, g) for _ in range(500)} == {0, 1, 2, 3}


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    g = torch.Generator().manual_seed(0)
    assert {pick(logits, 1.0, None, 0.75, g) for _ in range(400)} == {0, 1}
    assert {pick(logits, 1.0, None, 0.85, g) for _ in range(400)} == {0, 1, 2}


def test_distribution_is_what_pick_draws_from_row_by_row():
    """distribution() (the explore screen's "as drawn") over a batch of rows equals the
    one pick() samples from for each row, and each row is a distribution."""
    from charrnn.tasks.sampler import distribution

    logits = torch.randn(6, 9, generator=torch.Generator().manual_seed(1)) * 3
    for T, k, p in [(1.0, None, None), (0.5, 3, None), (1.3, None, 0.6), (0.8, 4, 0.7)]:
        d = distribution(logits, T, k, p)
        assert d.shape == (6, 9) and torch.allclose(d.sum(-1), torch.ones(6))
        for row in range(6):
            assert torch.equal(d[row], distribution(logits[row], T, k, p))
            kept = set(torch.nonzero(d[row]).flatten().tolist())
            g = torch.Generator().manual_seed(row)
            assert {pick(logits[row], T, k, p, g) for _ in range(300)} <= kept  # never a token it leaves out
            if k is not None:
                assert len(kept) <= k
    assert torch.equal(distribution(logits, 0.0).argmax(-1), logits.argmax(-1)) and (distribution(logits, 0.0).sum(-1) == 1).all()


def test_stops_at_end_of_document_unless_told_not_to(tok, monkeypatch):
    a, b, eos = tok.stoi["a"], tok.stoi["b"], tok.eos_id
    scripted(monkeypatch, [a, b, eos, a, a, a])
    assert sample_text(model_for(tok), tok, SampleConfig(length=10)) == "ab"
    scripted(monkeypatch, [a, b, eos, a, a, a])
    assert sample_text(model_for(tok), tok, SampleConfig(length=6, stop_at_eos=False), eos_as="\n%\n") == "ab\n%\naa"[:6]


def test_stop_string_spanning_pieces_is_found_and_not_printed(monkeypatch):
    tok = Pieces(["he", "llo wo", "rld", "!", "x"])
    m = model_for(tok)
    scripted(monkeypatch, [0, 1, 2, 3, 4, 4, 4])
    assert sample_text(m, tok, SampleConfig(length=100, stop=("o wor",))) == "hell"
    scripted(monkeypatch, [0, 1, 2, 3, 4, 4, 4])
    assert sample_text(m, tok, SampleConfig(length=100, stop=("zzz", "ld!"))) == "hello wor"


@pytest.mark.parametrize("T,k,p", [(1.0, None, None), (0.8, 3, None), (0.8, None, 0.7), (0.7, 4, 0.8), (0.0, None, None)])
def test_every_option_gives_the_numpy_tests_text_cut_at_the_first_stop(tok, T, k, p, monkeypatch):
    """The quick paths (sampler.py's all-torch test of a truncated draw, _Stream's push of a
    piece with no stop character) change no token: for each option set, the text is the one
    the numpy test draws from the same seed, and with stop strings it is the text without
    them cut at the first match."""
    m = model_for(tok)
    with torch.no_grad():
        m.head.weight.mul_(8)  # a peaked distribution: most draws the most likely token, as a trained model's
    base = SampleConfig(length=600, temperature=T, top_k=k, top_p=p, stop_at_eos=False, seed=3)
    free = sample_text(m, tok, base)
    stops = ("h.", "a a", "\n\n")
    cut = min([at for s in stops if (at := free.find(s)) >= 0], default=len(free))
    assert 0 < cut < 500, cut  # a stop string is met
    assert sample_text(m, tok, SampleConfig(**{**base.__dict__, "stop": stops})) == free[:cut]
    quick = Sampler.ids_top

    def numpy_test(self, top):
        self.quick = False
        return quick(self, top)

    monkeypatch.setattr(Sampler, "ids_top", numpy_test)
    assert sample_text(m, tok, base) == free


def test_a_piece_with_no_text_releases_nothing_held(monkeypatch):
    """A token that decodes to nothing yet (part of a character, in sentencepiece) has no
    character of any stop string, and still must not release a held possible start of one;
    a piece with no such character releases everything held."""
    tok = Pieces(["he", "", "llo", "x", "q"])
    m = model_for(tok)
    scripted(monkeypatch, [3, 0, 1, 2, 4, 4])
    assert sample_text(m, tok, SampleConfig(length=100, stop=("hel",))) == "x"
    scripted(monkeypatch, [0, 1, 3, 0, 2, 4])
    pieces = list(generate(m, tok, SampleConfig(length=100, stop=("hel",))))
    assert "".join(pieces) == "hex" and pieces[0] == "hex"


def test_streaming_holds_back_only_a_possible_stop_prefix(tok, monkeypatch):
    ids = [tok.stoi[c] for c in "abcabcabd"] + [tok.stoi["e"]] * 20
    scripted(monkeypatch, ids)
    pieces = list(generate(model_for(tok), tok, SampleConfig(length=12, stop=("abd",))))
    assert "".join(pieces) == "abcabc"
    assert pieces[0] == "abc"  # text streams out as soon as it cannot start the stop string: "ab" might, "abc" cannot


def test_length_always_ends_generation(tok):
    text = sample_text(model_for(tok), tok, SampleConfig(length=0, seed=1))
    assert text == ""
    text = sample_text(model_for(tok), tok, SampleConfig(length=57, seed=1, stop_at_eos=False, stop=("qqq",)))
    assert len(text) == 57


def test_unknown_prime_characters(tok):
    m = model_for(tok)
    with pytest.raises(UnknownCharactersError) as e:
        sample_text(m, tok, SampleConfig(prime="abZQ", length=5))
    assert "'Q'" in str(e.value) and "'Z'" in str(e.value) and "--unknown skip" in str(e.value)
    text = sample_text(m, tok, SampleConfig(prime="abZQ", length=5, unknown="skip", seed=0, stop_at_eos=False))
    assert text.startswith("ab") and len(text) == 7


def test_no_documents_no_prime_starts_from_a_newline():
    """Without documents or a prime, generation reads an (unprinted) newline first: the
    same draws as a run primed with "\n", which prints it."""
    tok = CharTokenizer("xyz\n")
    m = model_for(tok)
    text = sample_text(m, tok, SampleConfig(length=20, seed=3))
    primed = sample_text(m, tok, SampleConfig(prime="\n", length=20, seed=3))
    assert len(text) == 20 and primed == "\n" + text


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sampling_path_equals_fused_path(tok, cell):
    """The sampler's per-layer step path and the fused forward give one distribution."""
    m = model_for(tok, cell).double()
    ids = torch.randint(tok.vocab_size, (1, 25))
    fused, _, _ = m(ids)
    layers = m.split_state(m.init_state(1))
    for t in range(25):
        logits, layers = m.step_layers(ids[:, t], layers)
        torch.testing.assert_close(logits, fused[:, t], atol=1e-10, rtol=0)


def test_a_batch_of_one_is_generate(tok):
    from charrnn.tasks.generate import generate_batch

    m = model_for(tok)
    cfg = SampleConfig(prime="ab", length=80, temperature=1.0, top_k=5, top_p=0.9)
    one = generate_batch(m, tok, cfg, 1, torch.Generator().manual_seed(3))
    assert one == [sample_text(m, tok, cfg, torch.Generator().manual_seed(3))]


def test_batched_samples_end_on_their_own(tok):
    """Greedy rows equal the greedy single stream; sampled rows end at their own stop
    string or length (leaving the batch), each starts with the prime, and they differ."""
    from charrnn.tasks.generate import generate_batch

    m = model_for(tok)
    greedy = SampleConfig(prime="a", length=40, temperature=0, stop_at_eos=False)
    assert generate_batch(m, tok, greedy, 3) == [sample_text(m, tok, greedy)] * 3
    cfg = SampleConfig(prime="a", length=60, temperature=1.5, stop=("h",), stop_at_eos=False)
    texts = generate_batch(m, tok, cfg, 12, torch.Generator().manual_seed(0))
    assert len(texts) == 12 and len(set(texts)) > 6
    assert all(t.startswith("a") and "h" not in t and len(t) <= 61 for t in texts)
    assert len({len(t) for t in texts}) > 3  # rows left the batch at different steps


def test_cli_num_prints_each_sample(runner, tmp_path):
    from charrnn.cli import app
    from charrnn.training import checkpoint as ckmod

    # a run from a tiny model saved by the trainer
    from helpers import make_text, TINY

    p = tmp_path / "c.txt"
    p.write_text(make_text(300))
    r = runner.invoke(app, ["train", str(p), *TINY, "--steps", "5", "--quiet", "--device", "cpu", "--out", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    assert ckmod.load(tmp_path / "r" / "last.pt").step == 5
    s = runner.invoke(app, ["sample", str(tmp_path / "r"), "--num", "4", "--length", "30", "--seed", "1", "--prime", "The"])
    assert s.exit_code == 0 and s.stdout.count("The") >= 4 and len(s.stdout.split("\n\n")) >= 4
