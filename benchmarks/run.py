"""Every performance figure of sitv in one run, side by side (no assertions: the numbers are the result).

1. The cost of moving along T (`sweep_cost.measure`) on the shipped model and on a randomly initialised ~26M-parameter
   Llama built from a config (short grid): fixed weights, sitv's sweep, the original tool's scheme, reloading the model
   from disk per α and deep-copying it per α.
2. Adapter scaling against merged-weight writes (`lora_sweep_cost.main`).
3. Peak anonymous memory (RssAnon) of a sweep against a fixed-weight evaluation of the same model, in units of the
   model's fp32 size, each in a fresh process: fp32 storage, and bf16 storage (the low-memory mode on a CPU: model and
   pristine copy in bf16, T in fp32).
4. Building T by streaming over a synthetic sharded bf16 checkpoint of `--stream-gb` GB per model (in a fresh
   process): peak RssAnon ÷ the largest shard, against loading both state dicts (safetensors maps them) and
   building T in memory.
5. Half precision: the shipped model stored in bf16 and fp16, moved along the qa T by `displaced` (θ(α) in fp32, cast
   once): the realised displacement ratio and relative error, and the loss difference against the fp32 model.
6. Per-example gradients, vmap against a loop (`fisher_cost.main`); randomised against full SVD (`svd_cost.main`).
7. No full logits (`logits_cost.main`): peak memory of `score` on a tiny config with a 262,144-token vocabulary at 64 ×
   256 tokens against the removed whole-batch-logits path, and seconds per evaluation, scored-only head ÷ whole-batch
   logits, on prompt/completion and text data, on that config and on SmolLM2-135M.
8. Choosing merge coefficients (`adamerging_cost.main`): AdaMerging task- and layer-wise against a validation grid over
   the same four task-wise coefficients on the shipped model: passes, seconds, the objective found, the eval gain.

Usage: python benchmarks/run.py [--quick] [--stream-gb 2] [--repeats 3]
Writes benchmarks/results/<date>-all.{json,md} (and each part's own file); nbs/benchmarks.ipynb plots the latest.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import torch
from sitv.core import TaskVector, fingerprint
from sitv.data import make_split
from sitv.finetune import finetune
from sitv.grid import alpha_grid
from sitv.model import SHIPPED, byte_tokenizer, load_model, random_llama, n_params, save_model
import sweep_cost, lora_sweep_cost, fisher_cost, svd_cost, logits_cost, adamerging_cost

BIG = dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8, intermediate_size=1408)
BIG200 = dict(hidden_size=1024, num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=16, intermediate_size=2816)   # ≈ 206M
CONFIGS = {'random': BIG, 'random200': BIG200}

def random_tv_file(model, folder, scale=0.002, seed=0):
    "`random_tv` written tensor by tensor to shards of 16 MiB and read back memory-mapped: T never whole in memory (as `stream_task_vector` builds it)."
    from sitv.core import FORMAT, FORMAT_VERSION
    from sitv.scale import ShardWriter, TV_PREFIX, load_streamed_task_vector
    g, params, w = torch.Generator().manual_seed(seed), dict(model.named_parameters()), ShardWriter(folder, TV_PREFIX, 16 * 2**20)
    for n, p in params.items(): w.add(n, scale * torch.randn(p.shape, generator=g))
    w.close(dict(format=FORMAT, format_version=FORMAT_VERSION, base_fingerprint=fingerprint(params), dtype='float32', source='random'))
    return load_streamed_task_vector(folder)

def saved_random(name, tmp):
    "A random Llama of `CONFIGS[name]` saved as safetensors and loaded back (so a sweep can read its base from the file)."
    folder = Path(tmp) / name
    save_model(random_llama(**CONFIGS[name]), byte_tokenizer(), folder)
    return load_model(folder)

def spread_texts(n=96, seed=0):
    "A user's text file with a wide length spread: n texts of 2 to 40 words (under the 256-token cut) of the built-in general corpus, as `Example`s."
    import random
    from sitv.data import Example
    words = ' '.join(e.text for e in make_split('general', 'eval', 200)).split()
    r = random.Random(seed)
    return [Example('', ' '.join(r.choice(words) for _ in range(int(2 * 20 ** r.random())))) for _ in range(n)]

def padding(sets, tok, model, repeats, batch_size=64):
    "Real ÷ computed tokens and evaluation seconds with sorted cuts every batch_size texts (min_fill 0, the old batching) and with length buckets (0.9), interleaved."
    from sitv.data import batches
    from sitv.evaluate import evaluate
    rows = {}
    for fill in (0.0, 0.9):
        bl = [b for xs in sets.values() for _, b in batches(xs, tok, batch_size, min_fill=fill)]
        rows[fill] = dict(real=sum(int(b['attention_mask'].sum()) for b in bl), computed=sum(b['attention_mask'].numel() for b in bl), batches=len(bl), seconds=[])
    for _ in range(repeats):
        for fill in rows:
            t0 = time.perf_counter(); evaluate(model, sets, tok, batch_size=batch_size, min_fill=fill); rows[fill]['seconds'].append(time.perf_counter() - t0)
    for r in rows.values(): r.update(fraction=r['real'] / r['computed'], median_seconds=statistics.median(r['seconds']))
    return dict(old=rows[0.0], buckets=rows[0.9], time_ratio=rows[0.9]['median_seconds'] / rows[0.0]['median_seconds'])

def throughput(model, sets, tok, repeats, batch_size=64):
    """Achieved FLOP/s of a fixed-weight evaluation on real tokens against torch.mm's fp32 FLOP/s on the model's shapes,
    timed in alternation (this machine's speed drifts by ±20% between seconds, so each repeat pairs one evaluation with
    one matmul measurement and the ratio is taken pair by pair); then one profiled evaluation says where the time goes."""
    from torch.profiler import profile, ProfilerActivity
    from sitv.data import batches
    from sitv.evaluate import evaluate
    c = model.config
    bl = [b['attention_mask'] for xs in sets.values() for _, b in batches(xs, tok, batch_size)]
    lengths, m = [int(n) for b in bl for n in b.sum(1)], max(b.numel() for b in bl)    # m: tokens of the largest batch, the matmuls' rows
    computed = sum(b.numel() for b in bl)
    body = n_params(model) - model.get_input_embeddings().weight.numel()          # 2 × non-embedding parameters per real token
    flops = 2 * body * sum(lengths) + 4 * c.num_hidden_layers * c.hidden_size * sum(n * (n + 1) // 2 for n in lengths)
    shapes = [(torch.randn(m, K), torch.randn(K, N)) for K, N in ((c.hidden_size, c.intermediate_size), (c.intermediate_size, c.hidden_size), (c.hidden_size, c.hidden_size))]
    secs, peaks = [], []
    for _ in range(repeats):
        t0 = time.perf_counter(); evaluate(model, sets, tok, batch_size=batch_size); secs.append(time.perf_counter() - t0)
        peaks.append(max(2 * x.shape[0] * x.shape[1] * w.shape[1] / min(timeit(lambda: torch.mm(x, w)) for _ in range(3)) for x, w in shapes))
    ratios = [flops / s / pk for s, pk in zip(secs, peaks)]
    with profile(activities=[ProfilerActivity.CPU]) as prof: evaluate(model, sets, tok, batch_size=batch_size)
    ev = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total, mm = sum(ev.values()), ev.get('aten::mm', 0) + ev.get('aten::addmm', 0) + ev.get('aten::bmm', 0)
    top = sorted(((k, v / total) for k, v in ev.items() if k not in ('aten::mm', 'aten::addmm', 'aten::bmm')), key=lambda kv: -kv[1])[:4]
    return dict(real_tokens=sum(lengths), computed_tokens=computed, batches=len(bl), flops=flops, seconds=statistics.median(secs),
                achieved=flops / statistics.median(secs), peak=statistics.median(peaks), ratio=statistics.median(ratios), ratios=ratios,
                mm_share=mm / total, mm_efficiency=2 * body * computed / (mm / 1e6) / statistics.median(peaks), top_other=top)

def timeit(f, reps=5):
    t0 = time.perf_counter()
    for _ in range(reps): f()
    return (time.perf_counter() - t0) / reps

def random_tv(model, scale=0.002, seed=0):
    "A Gaussian direction over every parameter, bound to `model` as its base."
    g, params = torch.Generator().manual_seed(seed), dict(model.named_parameters())
    return TaskVector({n: scale * torch.randn(p.shape, generator=g) for n, p in params.items()}, fingerprint(params), source='random')

def half_precision(T, sets, tok, alphas=(0.0, 0.25, 0.5, 1.0)):
    "Realised displacement and loss of θ(α) stored in bf16 / fp16 against the same θ(α) in fp32 (α = 0: the storage's own loss change)."
    from sitv.core import displaced
    from sitv.evaluate import evaluate
    from sitv.scale import displacement_gap
    loss = {}
    for dt in ('float32', 'bfloat16', 'float16'):
        m = load_model(SHIPPED).to(getattr(torch, dt))
        for a in alphas:
            # fp16 rounding moves some values' bf16-rounded fingerprint: this copy is the same base cast, so the check is skipped
            with displaced(m, T, a, check_base=dt != 'float16') as d:
                ev = evaluate(m, sets, tok)
                gap = displacement_gap(d.targets, d.pristine, T, a) if a else dict(ratio=None, error=None)
            loss[dt, a] = {**{k: v['loss'] for k, v in ev.items()}, **gap}
    return [dict(dtype=dt, alpha=a, ratio=loss[dt, a]['ratio'], error=loss[dt, a]['error'],
                 **{f'{k} loss − fp32': loss[dt, a][k] - loss['float32', a][k] for k in sets}) for dt in ('bfloat16', 'float16') for a in alphas]

def child(args):
    "Run one memory measurement in this (fresh) process and print it as JSON."
    from sitv.scale import PeakMemory, rss_anon
    if args.child == 'sweep-memory':
        from sitv.evaluate import evaluate
        from sitv.results import Results
        from sitv.sweep import sweep
        dtype, tok = getattr(torch, args.dtype), byte_tokenizer()
        sets = {'general': make_split('general', 'eval', 32)}
        before = rss_anon()
        tmp = Path(tempfile.mkdtemp(dir=args.tmp))
        model = (load_model(SHIPPED) if args.model == 'shipped' else saved_random(args.model, tmp)).to(dtype)
        fp32_bytes = n_params(model) * 4
        # transformers maps a same-dtype safetensors file into the parameters: they stay file pages until written, and the
        # sweep's first write turns them into anonymous memory. Copy them now, so that the fixed-weight evaluation counts the
        # live model as the sweep will (one copy) and the difference is what the sweep keeps besides it.
        with torch.no_grad():
            for prm in model.parameters(): prm.data = prm.data.clone()
        with PeakMemory() as fixed: evaluate(model, sets, tok)            # the model and an evaluation's activations
        T = random_tv_file(model, tmp / 'T') if args.base == 'file' else random_tv(model)   # the same values; from a file, T is file pages
        t0 = time.perf_counter()
        with PeakMemory() as pm:
            sweep(model, T, sets, tok, [0.0, 0.5, 1.0], Results(tmp / 'r.json', {}), progress=False, base_file=args.base == 'file')
        t_sweep = time.perf_counter() - t0
        shutil.rmtree(tmp, ignore_errors=True)
        out = dict(model=args.model, dtype=args.dtype, base=args.base, n_params=n_params(model), fp32_model_bytes=fp32_bytes,
                   stored_model_bytes=sum(p.numel() * p.element_size() for p in model.parameters()), tv_bytes=sum(t.numel() * 4 for t in T.deltas.values()),
                   rss_anon_before_model=before, peak_fixed_evaluation=fixed.peak, peak_sweep=pm.peak,
                   fixed_over_fp32_model=(fixed.peak - before) / fp32_bytes, sweep_over_fp32_model=(pm.peak - before) / fp32_bytes,
                   # model copies a sweep holds: the model itself plus what the sweep adds over a fixed-weight evaluation (T, the pristine copy)
                   sweep_copies=1 + (pm.peak - fixed.peak) / fp32_bytes, sweep_seconds=t_sweep)
    else:   # stream
        from sitv.scale import ShardWriter, Checkpoint, stream_task_vector
        tmp = Path(tempfile.mkdtemp(dir=args.tmp))
        try:
            shard, numel = 512 * 2**20, 4096 * 4096                     # 512 MiB shards of 32 MiB bf16 matrices
            n_tensors = max(2, int(args.stream_gb * 2**30 / (numel * 2)))
            wb, wf, g = ShardWriter(tmp / 'base', max_shard_bytes=shard), ShardWriter(tmp / 'ft', max_shard_bytes=shard), torch.Generator().manual_seed(0)
            for i in range(n_tensors):
                t = torch.randn(4096, 4096, generator=g) * 0.02
                wb.add(f'model.layers.{i}.weight', t.bfloat16()); wf.add(f'model.layers.{i}.weight', (t + 1e-3 * torch.randn(4096, 4096, generator=g)).bfloat16())
            wb.close(); wf.close(); del wb, wf, t
            cb = Checkpoint(tmp / 'base'); largest = max(cb.shard_bytes.values()); total = sum(cb.shard_bytes.values())
            base0 = rss_anon(); t0 = time.perf_counter()
            with PeakMemory() as pm: stream_task_vector(tmp / 'base', tmp / 'ft', tmp / 'tv', progress=False)
            t_stream = time.perf_counter() - t0
            shutil.rmtree(tmp / 'tv')
            t0 = time.perf_counter()
            with PeakMemory() as pn:
                T = TaskVector.from_state_dicts(dict(cb.items()), dict(Checkpoint(tmp / 'ft').items())); del T
            t_naive = time.perf_counter() - t0
            out = dict(model_bytes=total, shards=len(cb.shard_bytes), largest_shard_bytes=largest, tensors=n_tensors, tensor_bytes=numel * 2,
                       rss_anon_before=base0, stream_peak_delta=pm.delta, stream_over_largest_shard=pm.delta / largest, stream_seconds=t_stream,
                       naive_peak_delta=pn.delta, naive_over_largest_shard=pn.delta / largest, naive_seconds=t_naive)
        finally: shutil.rmtree(tmp, ignore_errors=True)
    print('RESULT ' + json.dumps(out))

def in_fresh_process(*argv, env=None):
    r = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=None if env is None else {**os.environ, **env})
    line = [l for l in r.stdout.splitlines() if l.startswith('RESULT ')]
    if r.returncode or not line: raise RuntimeError(f'{argv} failed:\n{r.stderr[-3000:]}')
    return json.loads(line[-1][7:])

def main(a):
    t_start = time.perf_counter()
    out = dict(date=time.strftime('%Y-%m-%d'), machine=sweep_cost.machine(), command=' '.join(['python', 'benchmarks/run.py', *sys.argv[1:]]))
    tok = byte_tokenizer()
    # 1. moving along T
    base = load_model(SHIPPED)
    T = TaskVector.from_models(base, finetune(SHIPPED, 'qa', progress=False)[0])
    sets = {'general': make_split('general', 'eval', 64 if a.quick else 128), 'qa': make_split('qa', 'eval', 32 if a.quick else 64)}
    out['move'] = [sweep_cost.measure(base, T, sets, tok, alpha_grid(-0.5, 1.5, 0.5 if a.quick else 0.25), a.repeats, label=f'{SHIPPED}, qa T')]
    big = random_llama(**BIG)
    out['move'].append(sweep_cost.measure(big, random_tv(big), {'general': make_split('general', 'eval', 32), 'qa': make_split('qa', 'eval', 16)}, tok,
                                          alpha_grid(-0.5, 1.5, 1.0 if a.quick else 0.5), 1 if a.quick else a.repeats, label='random Llama from a config, random T'))
    del big
    print('\n'.join(sum((sweep_cost.markdown(o) + [''] for o in out['move']), [])), flush=True)
    # 2. LoRA
    out['lora'] = lora_sweep_cost.main(0.5 if a.quick else 0.25, 'qa', 1 if a.quick else a.repeats)
    # 3. memory of a sweep, fresh processes
    # glibc keeps freed blocks of a few MiB in its arenas, so one process's peak varies by ±40 MiB from run to run (measured:
    # 0.65–1.42 copies on the 25.9M model); the 25.9M rows are the median of three processes, and the file-backed rows are
    # measured again with MALLOC_MMAP_THRESHOLD_ fixed (large blocks go back to the OS on free: what the sweep itself holds)
    out['sweep_memory'] = []
    for m, d, b, n, alloc in [('shipped', 'float32', 'memory', 1, None), ('shipped', 'bfloat16', 'memory', 1, None), ('random', 'float32', 'memory', 3, None),
                              ('random', 'float32', 'file', 3, None), ('random', 'float32', 'file', 1, '131072'),
                              ('random200', 'float32', 'memory', 1, None), ('random200', 'float32', 'file', 1, None), ('random200', 'float32', 'file', 1, '131072')]:
        runs = [in_fresh_process('--child', 'sweep-memory', '--model', m, '--dtype', d, '--base', b, '--tmp', a.tmp, env=alloc and {'MALLOC_MMAP_THRESHOLD_': alloc}) for _ in range(n)]
        row = sorted(runs, key=lambda r: r['sweep_copies'])[len(runs) // 2]
        out['sweep_memory'].append({**row, 'copies_runs': [r['sweep_copies'] for r in runs], 'mmap_threshold': alloc})
    # 3b. padding, attention kernel and throughput (issue 18), side by side in this process
    user = {'user file (2–40 words)': spread_texts()}
    out['padding'] = {'shipped data': padding(sets, tok, base, a.repeats), 'user file': padding(user, tok, base, a.repeats)}
    eager = load_model(SHIPPED, attn_implementation='eager')
    out['attention'] = {impl: sweep_cost.measure(m, T, sets, tok, alpha_grid(-0.5, 1.5, 0.5), 1 if a.quick else a.repeats, schemes=('fixed', 'sitv'), label=f'{SHIPPED}, qa T, {impl} attention')
                        for impl, m in (('eager', eager), ('sdpa', base))}
    big = random_llama(**BIG); Tb = random_tv(big)
    big_sets = {'general': make_split('general', 'eval', 32), 'qa': make_split('qa', 'eval', 16)}
    out['attention_big'] = {}
    for impl in ('eager', 'sdpa'):
        big.set_attn_implementation(impl)
        out['attention_big'][impl] = sweep_cost.measure(big, Tb, big_sets, tok, alpha_grid(-0.5, 1.5, 0.5), 1 if a.quick else a.repeats, schemes=('fixed', 'sitv'), label=f'random Llama, {impl} attention')
    del Tb
    out['throughput'] = throughput(big, {'general': make_split('general', 'eval', 32), 'qa': make_split('qa', 'eval', 16)}, tok, a.repeats)
    del big, eager
    # 4. streaming T
    if a.stream_gb > 0: out['stream'] = in_fresh_process('--child', 'stream', '--stream-gb', str(a.stream_gb), '--tmp', a.tmp)
    # 5. half precision
    out['half_precision'] = half_precision(T, sets, tok)
    # 6. the geometry and TSV primitives
    out['fisher'] = fisher_cost.main(16 if a.quick else 32, 8, a.repeats)
    if not a.quick: out['svd'] = svd_cost.main(a.repeats)
    # 7. no full logits: memory of `score` with a 262,144-token vocabulary, and the scored-only head's speed (logits_cost.py)
    out['logits'] = logits_cost.main(1 if a.quick else a.repeats, 8 if a.quick else 16)
    # 8. merge coefficients: AdaMerging against a validation grid over the same coefficients (adamerging_cost.py)
    out['adamerging'] = adamerging_cost.main((0.5, 1.0) if a.quick else (0.25, 0.5, 0.75, 1.0, 1.25), 3 if a.quick else 30)
    out['seconds'] = time.perf_counter() - t_start
    d = HERE / 'results'; d.mkdir(exist_ok=True)
    stem = d / f"{out['date']}-all"
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1))
    stem.with_suffix('.md').write_text('\n'.join(summary(out)) + '\n')
    print('\n'.join(summary(out)))

def summary(o):
    md = [f"# sitv benchmarks, {o['date']}", '', f"{o['machine']}; `{o['command']}`; {o['seconds'] / 60:.1f} min in all.", '',
          '| what | measured | goal |', '|---|---|---|']
    for m in o['move']:
        r = m['ratios']; lab = f"{m['label']} ({m['n_params'] / 1e6:.1f}M)"
        md += [f"| {lab}: sweep ÷ (points × fixed evaluation), fastest of the repeats (of the medians) | {r['sitv_sweep_over_fixed']:.3f} ({r.get('sitv_sweep_over_fixed_medians', float('nan')):.3f}) | ≤ 1.05 |",
               f"| {lab}: per α, (write θ(α) + evaluate + distance) ÷ an evaluation at the base just before, median over the grid | {r.get('move_over_fixed_interleaved', float('nan')):.3f} | ≤ 1.05 |",
               f"| {lab}: reload from disk per α ÷ sweep | {r['reload_over_sitv']:.2f} | > 1 |",
               f"| {lab}: deep copy per α ÷ sweep | {r['deepcopy_over_sitv']:.2f} | > 1 |",
               f"| {lab}: original scheme ÷ sweep (time; forward calls) | {r['original_over_sitv']:.2f}; {r['original_over_sitv_forward_calls']:.1f} | ≈ 3 |"]
    lr = o['lora']['ratios']
    md += [f"| LoRA: adapter scaling ÷ written weights (s per α) | {lr['scaling_over_writes']:.2f} | — |"]
    for m in o['sweep_memory']:
        md += [f"| model copies held by a sweep, (peak RssAnon of the sweep − of a fixed-weight evaluation) ÷ fp32 model size + 1: "
               f"{m['model']} ({m['n_params'] / 1e6:.1f}M), {m['dtype']} storage, base and T {'from their files' if m.get('base') == 'file' else 'in memory'}"
               + (f", MALLOC_MMAP_THRESHOLD_={m['mmap_threshold']}" if m.get('mmap_threshold') else '')
               + (f", median of {len(m['copies_runs'])} processes ({min(m['copies_runs']):.2f}–{max(m['copies_runs']):.2f})" if len(m.get('copies_runs', [])) > 1 else '') + " | "
               f"{m['sweep_copies']:.2f} (whole process: sweep {m['sweep_over_fp32_model']:.1f}, fixed evaluation {m['fixed_over_fp32_model']:.1f} × the model; "
               f"3 points in {m.get('sweep_seconds', float('nan')):.1f} s) | "
               f"{'≤ 1.3' if m.get('base') == 'file' else '—'} |"]
    for name, pd_ in o.get('padding', {}).items():
        md += [f"| {name}: real ÷ computed tokens, sorted cuts of 64 → length buckets; evaluation time buckets ÷ cuts | "
               f"{pd_['old']['fraction']:.3f} → {pd_['buckets']['fraction']:.3f} ({pd_['old']['batches']} → {pd_['buckets']['batches']} batches); {pd_['time_ratio']:.2f} | ≥ 0.9 after |"]
    if 'attention' in o:
        e, sd = (o['attention'][k]['median_seconds_per_alpha']['sitv'] for k in ('eager', 'sdpa'))
        md += [f"| sweep s/α on {SHIPPED}, eager | sdpa attention | {e:.3f} | {sd:.3f} (eager ÷ sdpa {e / sd:.2f}) |"]
    if 'attention_big' in o:
        e, sd = (o['attention_big'][k]['median_seconds_per_alpha']['sitv'] for k in ('eager', 'sdpa'))
        md += [f"| sweep s/α on the random Llama (25.9M), eager | sdpa attention | {e:.3f} | {sd:.3f} (eager ÷ sdpa {e / sd:.2f}) |"]
    if 'throughput' in o:
        t = o['throughput']
        md += [f"| random Llama (25.9M), fixed evaluation: achieved FLOP/s on real tokens ÷ torch.mm fp32 peak on its shapes | "
               f"{t['ratio']:.2f} ({t['achieved'] / 1e9:.1f} / {t['peak'] / 1e9:.1f} GFLOP/s, {t['real_tokens']} real tokens) | ≥ 0.8 |",
               f"| the same evaluation profiled (torch.profiler): share of time in matmuls; their FLOP/s on computed tokens ÷ the peak; the largest other ops | "
               f"{t['mm_share']:.2f}; {t['mm_efficiency']:.2f}; " + ', '.join(f"{k.replace('aten::', '')} {v:.2f}" for k, v in t['top_other']) + " | — |"]
    if 'stream' in o:
        s = o['stream']
        md += [f"| streaming T over {s['model_bytes'] / 2**30:.1f} GiB in {s['shards']} shards: peak RssAnon ÷ largest shard | "
               f"{s['stream_over_largest_shard']:.2f} ({s['stream_seconds']:.0f} s) | ≤ 1.5 |",
               f"| the same with both state dicts loaded (memory-mapped) and T built in memory: peak RssAnon ÷ largest shard | {s['naive_over_largest_shard']:.2f} ({s['naive_seconds']:.0f} s) | — |"]
    for h in o.get('half_precision', []):
        md += [f"| {h['dtype']} storage, α = {h['alpha']}: displacement ratio; relative error; general / qa loss − fp32 (nats) | "
               + ('—; —' if h['ratio'] is None else f"{h['ratio']:.5f}; {h['error']:.2e}") + f"; {h['general loss − fp32']:+.1e} / {h['qa loss − fp32']:+.1e} | — |"]
    md += [f"| per-example gradients: loop ÷ vmap | {o['fisher']['loop_over_vmap']:.2f} | > 1 |"]
    if 'svd' in o: md += [f"| full SVD ÷ svd_lowrank ({r['case']}) | {r['speedup']:.2f} | — |" for r in o['svd']['rows']]
    if 'logits' in o: md += logits_cost.rows(o['logits'])
    if 'adamerging' in o: md += ['', adamerging_cost.rows(o['adamerging'])]
    md += ['', 'Details: the per-part files of the same date in this folder; medians of the repeats; seconds per α.']
    for m in o['move']: md += [''] + sweep_cost.markdown(m)
    return md

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='shorter grids and fewer repeats (a smoke run)')
    p.add_argument('--repeats', type=int, default=3); p.add_argument('--stream-gb', type=float, default=2.0)
    p.add_argument('--tmp', default=tempfile.gettempdir(), help='where the synthetic checkpoint is written')
    p.add_argument('--child', choices=['sweep-memory', 'stream']); p.add_argument('--model', default='shipped'); p.add_argument('--dtype', default='float32')
    p.add_argument('--base', choices=['memory', 'file'], default='memory', help='sweep-memory child: base and T in memory or read from their files')
    a = p.parse_args()
    child(a) if a.child else main(a)
