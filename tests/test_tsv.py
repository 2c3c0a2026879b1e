"TSV, TIES and DARE on hand-computed cases, the orthogonalisation guard, and peft agreement where the semantics match."
import numpy as np
import pytest
import torch
from peft.utils.merge_utils import ties as peft_ties, dare_linear
from sitv.core import TaskVector
from sitv.tsv import (tsv_compress, tsv_merge, orthonormal, subspace_overlap, sti, ties, dare, task_arithmetic,
                      truncated_svd, effective_rank, default_k, normalised_gain)

def tv(**t): return TaskVector({k: torch.as_tensor(v, dtype=torch.float32) for k, v in t.items()}, 'base')

def low_rank(m, n, r, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, r, generator=g) @ torch.randn(r, n, generator=g)

def test_tsv_c_full_rank_reproduces_and_low_rank_is_best():
    T = tv(w=low_rank(12, 9, 9, 0), g=[1.0, 2.0])
    full, st = tsv_compress(T, k=9)
    assert torch.allclose(full['w'], T['w'], atol=1e-5) and torch.equal(full['g'], T['g'])
    k2, st2 = tsv_compress(T, k=2)
    s = torch.linalg.svdvals(T['w'].double())
    assert (k2['w'].double() - T['w'].double()).norm().item() == pytest.approx(s[2:].pow(2).sum().sqrt().item(), rel=1e-5)  # Eckart–Young
    assert st2['stored'] == 2 * (12 + 9 + 1) + 2 and st2['dense'] == 12 * 9 + 2

def test_default_k_follows_the_paper_code():
    assert default_k((128, 352), 4) == 32 and default_k((3, 100), 4) == 1 and default_k((384, 128), 3) == 42

def test_orthogonalisations_agree_where_valid_and_guard_fires():
    X = low_rank(10, 4, 4, 1).double()
    assert torch.allclose(orthonormal(X, 'polar'), orthonormal(X, 'whiten'), atol=1e-10)
    with pytest.raises(ValueError, match='at most as many columns'): orthonormal(low_rank(3, 5, 3, 2).double(), 'whiten')
    with pytest.raises(ValueError, match='full column rank'): orthonormal(low_rank(10, 4, 2, 3).double(), 'whiten')   # rank 2 < 4 columns
    P = orthonormal(low_rank(10, 4, 2, 3).double(), 'polar')
    assert torch.allclose(P.T @ P, torch.eye(4, dtype=torch.float64), atol=1e-10)

def test_interference_one_with_itself_zero_when_orthogonal():
    Q = torch.linalg.qr(torch.randn(16, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64))[0]
    assert subspace_overlap(Q[:, :3], Q[:, :3]) == pytest.approx(1.0, abs=1e-12)
    assert subspace_overlap(Q[:, :3], Q[:, 3:7]) == pytest.approx(0.0, abs=1e-12)
    s = torch.ones(3, dtype=torch.float64)
    assert sti([Q[:, :3], Q[:, 3:6]], [s, s], [Q[:, :3], Q[:, 3:6]]) == pytest.approx(0.0, abs=1e-12)
    # hand case: the same single direction twice, σ = 2 and 3: UᵀU − I = VᵀV − I = [[0,1],[1,0]]; product with Σ sums to 2 + 3
    u = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    assert sti([u, u], [torch.tensor([2.0]), torch.tensor([3.0])], [u, u]) == pytest.approx(5.0)

def test_tsv_merge_single_task_and_orthogonal_tasks():
    T = tv(w=low_rank(8, 6, 6, 5), b=[0.5])
    assert torch.allclose(tsv_merge([T], k=6)['w'], T['w'], atol=1e-5)
    # two tasks living in orthogonal row and column spaces: TSV-M (full rank each) is their plain sum
    g = torch.Generator().manual_seed(6)
    Qm = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0].float()
    Qn = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))[0].float()
    A = tv(w=Qm[:, :2] @ torch.diag(torch.tensor([3.0, 1.0])) @ Qn[:, :2].T, b=[1.0])
    B = tv(w=Qm[:, 2:4] @ torch.diag(torch.tensor([2.0, 0.5])) @ Qn[:, 2:4].T, b=[3.0])
    m = tsv_merge([A, B], k=2)
    assert m['b'].item() == 2.0
    assert torch.allclose(m['w'], A['w'] + B['w'], atol=1e-5)

def test_ties_by_hand_and_peft_agreement():
    three = [tv(x=[1.0, -2.0, 0.5, 0.0, 3.0]), tv(x=[-0.5, -1.0, 2.0, 1.2, -4.0]), tv(x=[2.0, 0.1, -0.2, 1.5, -1.0])]
    expect = torch.tensor([1.5, -2.0, 2.0, 1.35, -2.5])
    assert torch.allclose(ties(three, 0.6)['x'], expect) and torch.allclose(ties(three, 0.6, trim='tensor')['x'], expect)
    # per-tensor trim is peft's ties exactly; the global trim differs once tensors differ in scale
    g = torch.Generator().manual_seed(7)
    vs = [tv(a=torch.randn(20, generator=g) * 10, b=torch.randn(30, generator=g)) for _ in range(3)]
    for n in ('a', 'b'):
        assert torch.equal(ties(vs, 0.3, trim='tensor')[n], peft_ties([v[n] for v in vs], torch.ones(3), 0.3, 'total'))
    assert not torch.equal(ties(vs, 0.3, trim='global')['b'], ties(vs, 0.3, trim='tensor')['b'])
    assert (ties(vs, 0.3, trim='global')['b'] == 0).float().mean() > 0.9     # b is small: the global threshold removes most of it

def test_dare_by_hand_seeded_and_independent_of_global_rng():
    d3 = [tv(x=[2.0, 4.0]), tv(x=[6.0, -2.0]), tv(x=[1.0, 1.0])]
    masks = [{'x': torch.tensor(m)} for m in ([1.0, 0.0], [1.0, 1.0], [0.0, 1.0])]
    assert torch.equal(dare(d3, 0.5, masks=masks)['x'], torch.tensor([16.0, -2.0]))
    assert torch.equal(dare(d3, 0.0)['x'], task_arithmetic(d3)['x'])
    torch.manual_seed(1); a = dare(d3, 0.5, seed=9)['x']
    torch.manual_seed(2); b = dare(d3, 0.5, seed=9)['x']
    assert torch.equal(a, b)                                                  # ours: the seed decides
    torch.manual_seed(1); pa = dare_linear([v['x'] for v in d3], torch.ones(3), 0.5)
    torch.manual_seed(1); pb = dare_linear([v['x'] for v in d3], torch.ones(3), 0.5)
    assert torch.equal(pa, pb)                                                # peft: the global RNG decides …
    with pytest.raises(ValueError, match='p must be'): dare(d3, 1.0)

def test_merges_refuse_mixed_bases():
    a, b = tv(x=[1.0]), TaskVector({'x': torch.ones(1)}, 'other base')
    for f in (task_arithmetic, ties, dare, tsv_merge):
        with pytest.raises(ValueError, match='different bases'): f([a, b])

def test_lowrank_svd_close_on_low_rank_matrix():
    M = low_rank(200, 150, 10, 8) + 1e-3 * low_rank(200, 150, 150, 9)
    U, S, Vh = truncated_svd(M, 10); Ul, Sl, Vhl = truncated_svd(M, 10, 'lowrank')
    assert ((Ul * Sl) @ Vhl - (U * S) @ Vh).norm() / ((U * S) @ Vh).norm() < 1e-3
    assert effective_rank(S.numpy(), 0.99) <= 10

def test_normalised_gain():
    assert normalised_gain(4.0, 2.0, 0.0) == 0.5 and normalised_gain(4.0, 5.0, 0.0) == -0.25

@pytest.mark.parametrize('method', ['full', 'lowrank'])
def test_truncated_factors_own_their_storage(method):
    "The kept U, σ, Vᵀ are copies: none is a view that keeps the full SVD factors (m × min, min × n) alive."
    M = low_rank(60, 40, 40, 3)
    for f in truncated_svd(M, 5, method):
        assert f.untyped_storage().nbytes() == f.numel() * f.element_size() and f.is_contiguous(), (f.shape, f.untyped_storage().nbytes())
    U, S, Vh = truncated_svd(M, 5, method)
    assert U.shape == (60, 5) and S.shape == (5,) and Vh.shape == (5, 40)

def test_global_trim_threshold_without_a_concatenated_copy():
    "The bisection's k-th largest |x| equals sorting the concatenated vector, and TIES' global trim equals its whole-vector reference."
    from peft.utils.merge_utils import calculate_majority_sign_mask, disjoint_merge
    from sitv.tsv import kth_largest_abs
    g = torch.Generator().manual_seed(5)
    vs = [tv(a=torch.randn(30, 20, generator=g), b=torch.randn(17, generator=g) * 3, c=torch.zeros(5)) for _ in range(3)]
    flat = lambda t: torch.cat([x.abs().flatten() for x in t.deltas.values()])
    for k in (1, 2, 100, 617, 622):
        assert kth_largest_abs(list(vs[0].deltas.values()), k) == torch.topk(flat(vs[0]), k).values[-1]
    ref = []
    for t in vs:                                               # the whole-vector trim, as the paper's code does it
        thr = torch.topk(flat(t), int(0.2 * t.numel())).values[-1]
        ref.append({n: torch.where(x.abs() >= thr, x, torch.zeros_like(x)) for n, x in t.deltas.items()})
    got = ties(vs, 0.2, 'global')
    for n in vs[0].names:
        stack = torch.stack([r[n] for r in ref])
        assert torch.equal(got[n], disjoint_merge(stack, calculate_majority_sign_mask(stack, 'total')))
