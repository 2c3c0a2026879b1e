"""The real model in the box (issue 26), measured side by side in one run on this machine.

1. Seconds per α of sitv's sweep on SmolLM2-135M-Instruct (θ_base read from its safetensors, T from a plain-loop full
   fine-tune or a plain-peft adapter, or a seeded random direction over every linear layer when none is given)
   beside a plain transformers loop a user would write: `model(**batch, labels=labels).loss` per right-padded batch of
   32 texts, fixed weights, the same texts. The ratio is sitv's seconds per α ÷ the plain loop's seconds per pass
   (medians of `--repeats`, alternated so drift hits both).
2. Each report's peak memory in copies of the weights, read from executed real-model report notebooks (`--reports
   DIR`: the line every report prints, "Peak … = X copies of the weights").

Usage: python benchmarks/real_model.py [--texts 32] [--points 3] [--repeats 3] [--vector DIR] [--reports reports]
Writes benchmarks/results/<date>-real-model.{json,md}."""
import argparse, json, os, platform, re, statistics, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch

HERE = Path(__file__).resolve().parent

def plain_loop(model, tok, texts, batch_size=32, max_len=256):
    "A user's evaluation: padded batches through the model with labels, the mean of the batch losses."
    losses = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            b = tok(texts[i:i + batch_size], return_tensors='pt', padding=True, truncation=True, max_length=max_len)
            labels = b['input_ids'].masked_fill(b['attention_mask'] == 0, -100)
            losses.append(model(**b, labels=labels).loss.item())
    return sum(losses) / len(losses)

def random_linear_tv(model, scale=1e-3, seed=0):
    from sitv.core import TaskVector, fingerprint
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    names = [n for n, p in params.items() if p.ndim == 2 and 'embed' not in n]
    return TaskVector({n: scale * torch.randn(params[n].shape, generator=g) for n in names}, fingerprint(params, names), 'float32', 'random')

def copies_from_reports(folders): # comma-separated folders of executed report notebooks
    "report -> its peak copies of the weights, the weights' GiB and the peak by section (where the report prints it)."
    out = {}
    for folder in str(folders).split(','):
        for nb in sorted(Path(folder).glob('*.ipynb')):
            text = '\n'.join(o.get('text', '') if isinstance(o.get('text', ''), str) else ''.join(o['text'])
                             for c in json.loads(nb.read_text())['cells'] for o in c.get('outputs', []))
            m = re.findall(r'= ([0-9.]+) copies of the weights \(([0-9.]+) GiB\)', text)
            if not m or float(m[-1][1]) < 0.1: continue            # a model under 0.1 GiB (sitv-tiny): the interpreter, not the weights, is its peak
            sec = re.findall(r'Peak by section, in copies: ([^\n]*)', text)
            sections = dict((k.strip(), float(v)) for k, v in re.findall(r'([^;]+?) ([0-9.]+)(?:;|$)', sec[-1])) if sec else {}
            out[nb.stem] = dict(copies=float(m[-1][0]), weights_gib=float(m[-1][1]), sections=sections)
    return out

def main(n_texts=32, points=3, repeats=3, vector=None, reports=None):
    from sitv.data import Example
    from sitv.model import load_model, load_tokenizer, n_params
    from sitv.real import stdlib_splits
    from sitv.results import Results
    from sitv.vectors import load_vector
    from sitv.sweep import sweep
    base, tok = load_model('smollm2'), load_tokenizer('smollm2')
    texts = stdlib_splits('code')['eval'][:n_texts]
    xs = [Example(prompt='', target=t) for t in texts]
    T = load_vector(base, vector, 'smollm2')[0] if vector else random_linear_tv(base)
    alphas = [0.25 * (i + 1) for i in range(points)]
    plain, per_alpha = [], []
    plain_loop(base, tok, texts[:4])                                   # warm-up: one-off costs out of both timings
    for r in range(repeats):
        t0 = time.perf_counter(); plain_loop(base, tok, texts); plain.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as d:
            res = Results(Path(d) / 'r.json', {'repeat': r})
            t0 = time.perf_counter(); sweep(base, T, {'code': xs}, tok, alphas, res, batch_size=32, progress=False)
            per_alpha.append((time.perf_counter() - t0) / points)
    out = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}',
               model='smollm2', parameters=n_params(base), texts=n_texts, points=points, repeats=repeats,
               vector=str(vector or 'random direction over every linear layer (scale 1e-3, seed 0)'), tv_mib=T.numel() * 4 / 2**20,
               plain_loop_s=plain, sitv_s_per_alpha=per_alpha,
               ratio=statistics.median(per_alpha) / statistics.median(plain),
               report_copies=copies_from_reports(reports) if reports else {})
    day = out['date']
    (HERE / 'results' / f'{day}-real-model.json').write_text(json.dumps(out, indent=1))
    md = [f"# Real model ({day}): {out['model']}, {out['parameters']:,} parameters, {out['machine']}", '',
          f"{n_texts} stdlib code texts; T {out['tv_mib']:.0f} MiB ({out['vector']}); {points} α points; medians of {repeats}.", '',
          '| what | seconds |', '|---|---:|',
          f"| plain transformers loop, one pass (batches of 32) | {statistics.median(plain):.2f} |",
          f"| sitv sweep, per α (write θ(α) from the safetensors base, score, KL off) | {statistics.median(per_alpha):.2f} |",
          f"| **ratio sitv ÷ plain** | **{out['ratio']:.3f}** |", '']
    if out['report_copies']:
        top = lambda v: max(v['sections'].items(), key=lambda kv: kv[1]) if v['sections'] else None
        md += ['| report | peak copies of the weights | section with the peak |', '|---|---:|---|'] + [
            f'| {k} | {v["copies"]:.2f} | ' + (f'{top(v)[0]} ({top(v)[1]:.2f})' if top(v) else '—') + ' |' for k, v in out['report_copies'].items()]
    (HERE / 'results' / f'{day}-real-model.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))
    return out

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--texts', type=int, default=32); ap.add_argument('--points', type=int, default=3)
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--vector'); ap.add_argument('--reports', help='comma-separated folders of executed real-model report notebooks')
    a = ap.parse_args()
    main(a.texts, a.points, a.repeats, a.vector, a.reports)
