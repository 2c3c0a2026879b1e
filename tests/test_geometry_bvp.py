"Boundary-value geodesics (issue 17): the discretised energy minimiser against the analytic Fisher distance of N(μ, σ), shooting, flat controls and an LM."
import math
import numpy as np
import pytest
import torch
from sitv.core import TaskVector, fingerprint
from sitv.data import make_split
from sitv.model import random_llama, byte_tokenizer
from sitv.geometry import (pullback, gaussian_form, isotropic_gaussian_form, shoot, path_length, lm_metric,
                           segment_quads, polygon_length, frozen_energy_hessian, bvp_geodesic, refine, bvp_step_check)

f64 = lambda *v: torch.tensor(v, dtype=torch.float64)
gauss = lambda c: pullback([lambda x: x], gaussian_form, c)                                   # N(μ, σ) in (μ, σ)
flat = lambda c: pullback([lambda x: x], isotropic_gaussian_form(0.5), c)                     # N((c₁, c₂), σ²I): G = 4I
polar = lambda c: pullback([lambda x: torch.stack([x[0] * torch.cos(x[1]), x[0] * torch.sin(x[1])])], isotropic_gaussian_form(1.0), c)

def gaussian_distance(a, b):
    "Fisher distance of N(μ, σ): √2 × the Poincaré half-plane distance in (μ/√2, σ)."
    (u1, s1), (u2, s2) = (float(a[0]) / math.sqrt(2), float(a[1])), (float(b[0]) / math.sqrt(2), float(b[1]))
    return math.sqrt(2) * math.acosh(1 + ((u2 - u1) ** 2 + (s2 - s1) ** 2) / (2 * s1 * s2))

PAIRS = [(f64(0.0, 1.0), f64(2.0, 1.0)), (f64(-1.0, 0.2), f64(3.0, 2.0)), (f64(0.5, 0.5), f64(0.5, 3.0))]

@pytest.mark.parametrize('a,b', PAIRS)
def test_boundary_value_length_is_the_analytic_gaussian_distance(a, b):
    d = gaussian_distance(a, b)
    chk = bvp_step_check(gauss, a, b, n=16, tol=5e-3, rtol=1e-12)
    assert chk['resolved'] and chk['coarse']['converged'] and chk['fine']['converged']
    assert abs(chk['fine']['length'] / d - 1) < 2e-3                          # second order: a few 1e-4 at 32 segments
    assert abs(chk['extrapolated'] / d - 1) < abs(chk['fine']['length'] / d - 1) + 1e-12  # Richardson gets closer (both exact when the geodesic is straight)
    assert abs(chk['extrapolated'] / d - 1) < 1e-4
    sp = chk['fine']['speed']
    assert np.ptp(sp) / sp.mean() < 1e-2                                       # a minimiser of the energy has constant speed

def test_boundary_value_converges_at_second_order():
    a, b = PAIRS[0]
    d = gaussian_distance(a, b)
    errs = [abs(bvp_geodesic(gauss, a, b, n, rtol=1e-12)['length'] - d) for n in (4, 8, 16, 32)]
    orders = [math.log2(e1 / e2) for e1, e2 in zip(errs, errs[1:])]
    assert all(1.8 < o < 2.2 for o in orders), orders

def test_boundary_value_agrees_with_shooting_where_both_converge():
    for a, b in PAIRS[:2]:
        s = shoot(gauss, a, b, n_steps=32, max_solves=40)
        assert s['status'] == 'converged'
        L_shoot = path_length(gauss, s['path'], s['velocities'])[0]
        chk = bvp_step_check(gauss, a, b, n=16, rtol=1e-12)
        assert abs(chk['extrapolated'] - L_shoot) < 1e-4 * L_shoot
        fine = chk['fine']['path']                                              # the same curve: the nodes lie on the shot geodesic
        ref = s['path']                                                         # 32 RK4 steps, 32 segments: the same t
        assert float((fine - ref).norm(dim=1).max()) < 1e-2

def test_flat_metric_gives_the_straight_line_and_the_euclidean_length():
    a, b = f64(0.0, 1.0), f64(2.0, -1.0)
    r = bvp_geodesic(flat, a, b, n=8, rtol=1e-14)
    line = a + torch.linspace(0, 1, 9, dtype=torch.float64)[:, None] * (b - a)
    assert r['converged'] and torch.allclose(r['path'], line, atol=1e-9)
    assert abs(r['length'] - 2 * float((b - a).norm())) < 1e-12 and abs(r['start_length'] - r['length']) < 1e-12
    po = bvp_geodesic(polar, f64(1.0, 0.0), f64(1.0, math.pi / 2), n=32, rtol=1e-14)   # flat, curved coordinates: the chord
    assert abs(po['length'] - math.sqrt(2)) < 1e-3 and po['length'] < po['start_length']
    assert abs(float(po['path'][16, 0]) - math.sqrt(0.5)) < 1e-3               # the chord's midpoint, r = cos(π/4), not the arc r = 1

def test_a_non_geodesic_path_has_larger_energy():
    a, b = PAIRS[0]
    r = bvp_geodesic(gauss, a, b, n=16, rtol=1e-12)
    E = lambda p: 16 * float(segment_quads(gauss, p).sum())
    assert abs(E(r['path']) - r['energy']) < 1e-12
    t = torch.linspace(0, 1, 17, dtype=torch.float64)[1:-1]
    for k, eps in ((0, 0.02), (1, -0.02), (0, 0.2)):                          # bends along μ and σ, small and large
        p = r['path'].clone(); p[1:-1, k] += eps * torch.sin(math.pi * t)
        assert E(p) > r['energy']
    line = a + torch.linspace(0, 1, 17, dtype=torch.float64)[:, None] * (b - a)
    assert E(line) > r['energy'] and r['start_length'] > r['length']           # the straight line is no geodesic here

def test_frozen_hessian_is_the_energy_hessian_for_a_constant_metric():
    a, b = f64(0.0, 0.0), f64(1.0, 2.0)
    A = f64(2.0, 0.5, 0.5, 1.0).reshape(2, 2)
    const = lambda c: A + 0 * c.sum()
    E = lambda x: 6 * segment_quads(const, torch.cat([a[None], x.reshape(5, 2), b[None]])).sum()
    x = torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    H = torch.func.hessian(E)(x)
    assert torch.allclose(torch.from_numpy(frozen_energy_hessian(np.stack([A.numpy()] * 6))), H, atol=1e-12)
    assert (torch.from_numpy(frozen_energy_hessian(np.stack([gauss(f64(0.0, 1.0 + i)).numpy() for i in range(6)]))) - H).abs().max() > 0.1

def test_refine_keeps_the_polygon_and_the_step_check_verdict():
    line = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None] * f64(1.0, 2.0)
    assert torch.allclose(refine(line), torch.linspace(0, 1, 9, dtype=torch.float64)[:, None] * f64(1.0, 2.0))
    a, b = PAIRS[1]
    coarse = bvp_step_check(gauss, a, b, n=2, tol=1e-3, rtol=1e-12)              # 2 / 4 segments: far apart
    assert coarse['coarse']['converged'] and coarse['fine']['converged'] and not coarse['resolved'] and coarse['rel_diff'] > 1e-3
    fine = bvp_step_check(gauss, a, b, n=16, tol=5e-3, rtol=1e-12)
    assert fine['resolved'] and fine['rel_diff'] < 5e-3
    capped = bvp_step_check(gauss, a, b, n=16, tol=5e-3, rtol=1e-12, max_evals=2)  # close lengths but not converged: not resolved
    assert not capped['resolved'] and capped['coarse']['status'] == 'out of evaluations'

def test_one_segment_is_the_straight_line():
    a, b = PAIRS[0]
    r = bvp_geodesic(gauss, a, b, n=1)
    assert r['converged'] and r['evals'] == 1 and torch.equal(r['path'], torch.stack([a, b]))
    assert abs(r['length'] - float(gauss((a + b) / 2)[0, 0].sqrt() * 2)) < 1e-12

@pytest.fixture(scope='module')
def lm():
    tok = byte_tokenizer()
    m = random_llama(seed=0, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    P = dict(m.named_parameters())
    names = ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.mlp.up_proj.weight', 'model.layers.0.mlp.down_proj.weight']
    g = torch.Generator().manual_seed(3)
    tvs = [TaskVector({n: 0.2 * torch.randn(P[n].shape, generator=g) for n in names}, fingerprint(P, names)) for _ in range(2)]
    return lm_metric(m, make_split('general', 'eval', 1), tok, tvs)          # one text: every quad is a JVP through the model

def test_boundary_value_on_an_lm_converges_and_is_no_longer_than_the_straight_path(lm):
    "On a tiny random LM (float32): both solves converge and are resolved, the geodesic is not longer than the straight path, and bending it costs energy."
    a, b = f64(0.0, 0.0), f64(1.0, 0.0)
    chk = bvp_step_check(lm, a, b, n=1, tol=5e-2, rtol=1e-5, check_points=4)     # 1 and 2 segments: a JVP costs ~0.1 s here
    assert chk['coarse']['converged'] and chk['fine']['converged'] and chk['resolved'] and chk['recheck_diff'] < 1e-3
    f = chk['fine']
    line = a + torch.linspace(0, 1, 3, dtype=torch.float64)[:, None] * (b - a)
    assert f['length'] <= polygon_length(lm, line, points=4) * (1 + 1e-9)      # measured alike; here the two are almost equal
    p = f['path'].clone(); p[1:-1, 1] += 0.05
    assert 2 * float(segment_quads(lm, p).sum()) > f['energy']

def test_a_wall_narrower_than_a_segment_is_seen_by_the_nodes_or_refused():
    "Negative control for the quadrature: the midpoint rule misses a narrow wall entirely, two nodes see part of it, and the re-measurement with twice the nodes refuses the verdict."
    wall = lambda c: (1 + 300 * torch.exp(-((c[0] - 0.3) / 0.05) ** 2)) * torch.eye(2, dtype=torch.float64)
    a, b = f64(0.0, 0.0), f64(1.0, 0.0)
    seg = torch.stack([a, b])                                                  # midpoint 0.5: the wall at 0.3 is beside it
    assert abs(float(segment_quads(wall, seg, points=1)[0]) - 1) < 1e-4       # the midpoint rule sees an almost flat metric
    assert float(segment_quads(wall, seg)[0]) > 5                              # two nodes see part of the wall
    assert abs(polygon_length(wall, seg, points=64) / 2.9290578810986574 - 1) < 1e-6   # ∫√(1 + 300 e^{−((x − 0.3)/0.05)²}) dx by a fine trapezoid
    chk = bvp_step_check(wall, a, b, n=1, rtol=1e-12)
    assert chk['recheck_diff'] > 1e-2 and not chk['resolved']                # the 2-segment length is not resolved by 8 nodes: refused
