"""Per-example gradients for the diagonal Fisher: torch.func vmap (warmed up) against a Python loop, side by side in one run.

On the shipped model and general eval texts, `sitv.geometry.per_example_grads` is run with `vectorized=True` and
`vectorized=False` over the same texts and label draws; both are timed `--repeats` times after one warm-up pass each
(vmap's first call traces and is slower), and the largest difference between their gradients is reported (no assertions).
Usage: python benchmarks/fisher_cost.py [--texts 32] [--batch-size 8] [--repeats 3]
Writes benchmarks/results/<date>-fisher-cost.{json,md}.
"""
import argparse, json, os, platform, statistics, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch
from sitv.data import make_split
from sitv.geometry import per_example_grads
from sitv.model import SHIPPED, load_model, load_tokenizer, n_params

def run(model, texts, tok, bs, vec):
    return [(idx, gs) for idx, _, gs in per_example_grads(model, texts, tok, 'sampled', 0, batch_size=bs, vectorized=vec)]

def main(n_texts, bs, repeats):
    model, tok = load_model(SHIPPED), load_tokenizer(SHIPPED)
    texts = make_split('general', 'eval', n_texts)
    res, times = {}, {}
    for vec in (True, False):
        res[vec] = run(model, texts, tok, bs, vec)                      # warm-up (and the gradients to compare)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter(); run(model, texts, tok, bs, vec); ts.append(time.perf_counter() - t0)
        times[vec] = statistics.median(ts)
    diff = max(float((a[n] - b[n]).abs().max()) for (_, a), (_, b) in zip(res[True], res[False]) for n in a)
    scale = max(float(a[n].abs().max()) for _, a in res[True] for n in a)
    out = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}',
               model=SHIPPED, n_params=n_params(model), texts=n_texts, batch_size=bs, repeats=repeats,
               vmap_s=times[True], loop_s=times[False], loop_over_vmap=times[False] / times[True], max_abs_diff=diff, max_abs_grad=scale)
    d = Path(__file__).parent / 'results'; d.mkdir(exist_ok=True)
    stem = d / f"{out['date']}-fisher-cost"
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1))
    md = [f"# Per-example gradients: vmap against a loop, {out['date']}", '',
          f"{out['machine']}; {SHIPPED} ({out['n_params']:,} parameters), {n_texts} general texts in batches of {bs}, sampled labels; "
          f"medians of {repeats} after one warm-up each.", '',
          '| vmap s | loop s | loop ÷ vmap | max |vmap − loop| | max |gradient| |', '|---|---|---|---|---|',
          f"| {times[True]:.3f} | {times[False]:.3f} | {out['loop_over_vmap']:.2f} | {diff:.1e} | {scale:.2e} |"]
    stem.with_suffix('.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))
    return out

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--texts', type=int, default=32); p.add_argument('--batch-size', type=int, default=8); p.add_argument('--repeats', type=int, default=3)
    a = p.parse_args(); main(a.texts, a.batch_size, a.repeats)
