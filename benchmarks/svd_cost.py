"""torch.svd_lowrank against the full SVD at the kept rank: time and error, side by side in one run (no assertions).

For the shipped model's task-vector matrices (qa fine-tune, k = ⌊min(m, n)/4⌋) and for larger synthetic matrices with a
decaying spectrum (the size where a randomised SVD is meant to pay off), each method is timed `--repeats` times
(medians) and the rank-k reconstruction error of svd_lowrank relative to the full SVD's is reported.
Usage: python benchmarks/svd_cost.py [--repeats 3]
Writes benchmarks/results/<date>-svd-cost.{json,md}.
"""
import argparse, json, os, platform, statistics, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch
from sitv.core import TaskVector
from sitv.finetune import finetune
from sitv.model import SHIPPED, load_model
from sitv.tsv import truncated_svd, default_k, is_matrix

def timed(f, repeats):
    ts, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter(); out = f(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out

def case(label, M, k, repeats):
    tf, (U, S, Vh) = timed(lambda: truncated_svd(M, k, 'full'), repeats)
    tl, (Ul, Sl, Vhl) = timed(lambda: truncated_svd(M, k, 'lowrank'), repeats)
    A = (U * S) @ Vh
    return dict(case=label, shape=list(M.shape), k=k, full_s=tf, lowrank_s=tl, speedup=tf / tl,
                rel_error=float(((Ul * Sl) @ Vhl - A).norm() / A.norm()), sigma_error=float(((Sl - S).abs() / S[0]).max()))

def main(repeats):
    base = load_model(SHIPPED)
    T = TaskVector.from_models(base, finetune(SHIPPED, 'qa', progress=False)[0])
    rows = []
    mats = [n for n in T.names if is_matrix(n, T[n])]
    tot = dict(full_s=0.0, lowrank_s=0.0, errs=[])
    for n in mats:
        r = case(n, T[n], default_k(T[n].shape, 4), repeats)
        tot['full_s'] += r['full_s']; tot['lowrank_s'] += r['lowrank_s']; tot['errs'].append(r['rel_error'])
    rows.append(dict(case=f'sitv-tiny qa T: all {len(mats)} matrices', shape='mixed', k='⌊min/4⌋', full_s=tot['full_s'], lowrank_s=tot['lowrank_s'],
                     speedup=tot['full_s'] / tot['lowrank_s'], rel_error=max(tot['errs']), sigma_error=None))
    g = torch.Generator().manual_seed(0)
    for m, n, k in ((1024, 1024, 64), (2048, 2048, 128), (4096, 1024, 64)):
        s = torch.logspace(0, -4, min(m, n), dtype=torch.float64)                  # a decaying spectrum, as task matrices have
        U = torch.linalg.qr(torch.randn(m, min(m, n), generator=g, dtype=torch.float64))[0]
        V = torch.linalg.qr(torch.randn(n, min(m, n), generator=g, dtype=torch.float64))[0]
        rows.append(case(f'synthetic {m}×{n}, σ from 1 to 1e-4', ((U * s) @ V.T).float(), k, repeats))
    out = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}',
               repeats=repeats, svd_lowrank=dict(oversample=8, niter=2), rows=rows)
    d = Path(__file__).parent / 'results'; d.mkdir(exist_ok=True)
    stem = d / f"{out['date']}-svd-cost"
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1))
    md = [f"# Randomised against full SVD, {out['date']}", '', f"{out['machine']}; medians of {repeats}; svd_lowrank with q = k + 8, 2 power iterations; float64.", '',
          '| case | k | full SVD s | svd_lowrank s | full ÷ lowrank | rank-k rel. error | max σ error / σ₁ |', '|---|---|---|---|---|---|---|'] + \
         [f"| {r['case']} | {r['k']} | {r['full_s']:.3f} | {r['lowrank_s']:.3f} | {r['speedup']:.2f} | {r['rel_error']:.2e} | "
          f"{'—' if r['sigma_error'] is None else format(r['sigma_error'], '.2e')} |" for r in rows]
    stem.with_suffix('.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))
    return out

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeats', type=int, default=3)
    main(p.parse_args().repeats)
