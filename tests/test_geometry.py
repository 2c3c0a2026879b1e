"Controls for sitv.geometry, through the same metric / Christoffel / curvature / geodesic code the LM report uses."
import math
import numpy as np
import pytest
import torch
from sitv.core import TaskVector, fingerprint
from sitv.data import make_split
from sitv.model import random_llama, byte_tokenizer
from sitv.geometry import (pullback, gaussian_form, isotropic_gaussian_form, christoffel, gaussian_curvature, geodesic, shoot,
                           path_length, fisher_quadratic, kl_from_base, lm_metric, per_example_grads, fisher_diagonal,
                           projected_quadratic, hvp_fn, top_hessian_eigenvalue, hutchinson_trace, restricted_hessian,
                           _unflat)
from sitv.second_order import scored_batches, nll_sum
from torch.func import functional_call

f64 = lambda *v: torch.tensor(v, dtype=torch.float64)
gauss = lambda c: pullback([lambda x: x], gaussian_form, c)                                   # N(μ, σ) in (μ, σ)
gauss_log = lambda c: pullback([lambda x: torch.stack([x[0], x[1].exp()])], gaussian_form, c)  # N(μ, σ) in (μ, log σ)
flat = lambda c: pullback([lambda x: x], isotropic_gaussian_form(0.5), c)                     # N((c₁, c₂), σ²I)
polar = lambda c: pullback([lambda x: torch.stack([x[0] * torch.cos(x[1]), x[0] * torch.sin(x[1])])], isotropic_gaussian_form(0.5), c)

@pytest.mark.parametrize('metric', [gauss, gauss_log])
def test_gaussian_family_has_curvature_minus_half(metric):
    for p in ([0.0, 1.0], [1.5, 0.5], [-2.0, 3.0], [0.7, 0.2]):
        assert abs(gaussian_curvature(metric, f64(*p)).item() + 0.5) < 1e-6

@pytest.mark.parametrize('metric', [flat, polar])
def test_flat_family_has_zero_curvature(metric):
    for p in ([1.0, 0.3], [2.0, -1.0], [0.5, 2.5]):
        assert abs(gaussian_curvature(metric, f64(*p)).item()) < 1e-9
    assert christoffel(polar, f64(1.0, 0.3)).abs().max() > 0.1          # polar coordinates are not trivially flat

def test_curvature_detects_a_sphere_and_refuses_three_coordinates():
    sphere = lambda c: torch.diag(torch.stack([torch.ones((), dtype=c.dtype), torch.sin(c[0]) ** 2]))
    assert abs(gaussian_curvature(sphere, f64(1.0, 0.2)).item() - 1.0) < 1e-9
    with pytest.raises(ValueError, match='2 coordinates'): gaussian_curvature(lambda c: torch.eye(3, dtype=c.dtype), f64(0, 0, 0))

def _half_circle(t, mu0=0.5, r=1.2, w=0.8):
    return f64(mu0 + math.sqrt(2) * r * math.tanh(w * t), r / math.cosh(w * t))

def test_geodesic_matches_the_analytic_half_circle():
    xs, _ = geodesic(gauss, f64(0.5, 1.2), f64(math.sqrt(2) * 1.2 * 0.8, 0.0), 1.0, 32)
    err = max(float((x - _half_circle(t)).norm()) for x, t in zip(xs, np.linspace(0, 1, 33)))
    assert err < 1e-7

def test_rk4_converges_at_fourth_order():
    errs = [float((geodesic(gauss, f64(0.5, 1.2), f64(math.sqrt(2) * 1.2 * 0.8, 0.0), 1.0, n)[0][-1] - _half_circle(1.0)).norm()) for n in (4, 8, 16)]
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(3.7 < o < 4.3 for o in orders), orders

def test_geodesic_in_flat_space_is_the_straight_line():
    xs, _ = geodesic(flat, f64(0.0, 0.0), f64(1.0, 2.0), 1.0, 4)
    assert torch.allclose(xs[-1], f64(1.0, 2.0), atol=1e-12)

def test_shooting_finds_the_hyperbolic_distance():
    a, b = f64(0.0, 1.0), f64(2.0, 1.0)
    s = shoot(gauss, a, b, n_steps=32)
    L, speed = path_length(gauss, s['path'], s['velocities'])
    assert s['miss'] < 1e-6 and abs(L - math.sqrt(2) * math.acosh(2.0)) < 1e-5 and np.ptp(speed) < 1e-6
    line = a + torch.linspace(0, 1, 33, dtype=torch.float64)[:, None] * (b - a)
    assert abs(path_length(gauss, line, (b - a).expand(33, 2))[0] - 2.0) < 1e-9       # straight path is longer

@pytest.fixture(scope='module')
def tiny():
    tok = byte_tokenizer()
    m = random_llama(seed=0, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    P = dict(m.named_parameters())
    names = ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.mlp.up_proj.weight']
    g = torch.Generator().manual_seed(1)
    tv = TaskVector({n: torch.randn(P[n].shape, generator=g) for n in names}, fingerprint(P, names))
    return m, tok, make_split('general', 'eval', 2), names, tv

def _flat_fn(m, names, fn):
    P = dict(m.named_parameters())
    def f(flat):
        p, i = {}, 0
        for n in names: p[n] = flat[i:i + P[n].numel()].reshape(P[n].shape); i += P[n].numel()
        return fn({**{k: v.detach() for k, v in P.items()}, **p})
    return f, torch.cat([P[n].detach().reshape(-1) for n in names])

def test_fisher_quadratic_equals_explicit_jacobian(tiny):
    m, tok, ex, names, tv = tiny
    bl, n = scored_batches(ex, tok, 32, 256, 'cpu')                  # texts in length buckets: the sum runs over every batch
    t = torch.cat([tv[k].reshape(-1) for k in names]).double()
    explicit = by_score = 0.0
    for ids, mask, lab in bl:
        sel = lab != -100
        f, x0 = _flat_fn(m, names, lambda p: functional_call(m, p, (ids,), {'attention_mask': mask}).logits[:, :-1][sel].double())
        with torch.no_grad():
            J = torch.func.jacfwd(f)(x0); p = torch.softmax(f(x0), -1)
        u = J @ t
        F = torch.einsum('pvi,pv,pvj->ij', J, p, J) - torch.einsum('pvi,pv,pw,pwj->ij', J, p, p, J)   # Jᵀ(diag p − ppᵀ)J, explicitly
        explicit += float(t @ F @ t); by_score += float(((p * u ** 2).sum(-1) - (p * u).sum(-1) ** 2).sum())
    explicit, by_score = explicit / n, by_score / n
    got = fisher_quadratic(m, ex, tok, tv)
    assert len(bl) >= 1 and abs(got - explicit) < 1e-6 * explicit
    assert abs(got - by_score) < 1e-6 * explicit

def test_half_alpha_squared_fisher_is_the_small_alpha_kl(tiny):
    m, tok, ex, names, tv = tiny
    q = fisher_quadratic(m, ex, tok, tv)
    r = kl_from_base(m, ex, tok, tv, [0.1, 0.01]) / (0.5 * np.array([0.1, 0.01]) ** 2 * q)
    assert abs(r[1] - 1) < 0.01 and abs(r[1] - 1) < abs(r[0] - 1)
    assert abs(kl_from_base(m, ex, tok, tv, [0.0])[0]) < 1e-12

def test_per_example_gradients_vmap_equals_loop_and_sampled_projections_estimate_the_fisher(tiny):
    m, tok, _, names, tv = tiny
    ex = make_split('general', 'eval', 6)
    for (i1, n1, a), (i2, n2, b) in zip(per_example_grads(m, ex, tok, 'sampled', 3, batch_size=3),
                                        per_example_grads(m, ex, tok, 'sampled', 3, batch_size=3, vectorized=False)):
        assert i1 == i2 and torch.equal(n1, n2)
        for n in a: assert torch.allclose(a[n], b[n], atol=1e-6, rtol=1e-5)
    exact = fisher_quadratic(m, ex, tok, tv)
    fd = fisher_diagonal(m, ex, tok, 'sampled', 0, project=[tv], draws=48)
    mc, se = projected_quadratic(fd['proj'], fd['n_tokens'])
    assert abs(mc[0] - exact) < 4 * se[0] and se[0] < 0.3 * exact
    with pytest.raises(ValueError, match="'data' or 'sampled'"): next(per_example_grads(m, ex, tok, 'model'))

def test_hessian_tools_against_the_explicit_hessian(tiny):
    m, tok, ex, names, tv = tiny
    bl, n = scored_batches(ex, tok, 32, 256, 'cpu')
    f, x0 = _flat_fn(m, names, lambda p: sum(nll_sum(m, p, *b) for b in bl) / n)
    H = torch.func.hessian(f)(x0).double().detach()
    ev, vec = torch.linalg.eigh(H)
    hvp, pt = hvp_fn(m, ex, tok, names)
    top = top_hessian_eigenvalue(hvp, pt)
    assert abs(top['eigenvalue'] - float(ev[-1])) < 1e-4 * float(ev.abs().max()) and top['n_hvp'] > 0
    tr = hutchinson_trace(hvp, pt, 64)
    assert abs(tr['trace'] - float(H.trace())) < 4 * tr['se']
    P = dict(m.named_parameters())
    top_tv = TaskVector(_unflat(vec[:, -1].float(), {k: P[k] for k in names}), tv.base_fingerprint)
    t = torch.cat([tv[k].reshape(-1) for k in names]).double()
    rh = restricted_hessian(m, ex, tok, [top_tv, tv])
    assert abs(rh['M'][1, 1] - float(t @ H @ t)) < 1e-4 * abs(float(t @ H @ t))
    assert abs(rh['eigenvalues'][0] - float(ev[-1])) < 1e-4 * float(ev.abs().max())           # positive control
    g = torch.Generator().manual_seed(5)
    rnd = [TaskVector({k: torch.randn(P[k].shape, generator=g) for k in names}, tv.base_fingerprint) for _ in range(2)]
    assert restricted_hessian(m, ex, tok, rnd)['eigenvalues'][0] < 0.5 * float(ev[-1])        # negative control

def test_lm_geometry_on_an_sdpa_model_switches_to_eager_and_back(tiny):
    "A model loaded with sdpa (no forward AD) gets the same metric as the eager one; its implementation is put back after."
    m, tok, ex, names, tv = tiny
    m2 = random_llama(seed=0, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    m2.set_attn_implementation('sdpa')
    c = f64(0.5)
    G_sdpa, G_eager = lm_metric(m2, ex, tok, [tv])(c), lm_metric(m, ex, tok, [tv])(c)
    assert m2.config._attn_implementation == 'sdpa' and torch.allclose(G_sdpa, G_eager, rtol=1e-6)
    from sitv.second_order import directional_derivatives
    d2, d1 = directional_derivatives(m2, ex, tok, tv), directional_derivatives(m, ex, tok, tv)
    assert m2.config._attn_implementation == 'sdpa' and abs(d2['h'] - d1['h']) <= 1e-6 * abs(d1['h'])


def test_shooting_recovers_from_a_first_guess_that_runs_off_the_chart():
    for v in (f64(2.0, -6.0), f64(10.0, 3.0)):                       # heads for σ ≤ 0 / five times too fast
        s = shoot(gauss, f64(0.0, 1.0), f64(2.0, 1.0), n_steps=32, max_solves=40, v_init=v)
        assert s['status'] == 'converged' and s['miss'] < 1e-6
        assert abs(path_length(gauss, s['path'], s['velocities'])[0] - math.sqrt(2) * math.acosh(2.0)) < 1e-5

def test_lanczos_keeps_two_flat_vectors_and_finds_the_eigenvector():
    "At most two Lanczos vectors beside the point during every HVP (five before: q_prev, q, w, then x and Hx); the Ritz vector by Clenshaw is the eigenvector."
    import gc
    rng = np.random.default_rng(1); Q, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    A = torch.from_numpy(Q @ np.diag(np.concatenate([[4.0, 2.5], rng.uniform(-1, 1, 48)])) @ Q.T)
    alive = []
    def hvp(v):
        alive.append(len({t.untyped_storage().data_ptr() for t in gc.get_objects() if torch.is_tensor(t) and t.numel() == 50}))
        return {'x': (A @ v['x'].double()).float()}
    top = top_hessian_eigenvalue(hvp, {'x': torch.zeros(50)}, tol=1e-7)
    assert abs(top['eigenvalue'] - 4.0) < 1e-4 and top['residual'] < 1e-3
    assert abs(abs(float(top['vector']['x'].double() @ torch.from_numpy(Q[:, 0]))) - 1) < 1e-4
    assert max(alive) <= 3, max(alive)

def test_hvp_and_kl_at_a_point_leave_the_weights_unwritten(tiny):
    "θ_base + αT built module by module: the same HVP as with θ written into the weights, while the weights keep θ_base."
    from sitv.core import displaced
    m, tok, ex, names, tv = tiny
    P = dict(m.named_parameters()); base0 = P[names[0]].detach().clone()
    unwritten = []
    hook = m.model.layers[0].self_attn.q_proj.register_forward_hook(lambda *a: unwritten.append(torch.equal(P[names[0]].detach(), base0)))
    hv, _ = hvp_fn(m, ex, tok, names, tv=tv, alpha=0.5)
    at_point = hv({k: tv[k] for k in names})
    kl = kl_from_base(m, ex, tok, tv, [0.5])
    hook.remove()
    assert unwritten and all(unwritten)
    with displaced(m, tv, 0.5):
        written = hvp_fn(m, ex, tok, names)[0]({k: tv[k] for k in names})
        with torch.no_grad(): p_half = [torch.log_softmax(m(input_ids=i, attention_mask=k).logits[:, :-1][l != -100].double(), -1) for i, k, l in scored_batches(ex, tok, 32, 256, 'cpu')[0]]
    for k in names: assert torch.allclose(at_point[k], written[k], rtol=1e-4, atol=1e-6 * float(written[k].abs().max()))
    with torch.no_grad():
        bl, n = scored_batches(ex, tok, 32, 256, 'cpu')
        p0 = [torch.log_softmax(m(input_ids=i, attention_mask=k).logits[:, :-1][l != -100].double(), -1) for i, k, l in bl]
    ref = sum(float((a.exp() * (a - b)).sum()) for a, b in zip(p0, p_half)) / n
    assert abs(kl[0] - ref) < 1e-6 * ref

def test_geometry_scores_through_the_evaluate_kernel(tiny):
    "Per-text gradients go through `nll_sum` (sitv.evaluate.scored_logits under vmap): no output-layer kernel of geometry's own."
    import sitv.geometry as geo
    m, tok, _, names, tv = tiny
    assert not hasattr(geo, '_PositionNLL')
    ex = make_split('qa', 'eval', 3)                                     # answer tokens only: positions some texts do not score
    P = dict(m.named_parameters())
    seen = 0
    for idx, nt, gs in per_example_grads(m, ex, tok, 'data', batch_size=3):
        for r, i in enumerate(idx):
            (b,), _ = scored_batches([ex[i]], tok, 1, 256, 'cpu')
            ref = torch.autograd.grad(nll_sum(m, P, *b), [P[k] for k in names])
            for k, g in zip(names, ref): assert torch.allclose(gs[k][r], g, rtol=1e-5, atol=1e-7)
            seen += 1
    assert seen == len(ex)

def test_twice_differentiable_composes_softmaxes_that_backward_can_differentiate():
    "Same values as torch's kernels; and the reason it exists: backward through torch's own forward-AD formula refuses."
    import torch.autograd.forward_ad as fwAD
    import torch.nn.functional as F
    from sitv.geometry import twice_differentiable
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(3, 11, generator=g, dtype=torch.float64), torch.randn(3, 11, generator=g, dtype=torch.float64)
    x[0, 3] = -math.inf                                                       # a masked logit
    fs = [lambda z: F.softmax(z, dim=-1), lambda z: F.log_softmax(z, -1), lambda z: torch.logsumexp(z, -1), lambda z: z.softmax(-1, dtype=torch.float32)]
    for f in fs:
        with twice_differentiable(): got = f(x)
        torch.testing.assert_close(got, f(x), rtol=1e-12 if got.dtype == torch.float64 else 1e-6, atol=0)
    def hv(mode):
        z = x[1:].clone().requires_grad_()
        with fwAD.dual_level(), mode:
            tan = fwAD.unpack_dual(torch.logsumexp(fwAD.make_dual(z, t[1:]), -1).sum()).tangent
        return torch.autograd.grad(tan, z)[0]
    got = hv(twice_differentiable())
    p = torch.softmax(x[1:], -1)                                              # d/dz of Σ p·t: p ⊙ (t − p·t)
    torch.testing.assert_close(got, p * (t[1:] - (p * t[1:]).sum(-1, keepdim=True)), rtol=1e-12, atol=1e-15)
    import contextlib
    with pytest.raises(RuntimeError, match='inplace'): hv(contextlib.nullcontext())

def test_hessian_vector_products_drain_into_out_and_file_backed_buffers(tiny):
    "`hvp_fn` adds into a given `out` (twice = 2 Hv), hands terms to a function, and Lanczos on file-backed vectors equals Lanczos in memory."
    m, tok, ex, names, tv = tiny
    hv, pt = hvp_fn(m, ex, tok, names)
    v = {k: tv[k] for k in names}
    h1 = hv(v)
    out = {k: torch.zeros_like(p) for k, p in pt.items()}
    hv(v, out); hv(v, out)
    for k in names: torch.testing.assert_close(out[k], 2 * h1[k])
    seen = {}
    hv(v, lambda k, term: seen.__setitem__(k, seen.get(k, 0) + term))
    for k in names: torch.testing.assert_close(seen[k], h1[k])
    a = top_hessian_eigenvalue(hv, pt, maxiter=8, seed=3)
    b = top_hessian_eigenvalue(hv, pt, maxiter=8, seed=3, file_bytes=0)
    assert a['eigenvalue'] == b['eigenvalue'] and a['steps'] == b['steps']
    assert all(torch.equal(a['vector'][k], b['vector'][k]) for k in names)
    assert hutchinson_trace(hv, pt, 4, 1, file_bytes=0)['trace'] == hutchinson_trace(hv, pt, 4, 1)['trace']

def test_offloaded_hvp_keeps_saved_tensors_in_scratch_pages_and_gives_the_same_product():
    "offload_bytes=0: every tensor backward saves (but the parameters and directions) goes to the stash; the product is bit-equal, at θ_base and at θ_base + T."
    from sitv.geometry import _Stash
    m = random_llama(seed=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2)
    tok, ex = byte_tokenizer(), make_split('general', 'eval', 4)
    P = dict(m.named_parameters()); g = torch.Generator().manual_seed(0)
    tv = TaskVector({n: 0.01 * torch.randn(p.shape, generator=g) for n, p in P.items()}, fingerprint(P, list(P)))
    stashed, put = [], _Stash.put
    def spy(self, t): stashed.append(t.untyped_storage().data_ptr()); return put(self, t)
    for kw in (dict(), dict(tv=tv, alpha=1.0)):
        a, pt = hvp_fn(m, ex, tok, batch_size=2, **kw)
        b, _ = hvp_fn(m, ex, tok, batch_size=2, offload_bytes=0, **kw)
        v = {k: torch.randn(p.shape, generator=g) for k, p in pt.items()}
        ha = a(v); stashed.clear()
        _Stash.put = spy
        try: hb = b(v)
        finally: _Stash.put = put
        assert len(stashed) > 100                                          # positive control: the activations went to the stash
        keep = {p.untyped_storage().data_ptr() for p in P.values()} | {t.untyped_storage().data_ptr() for t in list(v.values()) + list(tv.deltas.values())}
        assert not keep & set(stashed)                                      # the weights and directions were not copied
        for k in ha: assert torch.equal(ha[k], hb[k]), k
