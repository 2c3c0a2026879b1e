"""Peak memory of the pieces of the geometry and merging reports on the real model (issue 26), one piece at a time.

The reports print their peak by section; a section runs several functions, and the one to mend is the one that holds
the memory. This script loads SmolLM2-135M-Instruct (fp32) once, then runs each named piece alone and records the peak
of anonymous memory above the process before loading (`sitv.runtime.MemoryMeter`, sampled every 20 ms, glibc's free
pages handed back between pieces), in copies of the weights, and its seconds. The directions are the real inputs of
`scripts/make_reports.py` (`reports/inputs/real`): the plain-peft code adapter for geometry, the two plain-loop full
fine-tunes for the merges; the texts are the first `--texts` of the prose eval set.

Usage: python benchmarks/real_memory.py [--texts 4] [--pieces fq,kl,dd,rh,diag,hvp,lanczos,hutchinson,G,K,bvp,tsvc,ta,tsvm,ties,ties_tensor,dare,ada,ada_full]
Writes benchmarks/results/<date>-real-memory.{json,md}."""
import argparse, json, os, platform, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / 'reports' / 'inputs' / 'real'
WHAT = dict(fq='TᵀFT (one JVP pass)', kl='KL(p_base ‖ p_α) at 2 α', dd='g and TᵀHT by nested JVPs (α = 1)', rh='span Hessian of T (1 × 1)',
            diag='diagonal Fisher, sampled labels (per-text gradients streamed, diagonal file-backed)', hvp='one full-parameter Hessian-vector product (texts one at a time)',
            lanczos='λ_max by Lanczos, 2 steps and the Ritz vector', hutchinson='tr H by Hutchinson, 1 probe',
            lanczos_off='λ_max by Lanczos as above, what backward needs in scratch-file pages (offload_bytes 64 KiB)', hutchinson_off='tr H by Hutchinson as above, offloaded',
            G='plane metric G(c) of T and a random T₂ (1 text)', K='Gaussian curvature of that plane at one point (1 text)',
            bvp='gradient of the boundary-value energy of a 2-segment path in that plane (4 terms, each backwarded as it is computed)',
            tsvc='TSV-C of one full T (built)', ta='task arithmetic of two full T (built)', tsvm='TSV-M, polar (built)',
            ties='TIES, global trim (built)', ties_tensor="TIES, peft's per-tensor trim (built)", dare='DARE (built)',
            ada='AdaMerging layer-wise, entropy, 1 Adam step on the texts in one batch, blocks checkpointed (the default)',
            ada_full='the same with checkpoint_blocks=False (every activation kept for backward)')

def piece(name, base, tok, texts, T, tvs, fb):
    "Run one piece; what it returns is dropped at once."
    from sitv import geometry as geo, tsv
    from sitv.second_order import directional_derivatives
    if name == 'fq': geo.fisher_quadratic(base, texts, tok, T)
    elif name == 'kl': geo.kl_from_base(base, texts, tok, T, [0.1, 1.0])
    elif name == 'dd': directional_derivatives(base, texts, tok, T, alpha=1.0)
    elif name == 'rh': geo.restricted_hessian(base, texts, tok, [T])
    elif name == 'diag': geo.fisher_diagonal(base, texts, tok, 'sampled', 0, project=[T], batch_size=1, file_bytes=fb)
    elif name in ('hvp', 'lanczos', 'hutchinson', 'lanczos_off', 'hutchinson_off'):
        hv, pt = geo.hvp_fn(base, texts, tok, batch_size=1, offload_bytes=1 << 16 if name.endswith('_off') else None)
        if name == 'hvp': hv({k: torch.randn(p.shape, generator=torch.Generator().manual_seed(0)) for k, p in pt.items()})
        elif name.startswith('lanczos'): geo.top_hessian_eigenvalue(hv, pt, maxiter=2, file_bytes=fb)
        else: geo.hutchinson_trace(hv, pt, 1, file_bytes=fb)
    elif name in ('G', 'K', 'bvp'):
        G = geo.lm_metric(base, texts[:1], tok, [T, geo.lean_random_direction(T, 0, fb)])
        c = torch.tensor([0.5, 0.0], dtype=torch.float64)
        if name == 'bvp': geo.segment_quads(G, torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]], dtype=torch.float64, requires_grad=True), 2, backward=2)
        else: G(c) if name == 'G' else geo.gaussian_curvature(G, c)
    elif name == 'tsvc': tsv.tsv_compress(tvs[0], n_tasks=2, file_bytes=fb)
    elif name in ('ada', 'ada_full'):
        from sitv.coefficients import adamerging
        adamerging(base, tvs, {'prose': texts}, tok, 'layer', 'entropy', init=1.0, steps=1, batch_size=len(texts), checkpoint_blocks=name == 'ada')
    else: dict(ta=lambda: tsv.task_arithmetic(tvs, file_bytes=fb), tsvm=lambda: tsv.tsv_merge(tvs, None, 'polar', file_bytes=fb),
               ties=lambda: tsv.ties(tvs, 0.2, 'global', file_bytes=fb), ties_tensor=lambda: tsv.ties(tvs, 0.2, 'tensor', file_bytes=fb),
               dare=lambda: tsv.dare(tvs, 0.5, 0, file_bytes=fb))[name]()

def main(n_texts=4, pieces=tuple(WHAT)):
    from sitv.model import load_model, n_params
    from sitv.runtime import report_memory, rss_anon, weight_bytes
    from sitv.sources import model_tokenizer, eval_set
    from sitv.vectors import load_vector
    fb, meter = report_memory('cpu', 256)
    base = load_model('smollm2', torch.float32, 'cpu')
    tok, _ = model_tokenizer(base, 'smollm2', None, str(REAL / 'lora-code'))
    texts, _ = eval_set('general', tok, n_texts, str(REAL / 'data' / 'prose-eval.jsonl'))
    T = load_vector(base, str(REAL / 'lora-code'), 'smollm2', file_bytes=fb)[0]
    tvs = [load_vector(base, str(REAL / f), 'smollm2', file_bytes=fb)[0] for f in ('full-code', 'full-prose')] if any(p in pieces for p in ('tsvc', 'ta', 'tsvm', 'ties', 'ties_tensor', 'dare', 'ada', 'ada_full')) else []
    W, rows = weight_bytes(base), []
    meter.lap('load')
    start = (rss_anon() or 0) - meter.start_anon                  # what stays resident after loading (the pieces' own share is above it)
    for p in pieces:
        t0 = time.perf_counter(); piece(p, base, tok, texts, T, tvs, fb); s = time.perf_counter() - t0
        peak = meter.lap(p)
        rows.append(dict(piece=p, what=WHAT[p], copies=round(peak / W, 2), above_load=round((peak - start) / W, 2), seconds=round(s, 1)))
        print(rows[-1], flush=True)
    out = dict(date=time.strftime('%Y-%m-%d'), machine=platform.machine(), threads=torch.get_num_threads(), torch=torch.__version__,
               model='smollm2', parameters=n_params(base), weights_gib=W / 2**30, texts=n_texts, rows=rows)
    stem = HERE / 'results' / (f"{out['date']}-real-memory" + ('' if list(pieces) == list(WHAT) else '-' + '-'.join(pieces)))   # a subset: a file of its own
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1) + '\n')
    md = [f"# Peak memory by piece, real model ({out['date']}): smollm2, {out['parameters']:,} parameters, fp32 ({W / 2**30:.3f} GiB), "
          f"{platform.machine()}, {out['threads']} threads, torch {torch.__version__}", '',
          f'{n_texts} prose texts; adapter T (reports/inputs/real/lora-code) for geometry, the two full fine-tunes for the merges. '
          'Peak anonymous memory above the process before loading, in copies of the weights (the vectors and scratch files are file-backed).', '',
          '| piece | copies | of which after loading | seconds |', '|---|---:|---:|---:|']
    md += [f"| {r['what']} | {r['copies']:.2f} | {r['above_load']:.2f} | {r['seconds']:.1f} |" for r in rows]
    stem.with_suffix('.md').write_text('\n'.join(md) + '\n')
    print(f'wrote {stem}.json and .md')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--texts', type=int, default=4); ap.add_argument('--pieces', default=','.join(WHAT))
    a = ap.parse_args()
    unknown = [p for p in a.pieces.split(',') if p not in WHAT]
    if unknown: ap.error(f'unknown pieces {unknown}; known: {", ".join(WHAT)}')
    main(a.texts, a.pieces.split(','))
