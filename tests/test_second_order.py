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

# --- the scored-only output head (no batch × length × vocabulary tensor), against each family's own logits ---
import families
from sitv.evaluate import token_nll
from sitv.second_order import ScoredNLL, head_logits, nll_sum, scored_batches

@pytest.fixture(scope='module')
def qa_texts(): return make_split('qa', 'eval', 6), byte_tokenizer()

def _full_logits_nll(m, ids, mask, lab):
    with torch.no_grad(): return token_nll(m(input_ids=ids, attention_mask=mask).logits[:, :-1], lab).sum().item()

@pytest.mark.parametrize('family', list(families.FAMILIES))
def test_scored_head_equals_full_logits(family, qa_texts):
    xs, tok = qa_texts
    m = families.model(family)
    bl, _ = scored_batches(xs, tok, 3, 256, 'cpu', model=m)
    params = dict(m.named_parameters())
    for ids, mask, lab in bl:
        with torch.no_grad(): new = nll_sum(m, params, ids, mask, lab).item()
        assert new == pytest.approx(_full_logits_nll(m, ids, mask, lab), rel=1e-6)

def test_scored_head_without_softcapping_would_differ(qa_texts, monkeypatch):
    "Negative control: Gemma 2's soft-capping matters at these logits, so dropping it from head_logits is caught by the test above."
    xs, tok = qa_texts
    m = families.model('gemma2')
    with torch.no_grad():                                      # scale the head up so that capping at 30 bites
        m.get_output_embeddings().weight.mul_(200.0)
    bl, _ = scored_batches(xs, tok, 3, 256, 'cpu', model=m)
    ids, mask, lab = bl[0]
    params = dict(m.named_parameters())
    with torch.no_grad(): capped = nll_sum(m, params, ids, mask, lab).item()
    assert capped == pytest.approx(_full_logits_nll(m, ids, mask, lab), rel=1e-6)
    monkeypatch.setattr(m.config, 'final_logit_softcapping', None)
    with torch.no_grad(): uncapped = nll_sum(m, params, ids, mask, lab).item()
    monkeypatch.undo()
    assert abs(uncapped - capped) > 1e-3 * abs(capped), (uncapped, capped)

def test_scored_head_chunks_do_not_change_the_sum(qa_texts, monkeypatch):
    "One position per chunk gives the same NLL as one chunk for the whole batch."
    import sitv.second_order as so
    xs, tok = qa_texts
    m = families.model('llama')
    bl, _ = scored_batches(xs, tok, 6, 256, 'cpu', model=m)
    ids, mask, lab = bl[0]
    params = dict(m.named_parameters())
    with torch.no_grad(): whole = nll_sum(m, params, ids, mask, lab).item()
    import sitv.evaluate as ev
    monkeypatch.setattr(ev, "HEAD_CHUNK_BYTES", 1)
    with torch.no_grad(): tiny = nll_sum(m, params, ids, mask, lab).item()
    assert tiny == pytest.approx(whole, rel=1e-6)
