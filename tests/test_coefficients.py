"""sitv.coefficients on every model family a user brings (tiny random models from their configs, float64): the merged
model that AdaMerging differentiates equals θ_base + Σ λₖTₖ written into the weights, and its gradient with respect to
the coefficients equals the chain rule through those weights (not finite differences: several families run their norms
in float32 even in a float64 model, which makes differences of 1e-5 noisy); and no coefficient can be chosen on a
sealed eval split."""
import copy
import pytest
import torch
from families import FAMILIES, model as family_model
from sitv.core import TaskVector
from sitv.coefficients import Sealed, sealed, adamerging, coefficient_groups, coefficient_vector, merged_moves
from sitv.evaluate import evaluating
from sitv.second_order import frozen

def _vectors(m, n=2, scale=0.05):
    "n task vectors of `m`: random changes to every parameter, made by writing them into copies (as a fine-tune would)."
    g, out = torch.Generator().manual_seed(1), []
    for i in range(n):
        ft = copy.deepcopy(m)
        with torch.no_grad():
            for p in ft.parameters(): p += scale * torch.randn(p.shape, generator=g, dtype=p.dtype)
        out.append(TaskVector.from_models(m, ft, source=f'noise {i}'))
    return out

def _batch(vocab, g=None):
    g = g or torch.Generator().manual_seed(2)
    ids = torch.randint(2, vocab, (3, 12), generator=g)
    mask = torch.ones_like(ids); mask[2, 9:] = 0
    labels = ids.clone(); labels[:, :4] = -100; labels[mask == 0] = -100
    return ids, mask, labels

def _written(m, tvs, lam, index, b):
    "The loss of a copy of `m` with θ_base + Σ λ T written into its weights, and its gradient with respect to λ by the chain rule: Σ over a group's parameters of ⟨∂L/∂θ, Tₖ⟩ (the reference)."
    w = copy.deepcopy(m)
    with torch.no_grad():
        for n, p in w.named_parameters(): p += sum(float(lam[k, index[n]]) * t[n].double() for k, t in enumerate(tvs))
    w.eval(); L = _loss(w, b); L.backward()
    g = torch.zeros(lam.shape, dtype=torch.float64)
    for n, p in w.named_parameters():
        for k, t in enumerate(tvs): g[k, index[n]] += (p.grad * t[n].double()).sum()
    return float(L), g

def _loss(m, b):
    "Mean NLL of the scored tokens from the model's own float64 logits (no sitv scoring code: the hooks are what is tested)."
    ids, mask, labels = b
    z = m(input_ids=ids, attention_mask=mask).logits[:, :-1]
    return torch.nn.functional.cross_entropy(z.flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)

@pytest.mark.parametrize('family', list(FAMILIES))
def test_merged_moves_is_the_written_merge(family):
    m = family_model(family).double()
    tvs = _vectors(m)
    index, groups = coefficient_groups(tvs[0].names, 'layer')
    lam = torch.tensor([[0.7, -0.3, 1.1], [0.4, 0.9, -0.2]], dtype=torch.float64)[:, :len(groups)].contiguous().requires_grad_(True)
    b = _batch(m.config.vocab_size)
    with evaluating(m), frozen(m), merged_moves(m, tvs, lambda k, n: lam[k, index[n]]):
        L = _loss(m, b); L.backward()
    ref, g_ref = _written(m, tvs, lam.detach(), index, b)
    assert abs(float(L.detach()) - ref) <= 1e-10 * abs(ref), (family, float(L.detach()), ref)
    assert torch.allclose(lam.grad, g_ref, rtol=1e-8, atol=1e-12), (family, lam.grad, g_ref)
    # negative control: leave out the parameters that are not linear in their module's output (norm gains): the loss moves
    lin_only = lambda k, n: lam[k, index[n]] * (0 if ('norm' in n or 'ln' in n) and n.endswith('weight') and tvs[0][n].ndim == 1 else 1)
    with evaluating(m), frozen(m), torch.no_grad(), merged_moves(m, tvs, lin_only): L2 = float(_loss(m, b))
    assert abs(L2 - ref) > 1e-6 * abs(ref), family

def test_a_choice_that_reads_the_eval_split_fails():
    "The merging report chooses every coefficient with the eval sets sealed: a method that reads them raises (positive control), one that reads validation only does not."
    from sitv.model import load_model, load_tokenizer
    from sitv.data import make_split
    from sitv.tsv import choose_alpha
    base, tok = load_model('sitv-tiny'), load_tokenizer('sitv-tiny')
    val, ev = {'qa': make_split('qa', 'val', 4)}, {'qa': Sealed(make_split('qa', 'eval', 4))}
    T = _vectors(base, 1, 1e-3)[0]
    with sealed(*ev.values()):
        a, gains = choose_alpha(base, T, val, tok, [0.5, 1.0], {'qa': 5.0}, {'qa': 1.0})          # validation only: fine
        assert a in (0.5, 1.0) and len(gains) == 2
        with pytest.raises(RuntimeError, match='eval split'): choose_alpha(base, T, ev, tok, [0.5, 1.0], {'qa': 5.0}, {'qa': 1.0})
        with pytest.raises(RuntimeError, match='eval split'): adamerging(base, [T], ev, tok, steps=1)
    a2, _ = choose_alpha(base, T, ev, tok, [0.5, 1.0], {'qa': 5.0}, {'qa': 1.0})                  # unsealed again
    assert a2 in (0.5, 1.0)

def test_adamerging_bad_inputs():
    from sitv.model import load_model, load_tokenizer
    from sitv.data import make_split
    base, tok = load_model('sitv-tiny'), load_tokenizer('sitv-tiny')
    T, val = _vectors(base, 1, 1e-3)[0], {'qa': make_split('qa', 'val', 2)}
    with pytest.raises(ValueError, match='objective must be'): adamerging(base, [T], val, tok, objective='accuracy')
    with pytest.raises(ValueError, match='granularity must be'): adamerging(base, [T], val, tok, granularity='head')
    with pytest.raises(ValueError, match='init has shape'): adamerging(base, [T], val, tok, init=torch.ones(2, 1))
    with pytest.raises(ValueError, match='not in the model'):
        with merged_moves(base, [TaskVector({'nope.weight': torch.zeros(2)}, T.base_fingerprint)], lambda k, n: torch.tensor(1.0)): pass
