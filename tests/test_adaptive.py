"Adaptive refinement: known roots found within the tolerance with fewer evaluations than the uniform grid; on a real sweep."
import copy
import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from sitv.adaptive import refine, refine_sweep, close_under_doubling, uniform_points
from sitv.core import TaskVector
from sitv.data import make_split
from sitv.grid import alpha_grid
from sitv.model import byte_tokenizer, train
from sitv.results import Results
from sitv.sweep import crossings, curve

@pytest.mark.parametrize('seed', range(5))
def test_refine_finds_known_roots_with_fewer_evaluations(seed):
    rng = np.random.default_rng(seed)
    r1, r2 = sorted(rng.uniform(0.05, 1.45, 2))
    while r2 - r1 < 0.15: r1, r2 = sorted(rng.uniform(0.05, 1.45, 2))
    f = lambda x: 2.0 + x * (x - r1) * (x - r2)                  # L(0) = 2; crossings exactly at r1 and r2
    calls = []
    def measure(al):
        calls.extend(al); return {x: {'L': f(x)} for x in al}
    out = refine(measure, alpha_grid(-0.5, 1.5, 0.1), tol=0.005)
    cr = [x for x in out['features'] if x['kind'] == 'crossing']
    assert len(cr) == 2
    for c, root in zip(cr, (r1, r2)):
        assert c['located'] and c['bracket'][0] <= root <= c['bracket'][1] <= c['bracket'][0] + 0.005 + 1e-12
        assert abs(c['alpha'] - root) < 0.005
    assert len(calls) == len(set(calls)) == out['n_evaluations']            # nothing evaluated twice
    uniform = np.linspace(-0.5, 1.5, out['uniform_equivalent'])
    assert len(crossings(uniform, f(uniform))) == 2 and out['uniform_equivalent'] == uniform_points(-0.5, 1.5, 0.005)
    assert out['n_evaluations'] < out['uniform_equivalent'] / 4
    keys = set(calls)
    assert all(round(2 * x, 12) in keys for x in keys if -0.5 <= 2 * x <= 1.5)   # closed under doubling

def test_refine_adds_nothing_without_features():
    "Negative control: a monotone curve has no crossing and no interior minimum, so the coarse grid is all there is."
    calls = []
    def measure(al):
        calls.extend(al); return {x: {'L': 1.0 + x} for x in al}
    out = refine(measure, alpha_grid(-0.5, 1.5, 0.1), tol=0.001)
    assert out['rounds'] == [] and len(calls) == 21
    assert [f['kind'] for f in out['features']] == ['minimum'] and not out['features'][0]['located']   # at the grid end

def test_refine_rejects_bad_tolerance():
    with pytest.raises(ValueError, match='tol must be positive'):
        refine(lambda al: {x: {'L': x} for x in al}, [0.0, 1.0], tol=0)

def test_close_under_doubling_negative_values():
    assert close_under_doubling([-0.05], -0.5, 1.5) == [-0.4, -0.2, -0.1, -0.05]

def test_refine_sweep_on_a_model(tmp_path):
    tok = byte_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    torch.manual_seed(0); base = LlamaForCausalLM(cfg).eval()
    ft = copy.deepcopy(base)
    train(ft, make_split('qa', 'train', 64), tok, steps=10, batch_size=8, lr=3e-3, progress=False)
    T = TaskVector.from_models(base, ft)
    sets = {'qa': make_split('qa', 'eval', 8)}
    res = Results(tmp_path / 'r.json', {'t': 1})
    grid = alpha_grid(-1.0, 6.0, 0.5)                           # this short fine-tune's qa minimum lies near α = 4.5
    out = refine_sweep(base, T, sets, tok, res, grid, tol=0.05, progress=False)
    assert out['computed_now'] == len(res) == out['n_evaluations'] > len(grid)
    a, L = curve(res, 'qa')
    m = [f for f in out['features'] if f['kind'] == 'minimum'][0]
    assert m['located'] and L.min() == L[a == m['alpha']][0]              # the minimum was bracketed to 0.05 and is the lowest point
    assert refine_sweep(base, T, sets, tok, res, grid, tol=0.05, progress=False)['computed_now'] == 0   # resumed from the file

@pytest.mark.parametrize('step', [1/3, 1/7, 1/12])
def test_refinement_adds_no_near_duplicates(step):
    "Doubles and midpoints are found by grid index: no α is evaluated twice under floats that differ in the 12th decimal."
    f = lambda x: 2.0 + x * (x - 0.41) * (x - 1.13)
    calls = []
    def measure(al):
        calls.extend(al); return {x: {'L': f(x)} for x in al}
    out = refine(measure, alpha_grid(-0.5, 1.5, step), tol=0.002)
    assert np.diff(sorted(calls)).min() > 1e-6
    assert len(calls) == len(set(calls)) == out['n_evaluations']
    assert [c['direction'] for c in out['features'] if c['kind'] == 'crossing'] == ['down', 'up']

def test_refine_resumes_the_shipped_report_files():
    "The refined points of every shipped sweep result are exactly the floats this code asks for: resuming computes nothing."
    from pathlib import Path
    import json
    files = [p for p in (Path(__file__).resolve().parent.parent / 'reports' / 'results').glob('sweep-*.json')
             if not p.name.endswith('.summary.json')]
    refined = 0
    for p in files:
        doc = json.loads(p.read_text()); cfg = doc['config']
        if doc.get('kind') == 'accuracy': continue                       # lm-eval accuracy at chosen α of a sweep: never refined
        pts = {q['key']['alpha']: q['metrics'] for q in doc['points']}
        coarse = alpha_grid(cfg['alpha_min'], cfg['alpha_max'], cfg['alpha_step'])
        if len(pts) == len(coarse): continue                           # null directions and seeds: not refined
        missing = []
        def measure(al):
            missing.extend(x for x in al if x not in pts)
            return {x: {n: pts[x][n]['loss'] for n in ('general', cfg['task'])} for x in al}
        out = refine(measure, coarse, tol=0.01)
        assert missing == [] and out['n_evaluations'] == len(pts), (p.name, missing)
        refined += 1
    if not files: pytest.skip('no shipped report results')
    assert refined >= 1

def test_refine_sweep_reads_older_floats_of_the_same_point(tmp_path, monkeypatch):
    "A result file whose refined α differ from this code's floats in the 12th decimal is resumed, not extended with near-duplicates."
    import sitv.sweep
    f = lambda x: 2.0 + x * (x - 0.41) * (x - 1.13)
    def fake_sweep(model, tv, sets, tok, alphas, results, **kw):
        todo = [a for a in alphas if not results.done(dict(alpha=float(a)))]
        for a in todo: results.add(dict(alpha=float(a)), {'L': {'loss': f(a)}})
        return len(todo)
    import sitv.adaptive
    monkeypatch.setattr(sitv.sweep, 'sweep', fake_sweep)
    monkeypatch.setattr(sitv.adaptive, 'sweep', fake_sweep, raising=False)   # where an older module bound it at import
    grid = alpha_grid(-0.5, 1.5, 0.1)
    first = refine(lambda al: {x: {'L': f(x)} for x in al}, grid, tol=0.005)
    old = Results(tmp_path / 'old.json', {'t': 1})
    for x in first['alphas']:
        x = float(x) if np.isclose(grid, x, atol=1e-9).any() else float(x) + 1e-12    # an older rounding of the refined points
        old.add(dict(alpha=x), {'L': {'loss': f(x)}})
    out = refine_sweep(None, None, {'L': []}, None, old, grid, tol=0.005, progress=False)
    assert out['computed_now'] == 0 and len(old) == len(first['alphas']) == out['n_evaluations']
