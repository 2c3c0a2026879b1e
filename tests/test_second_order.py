"g = ∇L·T and h = TᵀHT from forward-mode AD against finite differences of the real shipped model's loss."
import pytest
import torch
from sitv.core import TaskVector, displaced
from sitv.data import make_split
from sitv.evaluate import evaluate
from sitv.finetune import finetune
from sitv.model import SHIPPED, load_model, byte_tokenizer
from sitv.results import Results
from sitv.second_order import directional_derivatives, quadratic_predictions
from sitv.sweep import sweep, curve

@pytest.fixture(scope='module')
def setup():
    base = load_model(SHIPPED)
    T = TaskVector.from_models(base, finetune(SHIPPED, 'qa', progress=False)[0])
    return base, T, make_split('qa', 'eval', 32), byte_tokenizer()

def test_g_h_match_finite_differences(setup):
    base, T, xs, tok = setup
    m = load_model(SHIPPED).double()
    d = directional_derivatives(m, xs, tok, T, alpha=0.0)
    def L(a):
        with displaced(m, T, a): return evaluate(m, {'q': xs}, tok)['q']['loss']
    # HF Llama's RMSNorm computes in fp32 even in a float64 model, so L carries ~1e-7 relative noise that a small
    # step amplifies; with steps of 1e-2 and 2e-2, Richardson extrapolation removes the O(e²) truncation error instead
    L0 = L(0.0)
    def fd(e): return (L(e) - L(-e)) / (2 * e), (L(e) - 2 * L0 + L(-e)) / e ** 2
    (g1, h1), (g2, h2) = fd(1e-2), fd(2e-2)
    assert d['g'] == pytest.approx((4 * g1 - g2) / 3, rel=1e-4)
    assert d['h'] == pytest.approx((4 * h1 - h2) / 3, rel=1e-2)
    assert abs(h1 - d['h']) < abs(h2 - d['h'])                    # finite differences converge towards the AD value

def test_g_matches_the_sweep_grid(setup, tmp_path):
    base, T, xs, tok = setup
    res = Results(tmp_path / 'r.json', {})
    sweep(base, T, {'qa': xs}, tok, [-0.02, 0.0, 0.02], res, progress=False)
    a, Lq = curve(res, 'qa')
    d = directional_derivatives(base, xs, tok, T)
    assert d['loss'] == pytest.approx(Lq[1], rel=1e-6)
    assert d['g'] == pytest.approx((Lq[2] - Lq[0]) / 0.04, rel=2e-2)
    assert d['h'] == pytest.approx((Lq[2] - 2 * Lq[1] + Lq[0]) / 0.02 ** 2, rel=0.1)
    assert d['g'] < 0                                              # the fine-tune direction lowers the task loss

def test_quadratic_predictions_analytic():
    assert quadratic_predictions(-2.0, 4.0) == dict(best=0.5, crossing=1.0)
    assert quadratic_predictions(0.0, 4.0) == dict(best=0.0, crossing=None)

def test_directional_derivatives_switch_dropout_off():
    "A model left in training mode with dropout gives the deterministic g and h (and keeps its mode)."
    from sitv.model import random_llama
    tok, xs = byte_tokenizer(), make_split('qa', 'eval', 8)
    m = random_llama(seed=0, attention_dropout=0.5).double().train()
    T = 0.05 * TaskVector.from_models(m, random_llama(seed=1).double())
    a, b = directional_derivatives(m, xs, tok, T), directional_derivatives(m, xs, tok, T)
    assert (a['g'], a['h']) == (b['g'], b['h'])
    ref = directional_derivatives(m.eval(), xs, tok, T)
    assert abs(a['g'] - ref['g']) <= 1e-12 * abs(ref['g']) and abs(a['h'] - ref['h']) <= 1e-10 * abs(ref['h'])
    m.train(); directional_derivatives(m, xs[:2], tok, T); assert m.training

# the scored-only output head against each family's full logits: tests/test_scoring_kernel.py
