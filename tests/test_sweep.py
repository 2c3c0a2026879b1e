"The sweep on a second architecture, and the crossing detector's positive and negative controls."
import copy
import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from sitv.core import TaskVector
from sitv.data import make_split
from sitv.evaluate import evaluate
from sitv.grid import alpha_grid, doubling_pairs
from sitv.model import byte_tokenizer, train
from sitv.results import Results
from sitv.sweep import crossings, curve, sweep, best_alpha, squaring

def test_sweep_on_gpt2_with_tied_embeddings(tmp_path):
    tok = byte_tokenizer()
    cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=len(tok), n_positions=256, tie_word_embeddings=True,
                     pad_token_id=0, eos_token_id=1, bos_token_id=None)
    torch.manual_seed(0); base = GPT2LMHeadModel(cfg).eval()
    ft = copy.deepcopy(base)
    train(ft, make_split('qa', 'train', 64), tok, steps=10, batch_size=8, lr=3e-3, progress=False)
    T = TaskVector.from_models(base, ft)
    assert 'lm_head.weight' not in T.names                      # the tied matrix is one tensor of T
    sets = {'qa': make_split('qa', 'eval', 16), 'general': make_split('general', 'eval', 16)}
    ref = evaluate(copy.deepcopy(base), sets, tok)
    snap = {n: p.clone() for n, p in base.named_parameters()}
    res = Results(tmp_path / 'r.json', {'arch': 'gpt2'})
    grid = alpha_grid(-0.5, 1.5, 0.25)
    assert sweep(base, T, sets, tok, grid, res, progress=False) == len(grid)
    a, L = curve(res, 'qa')
    assert L[a == 0][0] == ref['qa']['loss']                    # L(0) is the base loss, exactly
    assert L[a == 1][0] == pytest.approx(evaluate(ft, sets, tok)['qa']['loss'], rel=1e-5)
    assert L[a == 1][0] < L[a == 0][0]                          # the fine-tune direction lowers the task loss
    assert all(torch.equal(p, snap[n]) for n, p in base.named_parameters())

def test_crossings_located_on_synthetic_curve():
    g = alpha_grid(-0.5, 1.5, 0.05)
    L = 2.0 + (g + 0.37) * g * (g - 1.13) * (g - 1.41)              # known roots −0.37, 1.13, 1.41 (and 0)
    got = crossings(g, L)
    assert [c['direction'] for c in got] == ['down', 'down', 'up']
    assert np.allclose([c['alpha'] for c in got], [-0.37, 1.13, 1.41], atol=3e-3)

def test_crossings_negative_controls():
    g = alpha_grid(-0.5, 1.5, 0.05)
    assert crossings(g, 1 + g ** 2) == []                       # touches L(0) only at α = 0
    assert crossings(g, 1 + 0.001 * g) == []                    # monotone, however flat
    near = np.where(g == 0, 1.0, 1.0 + 1e-6)                   # hugs L(0) from above without ever crossing
    assert (np.abs(near - 1) < 1e-3).all()                      # a band-count detector would call every point a crossing
    assert crossings(g, near) == []

def test_best_alpha_refines_inside_only():
    g = alpha_grid(-0.5, 1.5, 0.05)
    assert best_alpha(g, (g - 0.71) ** 2)['refined'] == pytest.approx(0.71)
    assert best_alpha(g, -g)['refined'] is None

def test_crossings_ties_and_plateaus_are_not_crossings():
    g = alpha_grid(-0.5, 1.5, 0.05)
    assert crossings(g, np.ones_like(g)) == []                                  # T ≈ 0: the curve is L(0) everywhere
    assert crossings(g, np.where(g < 0.4, 0.0, 0.375)) == []                    # exact match: a tie plateau, then a step up
    steps = np.where(g < 0.4, 0.5, np.where(g < 1.0, 0.25, 0.75))               # leaves the α = 0 plateau down, comes back up
    assert [c['direction'] for c in crossings(g, steps)] == ['up']              # leaving the trivial root is not a crossing
    assert crossings([-1, 0, 1, 2], [3, 2, 0, -1], ref=1.0)[0]['alpha'] == 0.5   # explicit level: α = 0 is an ordinary point

@pytest.mark.parametrize('step, pairs', [(1/3, 2), (1/12, 12), (1/7, 6), (0.05, 20)])
def test_squaring_finds_every_doubling_pair_the_grid_holds(step, pairs):
    "By index, not by rounded value: at step 1/3 the lookup by round(2α, 12) found 0 of 2 pairs, at 1/12 4 of 12, at 1/7 2 of 6."
    g = alpha_grid(-0.5, 1.5, step)
    want = doubling_pairs(-0.5, 1.5, step)
    assert len(want) == pairs
    rows = squaring(g, g ** 2)
    assert [r[0] for r in rows] == [a for a, _ in want]
    assert all(abs(l2 - 4 * l1) < 1e-9 for _, l1, l2 in rows)             # L(2α) is the value at the grid's own 2α
    assert squaring(g[::-1], (g ** 2)[::-1]) == rows

def test_squaring_negative_control():
    assert squaring([0.0, 0.3, 0.5, 0.7], [0.0] * 4) == []                  # no α whose double is held
