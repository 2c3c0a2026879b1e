"""Gaussian curvature of the plane of T and a random T₂ on the real model: one nested forward-mode pass (`sitv.geometry`
now: ∂Γ with Γ and G as values of the same pass, `jacfwd(has_aux=True)`) against the three passes it replaced (Γ, then
∂Γ by `jacfwd` of Γ, then G), measured side by side, alternated, in one process. Also the Christoffel symbols, with G
from the same pass against G computed again. Same numbers either way (checked here to 1e-10 relative).

Usage: python benchmarks/curvature_cost.py [--repeats 2]
Writes benchmarks/results/<date>-curvature-cost.{json,md}."""
import argparse, json, os, platform, statistics, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / 'reports' / 'inputs' / 'real'

def three_passes(metric, c): # the previous `gaussian_curvature`
    from sitv.geometry import _christoffel, _jac
    chris = lambda x: _christoffel(metric(x), _jac(metric, x))
    Gam, dGam = chris(c), _jac(chris, c)
    R = (dGam.permute(1, 3, 0, 2) - dGam.permute(1, 3, 2, 0) + torch.einsum('ace,edb->abcd', Gam, Gam) - torch.einsum('ade,ecb->abcd', Gam, Gam))
    G = metric(c)
    return (G[0] @ R[:, 1, 0, 1]) / torch.linalg.det(G)

def main(repeats=2):
    from sitv import geometry as geo
    from sitv.model import load_model
    from sitv.sources import model_tokenizer, eval_set
    from sitv.vectors import load_vector
    base = load_model('smollm2', torch.float32, 'cpu')
    tok, _ = model_tokenizer(base, 'smollm2', None, str(REAL / 'lora-code'))
    texts, _ = eval_set('general', tok, 1, str(REAL / 'data' / 'prose-eval.jsonl'))
    T = load_vector(base, str(REAL / 'lora-code'), 'smollm2', file_bytes=0)[0]
    G = geo.lm_metric(base, texts, tok, [T, geo.lean_random_direction(T, 0, 0)])
    c = torch.tensor([0.5, 0.0], dtype=torch.float64)
    ways = dict(K_one_pass=lambda: geo.gaussian_curvature(G, c), K_three_passes=lambda: three_passes(G, c),
                christoffel_one_pass=lambda: geo.christoffel(G, c), christoffel_two_passes=lambda: geo._christoffel(G(c), geo._jac(G, c)))
    secs, vals = {k: [] for k in ways}, {}
    for _ in range(repeats):
        for k, f in ways.items():
            t0 = time.perf_counter(); vals[k] = f(); secs[k].append(time.perf_counter() - t0); print(k, f'{secs[k][-1]:.1f} s', flush=True)
    rel = lambda a, b: float((vals[a] - vals[b]).abs().max() / vals[b].abs().max())
    out = dict(date=time.strftime('%Y-%m-%d'), machine=f'{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}',
               model='smollm2', texts=1, repeats=repeats, seconds=secs, K=float(vals['K_one_pass']),
               rel_diff_K=rel('K_one_pass', 'K_three_passes'), rel_diff_christoffel=rel('christoffel_one_pass', 'christoffel_two_passes'))
    assert out['rel_diff_K'] < 1e-10 and out['rel_diff_christoffel'] < 1e-10, out
    med = {k: statistics.median(v) for k, v in secs.items()}
    md = [f"# Curvature cost, real model ({out['date']}): smollm2, {out['machine']}", '',
          f"The plane of the plain-peft code adapter T and a random T₂ at c = (0.5, 0), one prose text; medians of {repeats}, alternated.", '',
          '| what | seconds |', '|---|---:|',
          f"| Gaussian curvature, one nested pass (now) | {med['K_one_pass']:.1f} |", f"| Gaussian curvature, three passes (before) | {med['K_three_passes']:.1f} |",
          f"| **ratio now ÷ before** | **{med['K_one_pass'] / med['K_three_passes']:.2f}** |",
          f"| Christoffel symbols, G from the same pass (now) | {med['christoffel_one_pass']:.1f} |", f"| Christoffel symbols, G again (before) | {med['christoffel_two_passes']:.1f} |",
          f"| **ratio now ÷ before** | **{med['christoffel_one_pass'] / med['christoffel_two_passes']:.2f}** |", '',
          f"K = {out['K']:+.6f}; largest relative difference now − before: K {out['rel_diff_K']:.1e}, Γ {out['rel_diff_christoffel']:.1e}."]
    stem = HERE / 'results' / f"{out['date']}-curvature-cost"
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1) + '\n'); stem.with_suffix('.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0]); ap.add_argument('--repeats', type=int, default=2)
    main(ap.parse_args().repeats)
