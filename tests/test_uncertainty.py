"Bootstrap intervals from stored per-text losses: coverage of a known root, existence frequency as a detector, matching by direction."
import subprocess, sys
import numpy as np
from sitv.uncertainty import bootstrap_curves, crossing_intervals, best_alpha_interval, synthetic_sweep, synthetic_near_miss

def coverage(trials, n_texts, n_boot=400, studentised=True):
    "Fraction of independent samples of texts whose 95% interval contains the population root α* = 0.8."
    from sitv.uncertainty import bootstrap_counts
    hits = 0
    for s in range(trials):
        grid, N, t = synthetic_sweep(n_texts=n_texts, seed=1000 + s)
        C = bootstrap_counts(n_texts, n_boot, seed=s)
        kw = dict(nll=N, counts=C) if studentised else {}
        cr, _ = crossing_intervals(grid, N.sum(1) / t.sum(), bootstrap_curves(N, t, counts=C), **kw)
        hits += any(c['interval'][0] <= 0.8 <= c['interval'][1] for c in cr)
    return hits / trials

def test_studentised_interval_covers_at_95_percent_within_binomial_error():
    "2,000 samples of 32 texts: coverage within 3 binomial SEs of 0.95 (the percentile interval measured 0.921 here)."
    trials = 2000
    cov = coverage(trials, n_texts=32)
    assert abs(cov - 0.95) <= 3 * np.sqrt(0.95 * 0.05 / trials), cov

def test_intervals_say_their_method():
    grid, N, t = synthetic_sweep(n_texts=64, seed=7)
    from sitv.uncertainty import bootstrap_counts
    C = bootstrap_counts(64, 200)
    B = bootstrap_curves(N, t, counts=C)
    assert [c['method'] for c in crossing_intervals(grid, N.sum(1) / t.sum(), B)[0]] == ['percentile']
    st = crossing_intervals(grid, N.sum(1) / t.sum(), B, nll=N, counts=C)[0]
    assert [(c['method'], c['level']) for c in st] == [('studentised', 0.95)]
    assert (B == bootstrap_curves(N, t, 200)).all()                     # the same resamples as before the counts were kept

def drifting_dip(drifts):
    "A measured curve dipping below L(0) between 0.5 (down) and 0.6 (up), and resampled curves whose whole dip is moved by each drift."
    from sitv.grid import alpha_grid
    grid = alpha_grid(-0.5, 1.5, 0.01)
    dip = lambda d: 1 + grid * (grid - 0.5 - d) * (grid - 0.6 - d)
    return grid, dip(0.0), np.stack([dip(d) for d in drifts])

def test_two_close_crossings_of_opposite_sign_matched_by_direction():
    d = np.random.default_rng(0).normal(0, 0.04, 1000)
    assert (d > 0.05).mean() > 0.05                                          # many down-roots pass the midpoint to the up-crossing
    grid, L, B = drifting_dip(d)
    cr, extra = crossing_intervals(grid, L, B)
    assert [c['direction'] for c in cr] == ['down', 'up']
    assert [c['exists'] for c in cr] == [1.0, 1.0] and extra == 0.0          # every resample has both crossings
    assert np.allclose(cr[0]['interval'], np.percentile(0.5 + d, [2.5, 97.5]), atol=1e-3)
    assert np.allclose(cr[1]['interval'], np.percentile(0.6 + d, [2.5, 97.5]), atol=1e-3)

def test_drifted_down_root_still_counts_for_the_down_crossing():
    "The probe: every resample's dip moved right by 0.06–0.09, so each down-root lies nearer the measured up-crossing."
    grid, L, B = drifting_dip(np.linspace(0.06, 0.09, 31))
    cr, extra = crossing_intervals(grid, L, B)
    assert [c['exists'] for c in cr] == [1.0, 1.0] and extra == 0.0
    assert 0.55 < cr[0]['interval'][0] < cr[0]['interval'][1] < 0.6

def test_roots_of_the_other_direction_are_never_matched():
    "Negative controls: resamples with only an up-crossing near the dip, and resamples that never cross."
    grid, L, _ = drifting_dip([0.0])
    only_up = np.stack([1 + grid * (grid - x) for x in np.linspace(0.51, 0.59, 9)])
    cr, extra = crossing_intervals(grid, L, only_up)
    assert [c['exists'] for c in cr] == [0.0, 1.0] and extra == 0.0 and np.isnan(cr[0]['interval']).all()
    cr, extra = crossing_intervals(grid, L, np.stack([1 + grid ** 2 + s for s in range(5)]))
    assert [c['exists'] for c in cr] == [0.0, 0.0] and extra == 0.0

def test_existence_frequency_positive_and_negative_control():
    real = []
    for s in range(20):
        grid, N, t = synthetic_sweep(seed=200 + s)
        cr, _ = crossing_intervals(grid, N.sum(1) / t.sum(), bootstrap_curves(N, t, 300, seed=s))
        real += [c['exists'] for c in cr]
    assert len(real) >= 20 and np.mean(np.array(real) >= 0.95) >= 0.9       # a real crossing is found and stable
    spurious, established, samples = [], 0, 60
    for s in range(samples):
        g0, N0, t0 = synthetic_near_miss(seed=300 + s)                      # population touches L(0), never crosses
        cr0, _ = crossing_intervals(g0, N0.sum(1) / t0.sum(), bootstrap_curves(N0, t0, 300, seed=s))
        spurious += [c['exists'] for c in cr0]; established += any(c['exists'] >= 0.95 for c in cr0)
    assert len(spurious) >= 20                                              # the control is exercised
    assert np.mean(spurious) < 0.85 and established / samples <= 0.12

def test_best_alpha_interval_contains_population_minimum():
    grid, N, t = synthetic_sweep(n_texts=128, b_mean=-1.0, c=1.0, seed=5)   # population minimum at 0.5
    lo, hi = best_alpha_interval(grid, bootstrap_curves(N, t, 300))
    assert lo < 0.5 < hi and hi - lo < 0.5

def test_numerics_import_without_torch():
    code = "import sys, sitv, sitv.grid, sitv.curves, sitv.uncertainty, sitv.adaptive; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip() == '[]'
