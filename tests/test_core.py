"TaskVector algebra, float64 geometry, and the bit-exact base restoration promise."
import math
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from sitv.core import TaskVector, displaced, ulp, fingerprint
from sitv.model import random_llama

@pytest.fixture(scope='module')
def models(): return random_llama(seed=0), random_llama(seed=1), random_llama(seed=2)

def snapshot(m): return {n: p.detach().clone() for n, p in m.named_parameters()}
def assert_bit_identical(m, snap):
    for n, p in m.named_parameters(): assert torch.equal(p, snap[n]), f'{n} changed'

def test_self_difference_is_exactly_zero(models):
    b, _, _ = models
    T = TaskVector.from_models(b, b)
    assert T.norm() == 0.0 and all((t == 0).all() for t in T.deltas.values())

def test_add_then_subtract_recovers_within_one_rounding(models):
    b, f1, f2 = models
    T1, T2 = TaskVector.from_models(b, f1), TaskVector.from_models(b, f2)
    back = (T1 + T2) - T2
    for n in T1.names:
        assert ((back[n] - T1[n]).abs() <= ulp(T1[n] + T2[n])).all(), n
    # and the bound is tight enough to catch a real error of one part in 1e5
    wrong = back + 1e-5 * T1
    assert any(((wrong[n] - T1[n]).abs() > ulp(T1[n] + T2[n])).any() for n in T1.names)

@pytest.mark.parametrize('scale', [1e-30, 1.0, 1e30])
def test_cosine_never_exceeds_one(scale):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1_000_003, generator=g) * scale
    a = TaskVector({'w': x}, 'fp'); b = TaskVector({'w': x * (1 + 1e-7)}, 'fp')   # nearly parallel, huge or tiny
    for c in (a.cosine(b), a.cosine(a), a.cosine(3 * a), (-a).cosine(a)):
        assert -1.0 <= c <= 1.0
    assert a.cosine(a) == pytest.approx(1.0, abs=1e-12)
    # fp32 accumulation of the same numbers overflows or loses precision: the float64 path must not
    assert math.isfinite(a.norm()) and a.norm() == pytest.approx(float(x.double().norm()), rel=1e-12)

def test_cosine_of_orthogonal_and_zero():
    a, b = TaskVector({'w': torch.tensor([1., 0.])}, 'fp'), TaskVector({'w': torch.tensor([0., 2.])}, 'fp')
    assert a.cosine(b) == 0.0
    assert math.isnan(a.cosine(0 * a))

def test_base_bit_identical_after_apply_that_raises(models):
    b, f1, f2 = models
    T1, T2 = TaskVector.from_models(b, f1), TaskVector.from_models(b, f2)
    snap = snapshot(b)
    with pytest.raises(RuntimeError, match='half way'):
        with displaced(b, [T1, T2]) as move:
            for a in (0.5, 1.0, 1.5):
                move(a, -a)
                if a == 1.0: raise RuntimeError('failed half way through a sweep')
    assert_bit_identical(b, snap)

def test_apply_writes_fp32_point_from_pristine_base(models):
    b, f1, _ = models
    T = TaskVector.from_models(b, f1)
    snap = snapshot(b)
    with displaced(b, T) as move:
        for a in (0.3, 1.7, -0.4, 0.3):   # revisiting 0.3 after other points gives the same bits
            move(a)
        for n, p in b.named_parameters():
            assert torch.equal(p, snap[n] + 0.3 * T[n]), n
    assert_bit_identical(b, snap)

def test_bf16_model_restored_bit_exactly(models):
    b, f1, _ = models
    T = TaskVector.from_models(b, f1)
    bb = random_llama(seed=0).to(torch.bfloat16)
    snap = snapshot(bb)
    with displaced(bb, T, 0.01):   # a bf16 round trip of base + 0.01·T − 0.01·T would not be exact
        assert any(not torch.equal(p, snap[n]) for n, p in bb.named_parameters())
    assert_bit_identical(bb, snap)

def test_refuses_other_base(models):
    b, f1, _ = models
    T = TaskVector.from_models(b, f1)
    other = random_llama(seed=5); snap = snapshot(other)
    with pytest.raises(ValueError, match='refusing to apply a task vector made from base'):
        with displaced(other, T, 1.0): pass
    assert_bit_identical(other, snap)

def test_tied_weights_counted_once_and_applied_once():
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=32, tie_word_embeddings=True)
    torch.manual_seed(0); b = GPT2LMHeadModel(cfg)
    torch.manual_seed(1); f = GPT2LMHeadModel(cfg)
    T = TaskVector.from_models(b, f)
    assert 'lm_head.weight' not in T.names and 'transformer.wte.weight' in T.names
    # a vector from full state dicts lists the tied tensor under both names; it must be applied once
    Ts = TaskVector.from_state_dicts(b.state_dict(), f.state_dict())
    assert 'lm_head.weight' in Ts.names
    with displaced(b, Ts, 1.0):                       # the base check passes: same base, same fingerprint
        assert torch.allclose(b.transformer.wte.weight, f.transformer.wte.weight, atol=1e-6)
        assert b.lm_head.weight is b.transformer.wte.weight

def test_gpt2_sweep_point_matches_finetuned_logits():
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=32)
    torch.manual_seed(0); b = GPT2LMHeadModel(cfg).eval()
    torch.manual_seed(1); f = GPT2LMHeadModel(cfg).eval()
    T, x = TaskVector.from_models(b, f), torch.randint(0, 64, (2, 12))
    with torch.no_grad(), displaced(b, T, 1.0):
        assert torch.allclose(b(x).logits, f(x).logits, atol=1e-4)

def test_layer_norms_partition_the_norm(models):
    b, f1, _ = models
    T = TaskVector.from_models(b, f1)
    ln = T.layer_norms()
    assert {k for k in ln if isinstance(k, int)} == {0, 1, 2, 3}
    assert math.sqrt(sum(v * v for v in ln.values())) == pytest.approx(T.norm(), rel=1e-12)

def test_fingerprint_distinguishes_bases(models):
    b, f1, _ = models
    assert fingerprint(dict(b.named_parameters())) != fingerprint(dict(f1.named_parameters()))

def test_several_vectors_over_different_parameters(models):
    b, f1, f2 = models
    T_all = TaskVector.from_models(b, f1)
    layer0 = [n for n in T_all.names if '.layers.0.' in n]
    T_l0 = TaskVector({n: TaskVector.from_models(b, f2)[n] for n in layer0}, fingerprint(dict(b.named_parameters()), layer0))
    snap = snapshot(b)
    for tvs, alphas in (([T_l0, T_all], (0.0, 1.0)), ([T_all, T_l0], (1.0, 0.5))):
        with displaced(b, tvs, *alphas) as move:
            for n, p in b.named_parameters():
                want = snap[n]
                for a, tv in zip(alphas, tvs):                           # same order of fp32 additions
                    if a and n in tv.deltas: want = want + a * tv[n]
                assert torch.equal(p, want), n
            assert move.distance() > 0.9 * T_all.norm()
        assert_bit_identical(b, snap)

def test_fingerprint_sees_a_change_the_sample_misses(models):
    b = models[0]
    sd = {n: p.detach().clone() for n, p in b.named_parameters()}
    w = sd['model.embed_tokens.weight']; w[:, 1:] += 0.5            # every column but the first
    assert fingerprint(sd) != fingerprint(dict(b.named_parameters()))
    tiny = {n: p.detach().clone() for n, p in b.named_parameters()}
    tiny['model.layers.2.mlp.down_proj.weight'] *= 1.001            # a 0.1% rescaling of one matrix
    assert fingerprint(tiny) != fingerprint(dict(b.named_parameters()))

def test_restore_refuses_a_model_cast_or_moved_inside_the_context():
    "A cast to bf16 or a move to the meta device inside `displaced` raises instead of restoring silently wrong."
    m = random_llama(seed=0); s0 = {n: p.detach().clone() for n, p in m.named_parameters()}
    tv = TaskVector.from_state_dicts(s0, {n: t + 0.01 for n, t in s0.items()})
    with pytest.raises(RuntimeError, match='bfloat16'):
        with displaced(m, tv, 1.0): m.to(torch.bfloat16)
    m = random_llama(seed=0)
    with pytest.raises(RuntimeError, match='meta'):
        with displaced(m, tv, 1.0): m.to('meta')
    m = random_llama(seed=0)
    with displaced(m, tv, 1.0) as move: move(0.5)          # same layout: restored, no error
    assert all(torch.equal(p, s0[n]) for n, p in m.named_parameters())

def test_fingerprint_of_a_tensor_above_2_to_the_24_values():
    "fp32 linspace rounds the last sample index past the end above 2^24 values (an embedding of 49,152 × 576): it is clamped."
    from sitv.core import fingerprint
    t = torch.arange(49152 * 576, dtype=torch.float32)
    assert fingerprint({'e': t}) == fingerprint({'e': t.clone()}) != fingerprint({'e': t + 1})
