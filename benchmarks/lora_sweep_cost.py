"""LoRA-native sweep against merged-weight writes, measured side by side in one run (no assertions: the numbers are the result).

1. Adapter scaling: the adapter stays unmerged and `rescale_adapter_scale` sets every scaling to α·s (no weight writes).
2. Written weights: θ_base + α·ΔW written into the base model's weights (sitv's `displaced`), ΔW read from the adapter.
3. Fixed weights, for reference: the base model, and the unmerged adapter model at its own scaling.

Each scheme sweeps the same grid `--repeats` times, interleaved; the medians of seconds per α are compared.
Usage: python benchmarks/lora_sweep_cost.py [--step 0.1] [--task qa] [--repeats 3]
Writes benchmarks/results/<date>-lora-sweep-cost.{json,md}.
"""
import argparse, json, os, platform, statistics, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch
from sitv.data import make_split
from sitv.evaluate import evaluate
from sitv.grid import alpha_grid
from sitv.lora import AdapterVector, adapter_delta, load_adapter, lora_finetune
from sitv.model import SHIPPED, byte_tokenizer, load_model
from sitv.results import Results
from sitv.sweep import sweep

def main(step, task, repeats, batch_size=64):
    tok, base = byte_tokenizer(), load_model(SHIPPED)
    folder, info = lora_finetune(SHIPPED, task, progress=False)
    dW = adapter_delta(folder, base)
    pm = load_adapter(SHIPPED, folder)
    sets = {'general': make_split('general', 'eval', 128), task: make_split(task, 'eval', 64)}
    grid = alpha_grid(-0.5, 1.5, step)
    evaluate(base, sets, tok, batch_size=batch_size); evaluate(pm, sets, tok, batch_size=batch_size)   # warm-up, not timed
    times = {k: [] for k in ('adapter scaling', 'written weights', 'fixed: base', 'fixed: unmerged adapter')}
    for _ in range(repeats):
        for label, model, vec in (('adapter scaling', pm, AdapterVector(dW)), ('written weights', base, dW)):
            res = Results(Path(tempfile.mkdtemp()) / 'r.json', {'bench': label})
            sweep(model, vec, sets, tok, grid, res, batch_size=batch_size, progress=False)
            times[label] += [p['seconds'] for p in res.points]
        for label, model in (('fixed: base', base), ('fixed: unmerged adapter', pm)):
            for _ in range(len(grid)):
                t0 = time.perf_counter(); evaluate(model, sets, tok, batch_size=batch_size); times[label].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}',
               model=SHIPPED, task=task, adapter=dict(r=info['settings']['lora']['r'], tensors=len(dW), values=dW.numel()),
               grid_points=len(grid), repeats=repeats, eval_texts={k: len(v) for k, v in sets.items()}, batch_size=batch_size,
               median_seconds_per_alpha=med, n_timings={k: len(v) for k, v in times.items()},
               ratios=dict(scaling_over_writes=med['adapter scaling'] / med['written weights'],
                           writes_over_fixed_base=med['written weights'] / med['fixed: base'],
                           scaling_over_fixed_unmerged=med['adapter scaling'] / med['fixed: unmerged adapter']))
    d = Path(__file__).parent / 'results'; d.mkdir(exist_ok=True)
    stem = d / f"{out['date']}-lora-sweep-cost"
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1))
    md = [f"# LoRA sweep cost, {out['date']}", '',
          f"{out['machine']}; {SHIPPED} with a rank-{out['adapter']['r']} adapter on {len(dW)} weights, task {task}, {len(grid)} α points × {repeats} repeats, "
          f"eval texts {out['eval_texts']}, batch {batch_size}.", '', '| scheme | median s per α |', '|---|---|'] + \
         [f'| {k} | {v:.3f} |' for k, v in med.items()] + ['',
          f"adapter scaling ÷ written weights: {out['ratios']['scaling_over_writes']:.2f}; written weights ÷ fixed base: "
          f"{out['ratios']['writes_over_fixed_base']:.3f}; adapter scaling ÷ fixed unmerged adapter: {out['ratios']['scaling_over_fixed_unmerged']:.3f}."]
    stem.with_suffix('.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))
    return out

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--step', type=float, default=0.1); p.add_argument('--task', default='qa'); p.add_argument('--repeats', type=int, default=3)
    a = p.parse_args(); main(a.step, a.task, a.repeats)
