"""Seconds per α of sitv's sweep on a Gemma-3-4B-shaped model, beside a fixed-weight evaluation, in one run (no assertions: the numbers are the result).

The model is `Gemma3ForCausalLM` built from a `Gemma3TextConfig` with Gemma-3-4B's text shapes and random weights (seed 0,
normal with std `initializer_range` = 0.02), created on the device directly in `--dtype`: nothing is downloaded and no
fp32 copy exists on the host. T is a Gaussian direction (std 0.002 per value) over every parameter, fp32, on the device,
bound to the model's fingerprint. The eval set is shaped like the seed's: 135 texts, two thirds general and one third
task (`make_split(..., 'eval', n)`, the byte tokenizer; the numbers used are printed), on a grid from −0.5 to 1.5 that
contains 2α for its small α, so the seed's L(2α) squaring test is read from the grid and costs no pass.
After one warm-up evaluation, measured side by side:
1. fixed weights: `evaluate` of the unmoved model, seconds per evaluation (median of `--repeats`);
2. the sweep: `sweep` over the grid into a `Results` file, wall time ÷ points (it includes the one-off entry below), and
   the median of the per-point seconds the result file records (move + evaluation + distance check);
3. inside `displaced`: its entry (fingerprint check of the base + pristine copy), the weight write `d(α)` per α and the
   realised-distance check `d.distance()` per α the sweep also pays, and `‖T‖` (computed once per sweep);
4. the matmul peak in the model's dtype: `torch.mm`, and `F.linear` with the weight laid out as the model's, on the
   model's own shapes (tokens of the largest batch × hidden @ hidden × intermediate, and the down, query and head
   projections), best of several rounds, FLOP/s = 2·m·k·n / t; the peak is the best of them;
5. the achieved FLOP/s of the fixed evaluation, counted on real (non-padding) tokens only:
   2 × (non-embedding parameters + vocab × hidden, the tied head being a matmul) per real token, plus attention
   4 × heads × head_dim × c per layer per real token, c = the positions it attends to (i + 1 at position i, capped at
   the sliding window on local layers); divided by the evaluation's seconds and by the peak.
6. no full logits: `score` (the model's body once, the output layer on the scored positions only, in chunks) against the
   whole-batch logits it replaced (`benchmarks/logits_cost.py`'s `full_logits_score`), alternated, per eval set: seconds
   per evaluation and, on CUDA, the peak memory of each (the task set scores the answers only, the general set every token).
Also: real and computed (batch × padded length) tokens per evaluation, L(0) of the sweep against the fixed evaluation's
loss (must be equal: α = 0 writes the base back bit for bit), and peak GPU memory on CUDA. The seed reports 0.68 s per α
on an H200 for Gemma-3-4B; the goal is ≤ 0.1 s. `--tiny` builds a tiny model of the same family (CPU, seconds; CI).
The dtype is bfloat16 on CUDA and float32 on a CPU unless `--dtype` says otherwise (a CPU's bf16 matmuls are emulated).

Usage: python benchmarks/gpu.py [--tiny] [--device cuda] [--dtype bfloat16|float32] [--attn sdpa] [--points 9] [--repeats 3] [--out DIR]
Writes benchmarks/results/<date>-gpu.{json,md} (-tiny added with --tiny, -eager with --attn eager); `--out DIR` writes them into DIR.
"""
import argparse, copy, json, math, os, platform, shlex, statistics, sys, tempfile, time
T0 = time.perf_counter()                            # before the imports: they count towards the five minutes
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import torch
import transformers
from transformers import AutoModelForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig
from sitv.core import TaskVector, displaced, fingerprint
from sitv.data import batches, make_split
from sitv.evaluate import evaluate
from sitv.grid import alpha_grid, doubling_pairs
from sitv.model import byte_tokenizer, n_params
from sitv.results import Results
from sitv.sweep import sweep
sys.path.insert(0, str(Path(__file__).resolve().parent))
from logits_cost import full_logits_score          # the removed whole-batch-logits path, for section 6

SEED_S_PER_ALPHA, GOAL_S_PER_ALPHA = 0.68, 0.1     # the seed's figure on an H200 and the goal
HI = 1.5                                            # the seed's α range is [−0.5, 1.5]
MAX_LEN = 256                                       # `score`'s truncation length (the texts are ≤ 128 bytes)
ATTN = ('sdpa', 'eager')

def layer_types(n_layers, pattern):
    "Gemma 3's local:global pattern as `Gemma3TextConfig` expresses it: every `pattern`-th layer global, the others sliding."
    return ['sliding_attention' if (i + 1) % pattern else 'full_attention' for i in range(n_layers)]

# google/gemma-3-4b's text config (config.json's text_config over the class defaults): linear RoPE scaling ×8 on global layers
ROPE = {'full_attention': {'rope_type': 'linear', 'factor': 8.0, 'rope_theta': 1e6}, 'sliding_attention': {'rope_type': 'default', 'rope_theta': 1e4}}
GEMMA3_4B = dict(vocab_size=262208, hidden_size=2560, intermediate_size=10240, num_hidden_layers=34, num_attention_heads=8,
                 num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256, sliding_window=1024, max_position_embeddings=131072,
                 layer_types=layer_types(34, 6), tie_word_embeddings=True, rope_parameters=ROPE)
# the same family, tiny: the window (16) is shorter than the texts, so local layers really slide; one local, one global layer
TINY = dict(vocab_size=384, hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            head_dim=32, query_pre_attn_scalar=32, sliding_window=16, max_position_embeddings=512, layer_types=layer_types(2, 2),
            tie_word_embeddings=True, rope_parameters=ROPE)

def log(msg): print(f'[{time.perf_counter() - T0:6.1f} s] {msg}', flush=True)   # flushed: a run cut off still shows what it had

def sync(device):
    if torch.device(device).type == 'cuda': torch.cuda.synchronize()

def timed(device, f, *args):
    "Seconds of `f(*args)` with the device's queue drained before and after, and its result."
    sync(device); t0 = time.perf_counter(); r = f(*args); sync(device)
    return time.perf_counter() - t0, r

def build_model(shapes, device, dtype, attn, seed=0):
    "A random-weight Gemma 3 causal LM created on `device` in `dtype` directly (the 4B never exists in fp32 on the host)."
    cfg = Gemma3TextConfig(**copy.deepcopy(shapes))                  # a copy: the config class fills in the rope dicts it is given
    torch.manual_seed(seed)                                          # seeds the CPU and every CUDA generator
    with torch.device(device):
        m = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attn)
    assert isinstance(m, Gemma3ForCausalLM), type(m)
    return m.eval()

def random_tv(model, scale=0.002, seed=0):
    "A Gaussian direction over every parameter, fp32 on the model's device (as sitv stores T), bound to `model` as its base."
    params = dict(model.named_parameters())
    dev = next(iter(params.values())).device
    g = torch.Generator(dev).manual_seed(seed)
    deltas = {n: torch.randn(p.shape, generator=g, device=dev, dtype=torch.float32).mul_(scale) for n, p in params.items()}
    return TaskVector(deltas, fingerprint(params), next(iter(params.values())).dtype, source='random')

def eval_sets(task, texts):
    "`texts` eval texts, two thirds general and one third `task` (make_split raises, naming how many exist, if fewer do)."
    n_task = texts // 3
    return {'general': make_split('general', 'eval', texts - n_task), task: make_split(task, 'eval', n_task)}

def grid_for(points):
    "`points` α on sitv's integer grid k·step, k = −a…b, a = (points − 1) // 4, from ≈ −0.5 to 1.5: 2α is on it for −a/2 ≤ k ≤ b/2."
    a = (points - 1) // 4; b = points - 1 - a; step = HI / b
    lo, hi = -a * step, b * step
    g = alpha_grid(lo, hi, step)
    assert len(g) == points, (points, g)
    return g, step, doubling_pairs(lo, hi, step)

def context_sum(n, window):
    "Σ over positions i < n of the positions attended to: min(i + 1, window) (window None: i + 1)."
    if window is None or n <= window: return n * (n + 1) // 2
    return window * (window + 1) // 2 + (n - window) * window

def token_counts(sets, tok, batch_size):
    "Real (non-padding) and computed (batch × padded length) tokens of one evaluation, batched as `score` batches, and every text's length."
    real = computed = n_batches = 0; lengths, largest = [], 0
    for xs in sets.values():
        for _, b in batches(xs, tok, batch_size, MAX_LEN):
            m = b['attention_mask']
            real += int(m.sum()); computed += m.numel(); n_batches += 1; largest = max(largest, m.numel())
            lengths += m.sum(1).tolist()
    return dict(real=real, computed=computed, batches=n_batches, largest_batch=largest), lengths

def eval_flops(model, lengths):
    "FLOPs of one evaluation on real tokens: 2 × (non-embedding parameters + the head's vocab × hidden) per token, plus attention (docstring)."
    c = model.config
    embed = model.get_input_embeddings().weight.numel()
    body = n_params(model) - embed                                     # tied head: the embedding is counted once, as an embedding
    head = c.vocab_size * c.hidden_size                                # ... but the head is a matmul at every position
    attended = sum(context_sum(n, c.sliding_window if t == 'sliding_attention' else None) for t in c.layer_types for n in lengths)
    tokens = sum(lengths)
    parts = dict(linear=2 * body * tokens, head=2 * head * tokens, attention=4 * c.num_attention_heads * c.head_dim * attended)
    return dict(parts, total=sum(parts.values()), non_embedding_params=body)

def best_seconds(device, f, rounds, min_round_s):
    "Best seconds per call of `f()`: each round repeats it until the round lasts `min_round_s` (the first rounds also warm up)."
    reps = 1
    while timed(device, lambda: [f() for _ in range(reps)])[0] < min_round_s and reps < 4096: reps *= 2
    return min(timed(device, lambda: [f() for _ in range(reps)])[0] for _ in range(rounds)) / reps

def matmul_peak(model, m, device, dtype, rounds=5, min_round_s=0.02):
    "FLOP/s of m × k @ k × n on the model's own shapes, as `torch.mm` and as `F.linear` with an n × k weight (the layout the model's layers use)."
    c = model.config
    shapes = {'up/gate': (m, c.hidden_size, c.intermediate_size), 'down': (m, c.intermediate_size, c.hidden_size),
              'query': (m, c.hidden_size, c.num_attention_heads * c.head_dim), 'head': (m, c.hidden_size, c.vocab_size)}
    out = {}
    for name, (M, K, N) in shapes.items():
        x, w = torch.randn(M, K, device=device, dtype=dtype), torch.randn(N, K, device=device, dtype=dtype)
        b, o = w.t().contiguous(), torch.empty(M, N, device=device, dtype=dtype)
        # both: on a CPU, bf16 `torch.mm` can be far slower than the `linear` the model runs, and a peak below what the model reaches is no peak
        mm = best_seconds(device, lambda: torch.mm(x, b, out=o), rounds, min_round_s)
        lin = best_seconds(device, lambda: torch.nn.functional.linear(x, w), rounds, min_round_s)
        out[name] = dict(m=M, k=K, n=N, mm_flops=2 * M * K * N / mm, linear_flops=2 * M * K * N / lin)
        del x, w, b, o
    return out

def gpu_memory(device):
    "Peak bytes allocated since the last reset (CUDA only), then reset."
    if torch.device(device).type != 'cuda': return None
    v = torch.cuda.max_memory_allocated(); torch.cuda.reset_peak_memory_stats()
    return v

def machine(device, dtype, attn):
    dev = torch.cuda.get_device_name(torch.device(device)) if torch.device(device).type == 'cuda' else f'CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)'
    return dict(device=str(device), device_name=dev, torch=torch.__version__, transformers=transformers.__version__,
                cuda=torch.version.cuda, dtype=str(dtype).replace('torch.', ''), attn=attn, python=platform.python_version())

def measure(a):
    device, dtype = torch.device(a.device), getattr(torch, a.dtype)
    out = dict(date=time.strftime('%Y-%m-%d'), command=a.command,
               machine=machine(device, dtype, a.attn), model_shapes='tiny Gemma 3' if a.tiny else 'Gemma-3-4B text', seeds=dict(model=0, tv=0))
    log(f"{out['machine']['device_name']}, torch {torch.__version__}, transformers {transformers.__version__}, {a.dtype}, attn {a.attn}")
    if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(device)
    mem = {}
    # the model and T
    t, model = timed(device, build_model, TINY if a.tiny else GEMMA3_4B, device, dtype, a.attn)
    out['build_seconds'], mem['model'] = t, gpu_memory(device)
    c = model.config
    out['model'] = dict(n_params=n_params(model), hidden_size=c.hidden_size, intermediate_size=c.intermediate_size, layers=c.num_hidden_layers,
                        heads=c.num_attention_heads, kv_heads=c.num_key_value_heads, head_dim=c.head_dim, vocab_size=c.vocab_size,
                        sliding_window=c.sliding_window, sliding_layers=c.layer_types.count('sliding_attention'),
                        full_layers=c.layer_types.count('full_attention'), attn_implementation=c._attn_implementation,
                        param_dtypes=sorted({str(p.dtype).replace('torch.', '') for p in model.parameters()}))
    log(f"built {out['model']['n_params']:,} parameters ({out['model']['sliding_layers']} sliding + {out['model']['full_layers']} full layers) in {t:.1f} s")
    t, tv = timed(device, random_tv, model)
    out['tv_seconds'], mem['tv'] = t, gpu_memory(device)
    out['tv_values'] = tv.numel()
    log(f'random T ({tv.numel():,} fp32 values, fingerprinted) in {t:.1f} s')
    # the eval set and what one evaluation computes
    tok = byte_tokenizer()
    sets = eval_sets(a.task, a.texts)
    tokens, lengths = token_counts(sets, tok, a.batch_size)
    flops = eval_flops(model, lengths)
    grid, step, pairs = grid_for(a.points)
    out.update(task=a.task, eval_texts={k: len(v) for k, v in sets.items()}, total_texts=sum(map(len, sets.values())), batch_size=a.batch_size,
               tokens=tokens, eval_flops=flops, alphas=grid.tolist(), points=len(grid), step=step, doubling_pairs=len(pairs), repeats=a.repeats)
    log(f"eval set {out['eval_texts']}: {tokens['real']} real of {tokens['computed']} computed tokens in {tokens['batches']} batches; "
        f"{len(grid)} α, step {step:g}, {len(pairs)} (α, 2α) pairs on the grid")
    ev = lambda: evaluate(model, sets, tok, batch_size=a.batch_size)
    # 1. fixed weights
    t, warm = timed(device, ev)
    bad = {k: r['n_nonfinite'] for k, r in warm.items() if r['n_nonfinite'] or not math.isfinite(r['loss'])}
    if bad: raise RuntimeError(f'non-finite losses of the random model at α = 0 ({bad}): the initialisation scale is too large')
    log(f'warm-up evaluation {t:.3f} s; losses ' + ', '.join(f"{k} {r['loss']:.4f}" for k, r in warm.items()))
    fixed_secs = []
    for _ in range(a.repeats):
        t, fixed = timed(device, ev); fixed_secs.append(t)
    out['fixed_eval_seconds'], out['fixed_eval_seconds_all'] = statistics.median(fixed_secs), fixed_secs
    mem['fixed_evaluation'] = gpu_memory(device)
    log(f"fixed-weight evaluation {out['fixed_eval_seconds']:.3f} s (median of {a.repeats})")
    # 2. the sweep
    with tempfile.TemporaryDirectory() as tmp:
        res = Results(Path(tmp) / 'sweep.json', dict(bench='gpu', points=len(grid)))
        t, _ = timed(device, sweep, model, tv, sets, tok, grid, res, a.batch_size, False)
        L0 = res.get(dict(alpha=0.0))['metrics']
        out['sweep_wall_seconds'], out['sweep_seconds_per_alpha'] = t, t / len(grid)
        out['sweep_point_seconds_median'] = statistics.median(p['seconds'] for p in res.points)
        out['sweep_forward_calls_per_alpha'] = statistics.median(p['metrics']['forward_calls'] for p in res.points)
        out['sweep_nonfinite'] = sum(p['metrics'][k]['n_nonfinite'] for p in res.points for k in sets)
    mem['sweep'] = gpu_memory(device)
    out['L0'] = {k: dict(sweep=L0[k]['loss'], fixed=fixed[k]['loss'], diff=L0[k]['loss'] - fixed[k]['loss']) for k in sets}
    out['L0_max_abs_diff'] = max(abs(v['diff']) for v in out['L0'].values())
    log(f"sweep {t:.2f} s for {len(grid)} α: {out['sweep_seconds_per_alpha']:.3f} s per α; |L(0) − fixed| ≤ {out['L0_max_abs_diff']:.1e}")
    # 3. what the sweep pays besides the evaluations
    out['tv_norm_seconds'] = timed(device, tv.norm)[0]
    sync(device); t0 = time.perf_counter()
    with displaced(model, tv) as d:
        sync(device); out['displaced_entry_seconds'] = time.perf_counter() - t0
        writes, dists = [], []
        for x in grid:
            writes.append(timed(device, d, float(x))[0]); dists.append(timed(device, d.distance)[0])
    out['write_seconds_per_alpha'], out['write_seconds_all'] = statistics.median(writes), writes
    out['distance_seconds_per_alpha'] = statistics.median(dists)
    mem['writes'] = gpu_memory(device)
    log(f"displaced entry {out['displaced_entry_seconds']:.2f} s; write {out['write_seconds_per_alpha']:.4f} s per α; "
        f"distance {out['distance_seconds_per_alpha']:.4f} s per α; ‖T‖ {out['tv_norm_seconds']:.2f} s")
    # 4. the matmul peak on the model's shapes, 5. the achieved fraction of it
    out['matmul'] = matmul_peak(model, tokens['largest_batch'], device, dtype)
    out['matmul_peak_flops'] = max(max(v['mm_flops'], v['linear_flops']) for v in out['matmul'].values())
    out['achieved_flops'] = flops['total'] / out['fixed_eval_seconds']
    out['achieved_fraction'] = out['achieved_flops'] / out['matmul_peak_flops']
    # the same without the tied head's matmul (FLOPs of non-embedding parameters and attention only)
    out['achieved_fraction_without_head'] = (flops['total'] - flops['head']) / out['fixed_eval_seconds'] / out['matmul_peak_flops']
    out['sweep_over_fixed'] = out['sweep_wall_seconds'] / (len(grid) * out['fixed_eval_seconds'])
    log(f"{a.dtype} matmul peak {out['matmul_peak_flops'] / 1e12:.3f} TFLOP/s; fixed evaluation {out['achieved_flops'] / 1e12:.3f} TFLOP/s "
        f"on real tokens = {out['achieved_fraction']:.3f} of it")
    # 6. no full logits: `score` (the output layer on the scored positions only, in chunks) against the whole-batch logits it
    # replaced (`logits_cost.full_logits_score`), alternated per eval set: the task's answers only, the general texts whole
    from sitv.evaluate import score
    out['logits'] = {}
    for k, xs in sets.items():
        secs, peak = {'before': [], 'after': []}, {}
        paths = (('before', lambda: full_logits_score(model, xs, tok, a.batch_size)), ('after', lambda: score(model, xs, tok, batch_size=a.batch_size)))
        for _ in range(a.repeats):
            for p, f in paths:
                gpu_memory(device); secs[p].append(timed(device, f)[0]); peak[p] = gpu_memory(device)
        med = {p: statistics.median(v) for p, v in secs.items()}
        out['logits'][k] = dict(seconds=med, runs=secs, ratio=med['after'] / med['before'], gpu_peak_bytes=peak if device.type == 'cuda' else None)
        log(f"{k}: scored-only head {med['after']:.3f} s ÷ whole-batch logits {med['before']:.3f} s = {out['logits'][k]['ratio']:.2f}")
    if device.type == 'cuda': out['gpu_memory_peak_bytes'] = mem
    out['seconds'] = time.perf_counter() - T0
    return out

def markdown(o):
    m, mo, tk = o['machine'], o['model'], o['tokens']
    gib = lambda b: f'{b / 2**30:.1f} GiB'
    cuda = f" (CUDA {m['cuda']})" if m['cuda'] else ''
    md = [f"# Sweep seconds per α on a {o['model_shapes']}-shaped model, {o['date']}", '',
          f"{m['device_name']}; torch {m['torch']}{cuda}, transformers {m['transformers']}; {m['dtype']}; attention {mo['attn_implementation']}; "
          f"{o['seconds']:.0f} s in all.", '', f"`{o['command']}`", '',
          f"Gemma3ForCausalLM from a config, random weights (seed 0): {mo['n_params']:,} parameters ({', '.join(mo['param_dtypes'])}), hidden {mo['hidden_size']}, "
          f"intermediate {mo['intermediate_size']}, {mo['layers']} layers ({mo['sliding_layers']} sliding, window {mo['sliding_window']}; {mo['full_layers']} full), "
          f"{mo['heads']} heads / {mo['kv_heads']} kv heads × {mo['head_dim']}, vocab {mo['vocab_size']}; built in {o['build_seconds']:.1f} s. "
          f"T: a random fp32 direction, {o['tv_values']:,} values. Eval: {o['total_texts']} texts ({', '.join(f'{k} {v}' for k, v in o['eval_texts'].items())}; "
          f"make_split eval, byte tokenizer), batch {o['batch_size']}, {tk['batches']} forward passes per evaluation. "
          f"Grid: {o['points']} α from {o['alphas'][0]:g} to {o['alphas'][-1]:g} (step {o['step']:g}), {o['doubling_pairs']} (α, 2α) pairs read from it.", '',
          '| what | measured | goal |', '|---|---|---|',
          f"| sweep: seconds per α (wall ÷ points, entry included) | {o['sweep_seconds_per_alpha']:.4f} | ≤ {GOAL_S_PER_ALPHA} (seed: {SEED_S_PER_ALPHA} on an H200, Gemma-3-4B) |",
          f"| sweep: median seconds per point (result file: move + evaluation + distance) | {o['sweep_point_seconds_median']:.4f} | — |",
          f"| fixed-weight evaluation, seconds (median of {o['repeats']}) | {o['fixed_eval_seconds']:.4f} | — |",
          f"| sweep ÷ (points × fixed evaluation) | {o['sweep_over_fixed']:.3f} | ≤ 1.05 |",
          f"| weight write θ_base + αT per α (`Displacement.__call__`), seconds | {o['write_seconds_per_alpha']:.4f} | — |",
          f"| realised-distance check per α (`Displacement.distance`), seconds | {o['distance_seconds_per_alpha']:.4f} | — |",
          f"| entry of `displaced` (fingerprint check + pristine copy), once per sweep, seconds | {o['displaced_entry_seconds']:.3f} | — |",
          f"| ‖T‖, once per sweep, seconds | {o['tv_norm_seconds']:.3f} | — |",
          f"| forward passes per α in the sweep | {o['sweep_forward_calls_per_alpha']:g} | — |",
          f"| real ÷ computed tokens per evaluation | {tk['real']:,} ÷ {tk['computed']:,} = {tk['real'] / tk['computed']:.3f} | — |",
          f"| {m['dtype']} matmul peak (best of the model's shapes, torch.mm or F.linear), TFLOP/s | {o['matmul_peak_flops'] / 1e12:.3f} | — |",
          f"| fixed evaluation on real tokens, TFLOP/s; fraction of the peak (without the head's FLOPs) | {o['achieved_flops'] / 1e12:.3f}; {o['achieved_fraction']:.4f} ({o['achieved_fraction_without_head']:.4f}) | — |",
          f"| L(0) of the sweep − fixed-evaluation loss, max over sets | {o['L0_max_abs_diff']:.1e} | 0 |",
          f"| non-finite per-text losses in the sweep | {o['sweep_nonfinite']} | 0 |"]
    if 'gpu_memory_peak_bytes' in o:
        g = o['gpu_memory_peak_bytes']
        md += [f"| peak GPU memory allocated during: the build; T; the fixed evaluations; the sweep; the writes | {'; '.join(gib(g[k]) for k in ('model', 'tv', 'fixed_evaluation', 'sweep', 'writes'))} | — |"]
    for k, r in o.get('logits', {}).items():
        g = r.get('gpu_peak_bytes')
        md += [f"| {k} set: seconds per evaluation, scored-only output layer (`score`) ÷ whole-batch logits (the removed path) | "
               f"{r['ratio']:.2f} ({r['seconds']['after']:.4f} ÷ {r['seconds']['before']:.4f} s)" + (f"; peak GPU memory {gib(g['after'])} vs {gib(g['before'])}" if g else '')
               + f" | {'≤ 1.0' if k == 'general' else '≤ 0.6'} |"]
    md += ['', 'Matmul shapes (m × k @ k × n: TFLOP/s as torch.mm / F.linear): ' + '; '.join(f"{k} {v['m']}×{v['k']}@{v['k']}×{v['n']}: {v['mm_flops'] / 1e12:.3f} / {v['linear_flops'] / 1e12:.3f}" for k, v in o['matmul'].items()) + '.',
           f"Evaluation FLOPs on real tokens (2 × non-embedding parameters + 2 × vocab × hidden per token, attention 4 × heads × head_dim × positions attended per layer): "
           + ', '.join(f"{k} {v:.3e}" for k, v in o['eval_flops'].items() if k != 'non_embedding_params') + '.',
           'L(0) per set (sweep / fixed): ' + '; '.join(f"{k} {v['sweep']:.6f} / {v['fixed']:.6f}" for k, v in o['L0'].items()) + '.',
           'Fixed evaluations (s): ' + ', '.join(f'{s:.4f}' for s in o['fixed_eval_seconds_all']) + '; writes per α (s): ' + ', '.join(f'{s:.4f}' for s in o['write_seconds_all']) + '.']
    return md

def main(a):
    global T0
    if __name__ != '__main__': T0 = time.perf_counter()             # called from Python (a test): time from here, not from the import
    o = measure(a)
    d = Path(a.out) if a.out else Path(__file__).resolve().parent / 'results'
    d.mkdir(parents=True, exist_ok=True)
    # a tiny or an eager run never overwrites the default run's files
    stem = d / f"{o['date']}-gpu{'-tiny' if a.tiny else ''}{'' if a.attn == 'sdpa' else '-' + a.attn}"
    stem.with_suffix('.json').write_text(json.dumps(o, indent=1))
    md = markdown(o)
    stem.with_suffix('.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md), flush=True)
    log(f'wrote {stem}.json and .md')
    return o

def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--tiny', action='store_true', help='a tiny Gemma 3 config (CPU, seconds) instead of the 4B shapes')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--dtype', choices=['bfloat16', 'float16', 'float32'], help='default bfloat16 on CUDA, float32 on a CPU (whose bf16 matmuls are emulated: slow)')
    p.add_argument('--attn', default='sdpa', choices=ATTN, help='attention implementation the model is built with')
    p.add_argument('--points', type=int, default=9, help='α points on the grid (at least 3)')
    p.add_argument('--repeats', type=int, default=3, help='fixed-weight evaluations timed (the median is reported)')
    p.add_argument('--task', default='sentiment_positive', help="the task set beside 'general' (the seed's task)")
    p.add_argument('--texts', type=int, default=135, help='eval texts in all, two thirds general')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--out', help='folder for the .json and .md (default benchmarks/results)')
    a = p.parse_args(argv)
    a.command = shlex.join(['python', 'benchmarks/gpu.py', *(sys.argv[1:] if argv is None else argv)])   # what reproduces the figures
    if a.points < 3: p.error(f'--points must be at least 3 (a grid with 0, α and 2α), got {a.points}')
    for k in ('repeats', 'batch_size'):
        if getattr(a, k) < 1: p.error(f"--{k.replace('_', '-')} must be at least 1, got {getattr(a, k)}")
    if a.texts < 3: p.error(f'--texts must be at least 3 (one task text and two general), got {a.texts}')
    if torch.device(a.device).type == 'cuda' and not torch.cuda.is_available(): p.error(f'--device {a.device}: CUDA is not available here (use --device cpu --tiny)')
    a.dtype = a.dtype or ('bfloat16' if torch.device(a.device).type == 'cuda' else 'float32')
    return a

if __name__ == '__main__':
    main(parse())
