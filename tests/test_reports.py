"Report notebooks run end to end through papermill with parameters, as users run them."
import json, subprocess, sys
import numpy as np
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

def run_report(nb, out, cwd, **params):
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / nb), str(out), '--cwd', str(cwd), '-k', 'python3']
    for k, v in params.items(): cmd += ['-p', k, str(v)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(Path(out).read_text())

def text_of(nb):
    "Everything the notebook printed or displayed as text."
    return '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', '')) + ''.join(o.get('data', {}).get('text/markdown', '')) + ''.join(o.get('data', {}).get('text/html', ''))
                     for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []))

def outputs(nb, mime):
    return [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []) if mime in o.get('data', {})]

def test_sweep_report_with_parameters(tmp_path):
    "A non-default task and step reach the notebook (the `parameters` tag works) and the report embeds its figures."
    small = dict(n_general_eval=32, n_task_eval=32, n_boot=200)       # CI's time; the defaults run in full in reports/sweep-*
    nb = run_report('sweep.ipynb', tmp_path / 'out.ipynb', tmp_path, task='instruction_following', alpha_step=0.1,
                    out_dir=str(tmp_path / 'results'), **small)
    injected = [c for c in nb['cells'] if 'injected-parameters' in c['metadata'].get('tags', [])]
    assert injected and 'task = "instruction_following"' in ''.join(injected[0]['source'])
    found = sorted(p for p in (tmp_path / 'results').glob('sweep-instruction_following-*.json') if not p.name.endswith('.summary.json'))
    nulls = [p for p in found if '-null-' in p.name]
    seeds = [p for p in found if p.stem.endswith(('-seed1', '-seed2'))]
    accs = [p for p in found if '-accuracy-' in p.name]
    files = [p for p in found if p not in nulls and p not in seeds and p not in accs]
    assert len(files) == 1, found                             # the vector from the main fine-tune
    assert len(nulls) == 2, found                             # one Gaussian and one filter-normalised direction
    assert len(seeds) == 2, found                             # n_seeds=3: two more fine-tuning seeds
    assert len(accs) == 1, found                              # accuracy along α (lm-eval), both eval sets
    assert len(found) == 6, found                             # nothing else written
    doc = json.loads(files[0].read_text())
    assert doc['config']['task'] == 'instruction_following' and doc['config']['alpha_step'] == 0.1
    grid_pts = [p for p in doc['points'] if abs(p['key']['alpha'] * 10 - round(p['key']['alpha'] * 10)) < 1e-9]
    assert len(grid_pts) == 21                            # [-0.5, 1.5] at 0.1, including 0 …
    refined = sorted(p['key']['alpha'] for p in doc['points'] if p not in grid_pts)
    assert refined                                        # … plus the points adaptive refinement added (refine_tol = 0.01)
    keys = {round(p['key']['alpha'], 12) for p in doc['points']}
    assert all(round(2 * x, 12) in keys for x in keys if -0.5 <= 2 * x <= 1.5)   # still closed under doubling
    assert len(outputs(nb, 'image/png')) >= 5             # fine-tuning curve, norms, landscape, KL, nulls
    for p in nulls + seeds: assert len(json.loads(p.read_text())['points']) == 21
    assert 'evaluations' in text_of(nb) and 'a uniform grid placing every feature within 0.01 needs 201 points' in text_of(nb)
    text = json.dumps(nb)
    assert 'L(0) = base loss' in text and 'bit-equal: True' in text
    assert 'top-1 agreement' in text and 'bootstrap' in text
    assert all('kl' in p['metrics']['general'] for p in doc['points'])      # KL to the base measured at every α
    acc = json.loads(accs[0].read_text())                  # accuracy at the grid's multiples of accuracy_step = 0.25 (on a 0.1 grid: of 0.5)
    assert acc['kind'] == 'accuracy' and sorted(p['key']['alpha'] for p in acc['points']) == [-0.5, 0.0, 0.5, 1.0, 1.5]
    for p in acc['points']:
        for n in ('general', 'instruction_following'):
            c = p['per_text'][n]['correct']
            assert len(c) == p['metrics'][n]['n'] > 10 and p['metrics'][n]['acc'] == pytest.approx(sum(c) / len(c))
    a0, a1 = (next(p for p in acc['points'] if p['key']['alpha'] == x)['metrics']['instruction_following']['acc'] for x in (0.0, 1.0))
    assert a1 > a0, (a0, a1)                              # the fine-tune learned some of its task's answers (26 items: 0.27 → 0.38)
    t = text_of(nb)
    assert 'peak accuracy' in t and ('crossing of the base' in t or 'does not cross its base value' in t)
    # a rerun with the same output folder resumes: nothing is recomputed
    nb2 = run_report('sweep.ipynb', tmp_path / 'out2.ipynb', tmp_path, task='instruction_following', alpha_step=0.1,
                     out_dir=str(tmp_path / 'results'), **small)
    assert '0 grid points computed now, 21 resumed' in text_of(nb2) and '(0 computed in this run' in text_of(nb2)
    assert '5 α measured (0 now, 5 resumed from the file)' in text_of(nb2)
    # what the cross-task report reads: a summary with the printed values, T itself, and the code hash
    summ = list((tmp_path / 'results').glob('sweep-instruction_following-*.summary.json'))
    assert len(summ) == 1
    s = json.loads(summ[0].read_text())
    assert s['result_file'] == files[0].name and (tmp_path / 'results' / s['tv_file']).exists() and len(s['code_hash']) == 12
    assert s['grid']['points'] == len(doc['points']) and len(s['null_files']) == 2 and len(s['seed_files']) == 2
    L0 = [p for p in doc['points'] if p['key']['alpha'] == 0][0]['metrics']['general']['loss']
    assert abs(s['sets']['general']['L0'] - L0) < 1e-12
    sa = s['accuracy']['instruction_following']           # accuracy's features as the report printed them
    assert sa['result_file'] == accs[0].name and sa['alphas'] == [-0.5, 0.0, 0.5, 1.0, 1.5]
    assert sa['peak']['alpha'] in sa['peak']['tied'] and sa['acc'][sa['alphas'].index(sa['peak']['alpha'])] == max(sa['acc'])
    assert set(sa['falls_below']) == {'alpha', 'exists', 'interval'} and 0 <= sa['falls_below']['exists'] <= 1
    cross = run_report('cross_task.ipynb', tmp_path / 'cross.ipynb', tmp_path, results_dir=str(tmp_path / 'results'))
    ct = json.loads((tmp_path / 'results' / 'cross_task.json').read_text())
    assert ct['tasks'] == ['instruction_following'] and ct['cosines'][0] == pytest.approx([1.0])
    assert ct['table'][0]['tv_norm'] == pytest.approx(s['tv_norm'])
    assert len(outputs(cross, 'image/png')) >= 2

def test_composition_report_2d(tmp_path):
    "Two tasks: a 5 × 5 grid with R², landmarks and the barrier row, heatmaps and sections embedded."
    nb = run_report('composition.ipynb', tmp_path / 'c.ipynb', tmp_path, task1='sentiment_negative', task2='instruction_following',
                    coef_step=0.5, n_general_eval=32, n_task_eval=32, out_dir=str(tmp_path / 'results'))
    files = list((tmp_path / 'results').glob('composition-sentiment_negative-instruction_following-*.json'))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert doc['kind'] == 'composition' and len(doc['points']) == 25
    assert {tuple(sorted(p['key'])) for p in doc['points']} == {('alpha', 'beta')}
    assert len(outputs(nb, 'image/png')) >= 2                  # heatmaps and sections
    text = text_of(nb)
    assert 'R² anchored additive' in text and 'barrier T1–T2' in text and '25 grid points' in text
    assert '| **total** | **24** |' in text and 'a copy in memory' in text and 'copies of the weights' in text   # the plan after L(0), peak memory

def test_composition_report_3d(tmp_path):
    "Three tasks: a 3 × 3 × 3 grid, slices drawn, pairwise barriers."
    nb = run_report('composition.ipynb', tmp_path / 'c3.ipynb', tmp_path, task1='sentiment_positive', task2='qa',
                    task3='instruction_following', coef_min=-1.0, coef_max=1.0, coef_step=1.0, n_general_eval=32, n_task_eval=32, out_dir=str(tmp_path / 'r'))
    doc = json.loads(next((tmp_path / 'r').glob('composition-*.json')).read_text())
    assert len(doc['points']) == 27 and {tuple(sorted(p['key'])) for p in doc['points']} == {('alpha', 'beta', 'gamma')}
    assert len(outputs(nb, 'image/png')) >= 2
    text = text_of(nb)
    assert 'barrier T1–T3' in text and 'barrier T2–T3' in text and '27 grid points' in text and '3 × 3 × 3 = 27 points' in text

def test_composition_report_refuses_huge_grid(tmp_path, monkeypatch):
    "The report's own input cells (tests/nbrun.py): 41³ points are refused before any fine-tune (the 2-D and 3-D runs above pass them)."
    from nbrun import run_inputs
    monkeypatch.setenv('SITV_CACHE', str(tmp_path / 'cache'))
    out = run_inputs('composition.ipynb', 'exceed max_points', task3='instruction_following', coef_step=0.05, out_dir=tmp_path / 'r')
    assert isinstance(out, str) and 'exceed max_points=2001' in out, out
    assert not (tmp_path / 'cache').exists() and not (tmp_path / 'r').exists()

def test_lora_report(tmp_path):
    "The LoRA report: the precision table, the unmerge drift, the sweeps by scaling and by writes agreeing, and the extraction."
    nb = run_report('lora.ipynb', tmp_path / 'l.ipynb', tmp_path, task='instruction_following', r=4, lora_alpha=8, lora_steps=40,
                    alpha_step=0.25, extract_rank=4, n_general_eval=32, n_task_eval=32, out_dir=str(tmp_path / 'results'))
    text = text_of(nb)
    for row in ('float32 − float32', 'float16 − float32', 'bfloat16 − bfloat16', 'bfloat16 − float32'):
        assert row in text
    assert 'ΔW entries lost to rounding' in text and 'tensors changed' in text and 'seconds per α: adapter scaling' in text
    assert 'modules_to_save' in text and 'not representable' in text     # where the dropped part of ‖T‖² went, stated
    files = sorted((tmp_path / 'results').glob('lora-instruction_following-*.json'))
    assert len(files) == 9          # scaling, writes, 4 half-precision vectors, full T, extracted, extracted + modules_to_save
    by = {json.loads(p.read_text())['config']['how']: json.loads(p.read_text()) for p in files}
    L = lambda how: np.array([p['metrics']['instruction_following']['loss'] for p in sorted(by[how]['points'], key=lambda p: p['key']['alpha'])])
    assert np.abs(L('adapter scaling (fp32, unmerged)') - L('written weights (fp32)')).max() < 1e-5
    assert len(list((tmp_path / 'results').glob('lora-instruction_following-*-extracted-r4/adapter_model.safetensors'))) == 1
    assert len(outputs(nb, 'image/png')) >= 4               # training curve, differences, sweeps, extraction

def test_tsv_report(tmp_path):
    "The merging report: spectra, TSV-C, interference, the merging table for the four tasks, export, LoRA combinations."
    nb = run_report('tsv.ipynb', tmp_path / 't.ipynb', tmp_path, merge_alpha_min=0.5, merge_alpha_step=0.5, sweep_step=0.5,
                    n_val=16, n_task_eval=32, n_general_eval=32, lora_tasks='qa,instruction_following', lora_steps=20, ada_steps=2,
                    accuracy='',   # CI's time: accuracy runs in the bring-your-own tsv test and the README's tsv command
                    out_dir=str(tmp_path / 'results'))
    text = text_of(nb)
    doc = json.loads(next(p for p in (tmp_path / 'results').glob('merge-*.json') if '-sweep-' not in p.name).read_text())
    methods = [p['key']['method'] for p in doc['points']]
    assert methods[0] == 'task arithmetic' and any(m.startswith('TSV-M (polar)') for m in methods)
    assert any(m.startswith('TIES (global') for m in methods) and any(m.startswith('DARE') for m in methods)
    tasks = ['sentiment_positive', 'sentiment_negative', 'qa', 'instruction_following']
    assert {'Iso-C', 'Iso-CTS (common 0.8)', 'model stock (per tensor)'} <= set(methods)
    assert {f'AdaMerging ({g}-wise, {o})' for g in ('task', 'layer') for o in ('entropy', 'nll')} <= set(methods)
    for p in doc['points']:
        m = p['metrics']
        assert set(tasks) <= set(m) and m['alpha'] in (0.5, 1.0, 1.5, 2.0) and m['chosen'] and m['cost']['seconds'] >= 0
        if m['chosen'].startswith('validation grid'): assert m['cost']['forward'] == 4 and m['cost']['backward'] == 0
        if p['key']['method'].startswith('AdaMerging'): assert m['cost'] == dict(m['cost'], forward=3, backward=2) and len(m['lam']) == 4
    assert 'eval texts sealed' in text and "model stock's t is within one grid step" in text
    assert 'disjoint from the 32' in text and 'reloaded by transformers' in text
    assert 'cat' in text and 'relative error vs Σ ΔW' in text and 'svd_lowrank' in text
    assert len(list((tmp_path / 'results').glob('merge-*-merged/config.json'))) == 1
    assert '| **total** |' in text and 'copies of the weights' in text     # the plan priced by the base's evaluation, and peak memory
    assert len(outputs(nb, 'image/png')) >= 4

def test_symmetries_report(tmp_path):
    "Every symmetry in every block of the shipped model holds, every control is detected, and the alignment control works."
    nb = run_report('symmetries.ipynb', tmp_path / 's.ipynb', tmp_path, n_eval=16)
    text = text_of(nb)
    assert '24 checks (6 symmetries × 4 blocks): the symmetry held in 24, the near miss was detected in 24, the random move in 24' in text
    assert 'positive control: after aligning the permuted b to the base' in text

def test_geometry_report(tmp_path):
    "Small sizes through papermill: every section runs, reports its checks, and writes its measured numbers."
    nb = run_report('geometry.ipynb', tmp_path / 'g.ipynb', tmp_path, task='sentiment_positive', second='random', n_eval=8, n_geo=3,
                    n_random=2, fisher_draws=2, n_hutchinson=2, geo_steps=1, bvp_segments=1, bvp_evals=10, shoot_solves=3, lanczos_tol=1e-2,
                    plane_points='0,1', bvp_nodes=4,
                    kl_alphas='0.01,0.1,1', curv_alphas='0,1', out_dir=str(tmp_path / 'r'),
                    base_file_mib=0, hvp_batch_size=3, hvp_offload_kib=0, grad_batch_size=1)   # every vector in a scratch file, as a real model's are; HVPs over
    # three texts at a time, what their backward needs in scratch pages; per-text gradients streamed: the large-model paths
    files = list((tmp_path / 'r').glob('geometry-sentiment_positive-random-general-*.json'))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert doc['kind'] == 'geometry' and {p['key']['section'] for p in doc['points']} == {'fisher', 'kl', 'curvature', 'plane'}
    m = {p['key']['section']: p['metrics'] for p in doc['points']}
    assert m['fisher']['exact'] > 0 and len(m['fisher']['random_exact']) == 2
    kl, q = np.array(m['kl']['kl']), np.array(m['kl']['quadratic'])
    assert abs(kl[0] / q[0] - 1) < 0.1                         # ½α²TᵀFT is the small-α KL on real data too
    assert set(m['curvature']['sharpness']) == {'θ_base', 'θ_ft (sentiment_positive)'} and len(m['curvature']['span_eigenvalues']) == 4
    assert isinstance(m['plane']['resolved'], bool) and set(m['plane']['K']) == {'(0.0, 0.0)', '(1.0, 0.0)'} == set(m['plane']['G'])
    assert m['plane']['parts'] == ['curvature', 'shooting', 'bvp'] and m['plane']['planned_seconds'] > 0
    assert np.array(m['plane']['christoffel_at_base']).shape == (2, 2, 2)
    text = text_of(nb)
    assert 'standard errors' in text and ('The geodesic is resolved' in text or 'NOT resolved at 1 RK4 steps' in text)
    bvp = m['plane']['bvp']                                    # the boundary-value geodesic at 1 and 2 segments, with its verdict
    assert bvp['n'] == 1 and bvp['nodes'] == 4 and bvp['length_n'] > 0 and bvp['length_2n'] > 0 and isinstance(bvp['resolved'], bool)
    assert ('The boundary-value geodesic is resolved' in text) == bvp['resolved'] and 'boundary-value geodesic is' in text
    assert len(outputs(nb, 'image/png')) >= 3
    bare = [o['data']['text/plain'] for o in outputs(nb, 'text/plain') if o.get('output_type') == 'execute_result' and ''.join(o['data']['text/plain']).strip().isdigit()]
    assert not bare, f'unlabelled numbers in the report (a memory lap as the last line of a cell?): {bare}'
    assert 'nodes per segment' in text and 'Measured at the base in this run: G(c)' in text and 'planned at most' in text

def test_bad_plane_parameters_are_refused_before_loading():
    "The plane's parameters are checked with the others, before the model is loaded (the report's own input cells, tests/nbrun.py)."
    from nbrun import run_inputs
    bad = lambda **p: run_inputs('geometry.ipynb', 'second_name = ', **p)
    assert "unknown plane parts ['geodesics']: choose from curvature, shooting, bvp" in bad(plane='curvature,geodesics')
    assert 'plane_points must name at least one' in bad(plane_points=' ')
    assert 'bvp_nodes must be an integer ≥ 1, got 0' in bad(bvp_nodes=0)
    assert 'n_geo must be an integer ≥ 1, got 0' in bad(n_geo=0)
