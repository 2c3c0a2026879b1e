"benchmarks/gpu.py runs unchanged on a CPU with a tiny Gemma 3: its results are complete and finite, L(0) of the sweep is the fixed-weight loss, bad options are refused (no timing is asserted)."
import importlib.util, json, math, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / 'benchmarks' / 'gpu.py'

def run(out, *args):
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(SCRIPT), '--tiny', '--device', 'cpu', '--out', str(out), *args],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    js, md = sorted(Path(out).glob('*-gpu-tiny.json')), sorted(Path(out).glob('*-gpu-tiny.md'))
    assert len(js) == len(md) == 1, list(Path(out).iterdir())
    return json.loads(js[0].read_text()), md[0].read_text(), r.stdout

def positive(o, *keys):
    for k in keys:
        assert isinstance(o[k], (int, float)) and math.isfinite(o[k]) and o[k] > 0, (k, o[k])

def check(o, md, stdout, dtype, points):
    positive(o, 'sweep_seconds_per_alpha', 'sweep_wall_seconds', 'sweep_point_seconds_median', 'fixed_eval_seconds', 'write_seconds_per_alpha',
             'distance_seconds_per_alpha', 'displaced_entry_seconds', 'matmul_peak_flops', 'achieved_flops', 'achieved_fraction',
             'achieved_fraction_without_head', 'sweep_over_fixed')
    assert len(o['fixed_eval_seconds_all']) == o['repeats'] and len(o['write_seconds_all']) == points
    assert all(v['mm_flops'] > 0 and v['linear_flops'] > 0 for v in o['matmul'].values())
    assert o['matmul_peak_flops'] == max(max(v['mm_flops'], v['linear_flops']) for v in o['matmul'].values())
    tk = o['tokens']
    assert 0 < tk['real'] <= tk['computed'] and tk['batches'] >= len(o['eval_texts'])
    assert o['eval_flops']['total'] == sum(o['eval_flops'][k] for k in ('linear', 'head', 'attention')) > 0
    assert o['points'] == len(o['alphas']) == points and 0.0 in o['alphas'] and o['doubling_pairs'] >= 1
    assert o['sweep_forward_calls_per_alpha'] == tk['batches']       # one pass per batch per α: L(2α) is read from the grid
    # the correctness check: α = 0 writes the base back bit for bit, so the sweep's L(0) is the fixed-weight loss
    assert set(o['L0']) == set(o['eval_texts'])
    for k, v in o['L0'].items(): assert math.isfinite(v['fixed']) and abs(v['sweep'] - v['fixed']) <= 1e-6, (k, v)
    assert o['L0_max_abs_diff'] <= 1e-6 and o['sweep_nonfinite'] == 0
    m = o['machine']
    assert m['dtype'] == dtype and m['attn'] == 'sdpa' and m['device'] == 'cpu' and m['device_name'] and m['torch']
    assert o['model']['param_dtypes'] == [dtype] and o['model']['sliding_layers'] >= 1 and o['model']['full_layers'] >= 1
    assert o['command'].startswith('python benchmarks/gpu.py --tiny --device cpu --out ')
    assert o['command'] in md and '| what | measured | goal |' in md and m['device_name'] in md
    assert '| sweep: seconds per α' in stdout                        # the table is printed, not only written
    assert set(o['logits']) == set(o['eval_texts'])                  # section 6: the scored-only head against whole-batch logits, per set
    for k, v in o['logits'].items():
        assert len(v['runs']['before']) == len(v['runs']['after']) == o['repeats'] and v['ratio'] > 0 and math.isfinite(v['ratio'])
        assert f'| {k} set: seconds per evaluation, scored-only output layer' in md

def test_tiny_cpu_run_is_complete_and_correct(tmp_path):
    o, md, out = run(tmp_path)
    assert o['total_texts'] == sum(o['eval_texts'].values()) == 135   # the seed's eval set size (the built-in tasks have more)
    assert o['eval_texts'] == {'general': 90, 'sentiment_positive': 45}
    check(o, md, out, 'float32', 9)                                   # a CPU's default dtype

@pytest.fixture(scope='module')
def gpu():
    spec = importlib.util.spec_from_file_location('gpu_benchmark', SCRIPT)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_bf16_as_on_the_gpu(gpu, tmp_path, capsys):
    "The GPU run's dtype on the CPU: bf16 weights moved by an fp32 T, and L(0) still exact (smaller, and in this process, so it stays quick)."
    args = ['--tiny', '--device', 'cpu', '--out', str(tmp_path), '--dtype', 'bfloat16', '--points', '3', '--repeats', '1', '--texts', '30']
    gpu.main(gpu.parse(args))
    o, md = (json.loads(f.read_text()) if f.suffix == '.json' else f.read_text() for f in sorted(tmp_path.glob('*-gpu-tiny.*')))
    assert o['eval_texts'] == {'general': 20, 'sentiment_positive': 10} and o['alphas'] == [0.0, 0.75, 1.5]
    check(o, md, capsys.readouterr().out, 'bfloat16', 3)

@pytest.mark.parametrize('args, message', [
    (['--points', '2'], '--points must be at least 3'),
    (['--attn', 'flashy'], "argument --attn: invalid choice: 'flashy'"),
    (['--dtype', 'int8'], "argument --dtype: invalid choice: 'int8'"),
    (['--repeats', '0'], '--repeats must be at least 1'),
    (['--device', 'cuda'], 'CUDA is not available here')])
def test_bad_options_are_refused(gpu, capsys, args, message):
    if args[0] == '--device' and gpu.torch.cuda.is_available(): pytest.skip('CUDA is available here')
    with pytest.raises(SystemExit) as e: gpu.parse(['--tiny', *args])
    assert e.value.code == 2 and message in capsys.readouterr().err

def test_grid_and_flop_counts(gpu):
    g, step, pairs = gpu.grid_for(9)
    assert g.tolist() == [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5] and step == 0.25 and len(pairs) == 4
    for n in (3, 4, 5, 7, 17): assert len(gpu.grid_for(n)[0]) == n and gpu.grid_for(n)[0][-1] == 1.5
    # positions attended: causal i + 1, capped at the window
    assert gpu.context_sum(5, None) == gpu.context_sum(5, 8) == 15 and gpu.context_sum(5, 2) == 1 + 2 + 2 + 2 + 2
    assert gpu.layer_types(12, 6) == (['sliding_attention'] * 5 + ['full_attention']) * 2
    assert gpu.GEMMA3_4B['layer_types'].count('full_attention') == 5 and len(gpu.GEMMA3_4B['layer_types']) == 34

def test_eager_and_sdpa_build_the_same_model(gpu):
    "`--attn` changes only how attention is computed: the same seed gives the same weights and (nearly) the same losses."
    import torch
    from sitv.evaluate import evaluate
    from sitv.model import byte_tokenizer
    tok, sets = byte_tokenizer(), gpu.eval_sets('sentiment_positive', 12)
    ms = {a: gpu.build_model(gpu.TINY, 'cpu', torch.float32, a) for a in gpu.ATTN}
    assert {a: m.config._attn_implementation for a, m in ms.items()} == {a: a for a in gpu.ATTN}
    assert all(torch.equal(p, q) for p, q in zip(ms['sdpa'].parameters(), ms['eager'].parameters()))
    L = {a: evaluate(m, sets, tok) for a, m in ms.items()}
    for k in sets: assert L['sdpa'][k]['loss'] == pytest.approx(L['eager'][k]['loss'], abs=1e-5)
