"""Choosing merge coefficients (issue 28): AdaMerging's gradient descent on the coefficients against a validation grid
search over the same number of coefficients, in one run on the shipped model's four task vectors (no assertions: the
numbers are the result).

Both minimise the same objective, the criterion the merging report chooses α by: the mean over the four tasks of their
validation loss weighted by 1/(L_base − L_ft), i.e. minus the mean normalised gain up to a constant.
- grid: every combination of `--grid` values for the four task-wise coefficients (g⁴ forward passes over the validation
  sets; a layer-wise grid, 20 coefficients, would need g²⁰);
- AdaMerging task-wise and layer-wise (`sitv.coefficients.adamerging`, objective 'nll'), `--steps` Adam steps from
  task arithmetic's best single α, each a forward and a backward pass over the same sets.
For each: passes, seconds, the best objective found, and the mean normalised gain of its choice on the held-out eval
split (which no choice reads). The objective AdaMerging reports at its start is checked against the grid's evaluation of
the same coefficients.

Usage: python benchmarks/adamerging_cost.py [--grid 0.25,0.5,0.75,1.0,1.25] [--steps 30] [--n-val 32] [--n-eval 64]
Writes benchmarks/results/<date>-adamerging.{json,md}; `benchmarks/run.py` calls `main` as its section 8.
"""
import argparse, itertools, json, os, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
HERE = Path(__file__).resolve().parent
import numpy as np
import torch

TASKS = ['sentiment_positive', 'sentiment_negative', 'qa', 'instruction_following']

def main(grid=(0.25, 0.5, 0.75, 1.0, 1.25), steps:int=30, n_val:int=32, n_eval:int=64):
    from sitv.coefficients import adamerging, coefficient_vector
    from sitv.core import TaskVector, displaced
    from sitv.data import make_split
    from sitv.evaluate import evaluate
    from sitv.finetune import finetune
    from sitv.model import load_model, load_tokenizer
    from sitv.tsv import normalised_gain
    torch.manual_seed(0)
    base, tok = load_model('sitv-tiny'), load_tokenizer('sitv-tiny')
    tvs = [TaskVector.from_models(base, finetune('sitv-tiny', t, steps=150)[0], source=t) for t in TASKS]
    val = {t: make_split(t, 'val', n_val) for t in TASKS}
    ev = {t: make_split(t, 'eval', n_eval) for t in TASKS}
    losses = lambda sets: {t: r['loss'] for t, r in evaluate(base, sets, tok, batch_size=64).items()}
    lb_val, lb_ev = losses(val), losses(ev)
    lf_val, lf_ev = {}, {}
    for t, T in zip(TASKS, tvs):
        with displaced(base, T, 1.0): lf_val[t], lf_ev[t] = losses({t: val[t]})[t], losses({t: ev[t]})[t]
    w = {t: 1 / (lb_val[t] - lf_val[t]) for t in TASKS}
    J = lambda L: float(np.mean([w[t] * L[t] for t in TASKS]))                # AdaMerging's 'nll' objective with these weights
    gain = lambda L, lb, lf: float(np.mean([normalised_gain(lb[t], L[t], lf[t]) for t in TASKS]))
    task_wise = {n: 0 for n in tvs[0].names}
    def at(lam, index, sets):
        with displaced(base, coefficient_vector(tvs, torch.as_tensor(lam, dtype=torch.float64), index), 1.0): return losses(sets)
    # task arithmetic's single α (the start of AdaMerging), on the same grid values
    t0 = time.perf_counter()
    ta = {a: J(at([[a]] * 4, task_wise, val)) for a in grid}
    a_ta = min(ta, key=ta.get); s_ta = time.perf_counter() - t0
    # the grid over four coefficients
    t0 = time.perf_counter(); best = (np.inf, None)
    for combo in itertools.product(grid, repeat=len(TASKS)):
        j = J(at([[c] for c in combo], task_wise, val))
        if j < best[0]: best = (j, combo)
    s_grid = time.perf_counter() - t0
    rows = [dict(method=f'task arithmetic, one α on the grid ({len(grid)} values)', coefficients=1, forward=len(grid), backward=0, seconds=s_ta,
                 objective=ta[a_ta], eval_gain=gain(at([[a_ta]] * 4, task_wise, ev), lb_ev, lf_ev), choice=[a_ta]),
            dict(method=f'grid over the four task-wise coefficients ({len(grid)}⁴)', coefficients=4, forward=len(grid) ** 4, backward=0, seconds=s_grid,
                 objective=best[0], eval_gain=gain(at([[c] for c in best[1]], task_wise, ev), lb_ev, lf_ev), choice=list(best[1]))]
    for gran in ('task', 'layer'):
        r = adamerging(base, tvs, val, tok, gran, 'nll', init=a_ta, steps=steps, lr=0.05, bounds=(0.0, 2.0), weights=w, batch_size=64)
        start_check = abs(r['history'][0] - ta[a_ta]) / ta[a_ta]
        rows.append(dict(method=f'AdaMerging {gran}-wise, {steps} Adam steps from α = {a_ta:g}', coefficients=r['lam'].numel(), forward=r['passes']['forward'],
                         backward=r['passes']['backward'], seconds=r['seconds'] + s_ta, objective=r['objective'],
                         eval_gain=gain(at(r['lam'], r['index'], ev), lb_ev, lf_ev), choice=[round(x, 3) for x in r['lam'].flatten().tolist()],
                         start_objective_vs_grid=start_check))
    return dict(grid=list(grid), steps=steps, n_val=n_val, n_eval=n_eval, torch=torch.__version__, threads=torch.get_num_threads(), rows=rows)

def rows(o):
    md = ['| choice | coefficients | forward passes | backward passes | seconds | validation objective (lower is better) | mean normalised gain on eval |',
          '|---|---:|---:|---:|---:|---:|---:|']
    md += [f"| {r['method']} | {r['coefficients']} | {r['forward']:,} | {r['backward']} | {r['seconds']:.1f} | {r['objective']:.4f} | {r['eval_gain']:.3f} |" for r in o['rows']]
    return '\n'.join(md) + '\n'

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--grid', default='0.25,0.5,0.75,1.0,1.25'); p.add_argument('--steps', type=int, default=30)
    p.add_argument('--n-val', type=int, default=32); p.add_argument('--n-eval', type=int, default=64)
    a = p.parse_args()
    o = main(tuple(float(x) for x in a.grid.split(',')), a.steps, a.n_val, a.n_eval)
    stamp = time.strftime('%Y-%m-%d')
    (HERE / 'results' / f'{stamp}-adamerging.json').write_text(json.dumps(o, indent=1))
    md = (f"# AdaMerging against a validation grid ({stamp}; torch {o['torch']}, {o['threads']} threads; shipped model, four task vectors, "
          f"{o['n_val']} validation and {o['n_eval']} eval texts per task)\n\n" + rows(o)
          + '\nA forward (backward) pass is one over all four validation sets. Seconds include the single-α grid AdaMerging starts from. '
          + 'AdaMerging\'s objective at its start against the grid\'s evaluation of the same coefficients: relative difference '
          + ', '.join(f"{r['start_objective_vs_grid']:.1e}" for r in o['rows'] if 'start_objective_vs_grid' in r) + '.\n')
    (HERE / 'results' / f'{stamp}-adamerging.md').write_text(md); print(md)
