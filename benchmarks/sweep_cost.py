"""Cost of a sweep, measured side by side in one run (no assertions: the numbers are the result).

1. sitv's sweep: per α one pass over each eval set; per-category losses, L(2α) and exact match are derived.
2. The original tool's scheme per α: general pass + task pass + a second move to 2α with both passes again (its
   "squaring test") + a separate pass per general category.
3. Fixed weights: the same evaluation of an unmoved model, to price moving along T itself
   (sweep seconds per α ÷ fixed-weight seconds; goal ≤ 1.05).

Usage: python benchmarks/sweep_cost.py [--step 0.05] [--task qa]
Writes benchmarks/results/<date>-sweep-cost.{json,md}.
"""
import argparse, json, os, platform, statistics, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch
from sitv.core import TaskVector, displaced
from sitv.data import make_split
from sitv.evaluate import evaluate
from sitv.finetune import finetune
from sitv.grid import alpha_grid
from sitv.model import SHIPPED, load_model, byte_tokenizer
from sitv.results import Results
from sitv.sweep import sweep

def counter(model):
    n = [0]
    h = model.register_forward_hook(lambda *_: n.__setitem__(0, n[0] + 1))
    return n, h

def main(step, task, batch_size=64):
    tok, base = byte_tokenizer(), load_model(SHIPPED)
    T = TaskVector.from_models(base, finetune(SHIPPED, task, progress=False)[0])
    sets = {'general': make_split('general', 'eval', 128), task: make_split(task, 'eval', 64)}
    grid = alpha_grid(-0.5, 1.5, step)
    calls, hook = counter(base)
    evaluate(base, sets, tok, batch_size=batch_size)                       # warm-up, not timed

    # 3. fixed weights
    fixed = []
    for _ in range(len(grid)):
        t0 = time.perf_counter(); evaluate(base, sets, tok, batch_size=batch_size); fixed.append(time.perf_counter() - t0)
    # 1. sitv
    res = Results(Path(tempfile.mkdtemp()) / 'r.json', {'bench': True})
    calls[0] = 0
    t0 = time.perf_counter(); sweep(base, T, sets, tok, grid, res, batch_size=batch_size, progress=False); ours_total = time.perf_counter() - t0
    ours_calls = calls[0] / len(grid)
    ours = [p['seconds'] for p in res.points]
    # 2. the original scheme
    cats = sorted({e.category for e in sets['general']})
    theirs, calls[0] = [], 0
    with displaced(base, T) as move:
        for a in grid:
            t0 = time.perf_counter()
            move(a); evaluate(base, sets, tok, batch_size=batch_size)
            move(2 * a); evaluate(base, sets, tok, batch_size=batch_size)
            move(a)
            for c in cats: evaluate(base, {c: [e for e in sets['general'] if e.category == c]}, tok, batch_size=batch_size)
            theirs.append(time.perf_counter() - t0)
    theirs_calls = calls[0] / len(grid)
    hook.remove()
    out = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}',
               model=SHIPPED, task=task, grid_points=len(grid), eval_texts={k: len(v) for k, v in sets.items()}, batch_size=batch_size,
               sitv=dict(forward_calls_per_alpha=ours_calls, median_seconds_per_alpha=statistics.median(ours), total_seconds=ours_total),
               original_scheme=dict(forward_calls_per_alpha=theirs_calls, median_seconds_per_alpha=statistics.median(theirs)),
               fixed_weights=dict(median_seconds=statistics.median(fixed)))
    out['ratios'] = dict(original_over_sitv_seconds=out['original_scheme']['median_seconds_per_alpha'] / out['sitv']['median_seconds_per_alpha'],
                         original_over_sitv_forward_calls=theirs_calls / ours_calls,
                         sitv_over_fixed_seconds=out['sitv']['median_seconds_per_alpha'] / out['fixed_weights']['median_seconds'])
    d = Path(__file__).parent / 'results'; d.mkdir(exist_ok=True)
    stem = d / f"{out['date']}-sweep-cost"
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1))
    md = [f"# Sweep cost, {out['date']}", '', f"{out['machine']}; {SHIPPED}, task {task}, {len(grid)} α points, eval texts {out['eval_texts']}, batch {batch_size}.", '',
          '| scheme | forward calls per α | median s per α |', '|---|---|---|',
          f"| sitv sweep | {ours_calls:.1f} | {out['sitv']['median_seconds_per_alpha']:.3f} |",
          f"| original scheme (general + task + L(2α) + per-category passes) | {theirs_calls:.1f} | {out['original_scheme']['median_seconds_per_alpha']:.3f} |",
          f"| fixed weights (no move) | {ours_calls:.1f} | {out['fixed_weights']['median_seconds']:.3f} |", '',
          f"original ÷ sitv: {out['ratios']['original_over_sitv_seconds']:.2f}× the time, {out['ratios']['original_over_sitv_forward_calls']:.2f}× the forward calls; "
          f"sitv ÷ fixed weights: {out['ratios']['sitv_over_fixed_seconds']:.3f} (the cost of moving along T and measuring the displacement)."]
    stem.with_suffix('.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--step', type=float, default=0.05); p.add_argument('--task', default='qa')
    a = p.parse_args(); main(a.step, a.task)
