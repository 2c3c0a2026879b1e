"""Cost of moving along T, measured side by side in one run (no assertions: the numbers are the result).

For one model, direction and eval sets, every scheme evaluates the same α grid (`repeats` times, interleaved):
1. fixed weights: the same evaluation of an unmoved model — the price of an evaluation alone;
2. sitv's sweep: θ_base + αT written in place from a pristine copy, one pass per eval set per α, the displacement measured;
3. the original tool's scheme: general + task + a second move to 2α with both passes again (its "squaring test")
   + a separate pass per general category;
4. reload: the model read again from disk for every α, then θ_base + αT added;
5. deep copy: `copy.deepcopy` of the model for every α, then θ_base + αT added.
The headline ratio is sitv's sweep wall time ÷ (points × one fixed-weight evaluation): the cost of moving (goal ≤ 1.05).

Usage: python benchmarks/sweep_cost.py [--step 0.05] [--task qa] [--repeats 1]
Writes benchmarks/results/<date>-sweep-cost.{json,md}; `benchmarks/run.py` calls `measure` for several models.
"""
import argparse, copy, json, os, platform, statistics, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch
from sitv.core import TaskVector, displaced
from sitv.data import make_split
from sitv.evaluate import evaluate
from sitv.finetune import finetune
from sitv.grid import alpha_grid
from sitv.model import SHIPPED, load_model, byte_tokenizer, n_params
from sitv.results import Results
from sitv.sweep import sweep

SCHEMES = ('fixed', 'sitv', 'original', 'reload', 'deepcopy')

def machine(): return f'{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}'

def counter(model):
    n = [0]
    h = model.register_forward_hook(lambda *_: n.__setitem__(0, n[0] + 1))
    return n, h

@torch.no_grad()
def add_alpha(model, T, a):
    "Write θ + αT into a fresh copy (the naive schemes start from an unmoved model every time, so nothing accumulates)."
    for n, p in model.named_parameters():
        if n in T.deltas: p.copy_((p.float() + a * T[n]).to(p.dtype))

def measure(base, T, sets, tok, grid, repeats=1, batch_size=64, schemes=SCHEMES, label=''):
    "Seconds per α of each scheme (medians over the grid and repeats), forward calls per α, and the ratios."
    tmp = Path(tempfile.mkdtemp())
    if 'reload' in schemes: base.save_pretrained(tmp / 'model')            # once, not timed
    cats = sorted({e.category for e in sets['general']})
    evaluate(base, sets, tok, batch_size=batch_size)                       # warm-up, not timed
    ev = lambda m, s=sets: evaluate(m, s, tok, batch_size=batch_size)
    secs, calls = {s: [] for s in schemes}, {}
    walls, fixed_totals = [], []
    n, hook = counter(base)
    for r in range(repeats):
        for s in schemes:
            n[0] = 0
            if s == 'fixed':
                for a in grid: t0 = time.perf_counter(); ev(base); secs[s].append(time.perf_counter() - t0)
                fixed_totals.append(sum(secs[s][-len(grid):]))
            elif s == 'sitv':
                res = Results(tmp / f'r{r}.json', {'bench': label, 'repeat': r})
                t0 = time.perf_counter(); sweep(base, T, sets, tok, grid, res, batch_size=batch_size, progress=False)
                wall = time.perf_counter() - t0; walls.append(wall); secs[s] += [wall / len(grid)] * len(grid)
            elif s == 'original':
                with displaced(base, T) as move:
                    for a in grid:
                        t0 = time.perf_counter()
                        move(a); ev(base); move(2 * a); ev(base); move(a)
                        for c in cats: ev(base, {c: [e for e in sets['general'] if e.category == c]})
                        secs[s].append(time.perf_counter() - t0)
            elif s in ('reload', 'deepcopy'):
                for a in grid:
                    t0 = time.perf_counter()
                    m = load_model(tmp / 'model') if s == 'reload' else copy.deepcopy(base)
                    add_alpha(m, T, a); ev(m); del m
                    secs[s].append(time.perf_counter() - t0)
            calls[s] = n[0] / len(grid) if s in ('fixed', 'sitv', 'original') else calls.get('fixed')
    hook.remove()
    pairs = []
    if 'fixed' in schemes and 'sitv' in schemes:
        # the move itself, timed tightly against its neighbours: per α, one evaluation at the base, then writing θ(α), evaluating
        # and measuring the realised distance, as the sweep does; whole-sweep blocks above also carry this machine's drift
        with displaced(base, T) as move:
            for a in grid:
                move(0.0); t0 = time.perf_counter(); ev(base); f = time.perf_counter() - t0
                t0 = time.perf_counter(); move(a); ev(base); move.distance(); pairs.append((time.perf_counter() - t0) / f)
    med = {s: statistics.median(v) for s, v in secs.items()}
    out = dict(label=label, n_params=n_params(base), dtype=str(next(base.parameters()).dtype).replace('torch.', ''),
               grid_points=len(grid), repeats=repeats, eval_texts={k: len(v) for k, v in sets.items()}, batch_size=batch_size,
               median_seconds_per_alpha=med, forward_calls_per_alpha=calls, sitv_wall_seconds=walls)
    rt = {}
    # the fastest repeat of each: this machine's speed drifts by ±15% between seconds (other tenants), which only ever slows a run down
    if 'fixed' in med and 'sitv' in med: rt['sitv_sweep_over_fixed'] = min(walls) / min(fixed_totals)
    if 'fixed' in med and 'sitv' in med: rt['sitv_sweep_over_fixed_medians'] = statistics.median(walls) / (len(grid) * med['fixed'])
    if pairs: rt['move_over_fixed_interleaved'] = statistics.median(pairs)
    for s in ('original', 'reload', 'deepcopy'):
        if s in med and 'sitv' in med: rt[f'{s}_over_sitv'] = med[s] / med['sitv']
    if 'original' in calls and 'sitv' in calls: rt['original_over_sitv_forward_calls'] = calls['original'] / calls['sitv']
    out['ratios'] = rt
    return out

def markdown(o):
    names = dict(fixed='fixed weights (no move)', sitv='sitv sweep (in place from a pristine copy)',
                 original='original scheme (general + task + L(2α) + per-category passes)',
                 reload='reload the model from disk per α', deepcopy='deep-copy the model per α')
    md = [f"{o['label']}: {o['n_params']:,} parameters ({o['dtype']}), {o['grid_points']} α points × {o['repeats']} repeat(s), "
          f"eval texts {o['eval_texts']}, batch {o['batch_size']}.", '', '| scheme | median s per α | forward calls per α |', '|---|---|---|']
    md += [f"| {names[s]} | {v:.3f} | {'—' if o['forward_calls_per_alpha'].get(s) is None else format(o['forward_calls_per_alpha'][s], '.1f')} |"
           for s, v in o['median_seconds_per_alpha'].items()]
    return md + ['', '; '.join(f'{k.replace("_", " ")}: {v:.3f}' for k, v in o['ratios'].items())]

def main(step, task, repeats, batch_size=64):
    tok, base = byte_tokenizer(), load_model(SHIPPED)
    T = TaskVector.from_models(base, finetune(SHIPPED, task, progress=False)[0])
    sets = {'general': make_split('general', 'eval', 128), task: make_split(task, 'eval', 64)}
    out = measure(base, T, sets, tok, alpha_grid(-0.5, 1.5, step), repeats, batch_size, label=f'{SHIPPED}, {task} T')
    out.update(date=time.strftime('%Y-%m-%d'), machine=machine())
    d = Path(__file__).parent / 'results'; d.mkdir(exist_ok=True)
    stem = d / f"{out['date']}-sweep-cost"
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1))
    md = [f"# Sweep cost, {out['date']}", '', out['machine'], ''] + markdown(out)
    stem.with_suffix('.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))
    return out

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--step', type=float, default=0.05); p.add_argument('--task', default='qa'); p.add_argument('--repeats', type=int, default=1)
    a = p.parse_args(); main(a.step, a.task, a.repeats)
