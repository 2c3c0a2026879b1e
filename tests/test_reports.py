"Report notebooks run end to end through papermill with parameters, as users run them."
import json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

def run_report(nb, out, cwd, **params):
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / nb), str(out), '--cwd', str(cwd), '-k', 'python3']
    for k, v in params.items(): cmd += ['-p', k, str(v)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(Path(out).read_text())

def outputs(nb, mime):
    return [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []) if mime in o.get('data', {})]

def test_sweep_report_with_parameters(tmp_path):
    "A non-default task and step reach the notebook (the `parameters` tag works) and the report embeds its figures."
    nb = run_report('sweep.ipynb', tmp_path / 'out.ipynb', tmp_path, task='instruction_following', alpha_step=0.1,
                    out_dir=str(tmp_path / 'results'))
    injected = [c for c in nb['cells'] if 'injected-parameters' in c['metadata'].get('tags', [])]
    assert injected and 'task = "instruction_following"' in ''.join(injected[0]['source'])
    files = [p for p in (tmp_path / 'results').glob('sweep-instruction_following-*.json') if '-null-' not in p.name]
    nulls = list((tmp_path / 'results').glob('sweep-instruction_following-*-null-*.json'))
    assert len(files) == 1 and len(nulls) == 2                # T, one Gaussian and one filter-normalised direction
    doc = json.loads(files[0].read_text())
    assert doc['config']['task'] == 'instruction_following' and doc['config']['alpha_step'] == 0.1
    assert len(doc['points']) == 21                       # [-0.5, 1.5] at 0.1, including 0
    assert len(outputs(nb, 'image/png')) >= 5             # fine-tuning curve, norms, landscape, KL, nulls
    for p in nulls: assert len(json.loads(p.read_text())['points']) == 21
    text = json.dumps(nb)
    assert 'L(0) = base loss' in text and 'equal: True' in text
    assert 'top-1 agreement' in text and 'bootstrap' in text
    assert all('kl' in p['metrics']['general'] for p in doc['points'])      # KL to the base measured at every α
    # a rerun with the same output folder resumes: nothing is recomputed
    nb2 = run_report('sweep.ipynb', tmp_path / 'out2.ipynb', tmp_path, task='instruction_following', alpha_step=0.1,
                     out_dir=str(tmp_path / 'results'))
    assert '0 points computed now, 21 resumed' in json.dumps(nb2)

def test_sweep_report_rejects_bad_parameters(tmp_path):
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / 'sweep.ipynb'), str(tmp_path / 'o.ipynb'),
           '--cwd', str(tmp_path), '-k', 'python3', '-p', 'task', 'translation']
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode != 0 and "unknown task 'translation'" in r.stderr + r.stdout
