"Bootstrap intervals from stored per-text losses: coverage of a known root, existence frequency as a detector."
import numpy as np
from sitv.uncertainty import bootstrap_curves, crossing_intervals, best_alpha_interval, synthetic_sweep, synthetic_near_miss

def test_interval_covers_true_root_in_90_percent_of_trials():
    hits, trials = 0, 100
    for s in range(trials):
        grid, N, t = synthetic_sweep(n_texts=128, seed=1000 + s)        # population root at α* = 0.8
        cr, _ = crossing_intervals(grid, N.sum(1) / t.sum(), bootstrap_curves(N, t, 400, seed=s))
        hits += any(c['interval'][0] <= 0.8 <= c['interval'][1] for c in cr)
    assert hits / trials >= 0.90, hits / trials

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
