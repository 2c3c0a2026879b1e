"The cross-task report on a folder of synthetic per-task results reproduces the values put in, and refuses an empty folder."
import json, subprocess, sys
from pathlib import Path

import pytest
import torch

from sitv.core import TaskVector
from sitv.results import Results

ROOT = Path(__file__).resolve().parent.parent
from test_reports import run_report, text_of

ALPHAS = [-0.5, 0.0, 0.5, 1.0, 1.5]

def _task(folder, task, vec, general, own, best_g, best_t, crossings_g, model='synthetic'):
    "Write what a per-task report writes: result file, one null file, T and the summary, with known values (`vec`: a list, or a dict of tensors)."
    stem = f'sweep-{task}-0123456789'
    res = Results(folder / f'{stem}.json', {'task': task})
    for a in ALPHAS: res.add({'alpha': a}, {'general': {'loss': general(a)}, task: {'loss': own(a)}})
    null = Results(folder / f'{stem}-null-gaussi0.json', {'task': task, 'direction': 'Gaussian 0'})
    for a in ALPHAS: null.add({'alpha': a}, {'general': {'loss': 2.0 + 0.3 * a * a}, task: {'loss': 3.0 + 0.3 * a * a}})
    deltas = {n: torch.tensor(v) for n, v in vec.items()} if isinstance(vec, dict) else {'w': torch.tensor(vec)}
    T = TaskVector(deltas, ('f' if len(deltas) == 1 else 'e') * 16, source='synthetic'); T.save(folder / f'{stem}.tv.safetensors')
    sets = {'general': dict(best=best_g, L0=general(0.0), crossings=crossings_g, squaring_returns=[c['alpha'] / 2 for c in crossings_g]),
            task: dict(best=best_t, L0=own(0.0), crossings=[], squaring_returns=[])}
    s = dict(kind='sweep-summary', task=task, model=model, config={}, code_hash='abc123abc123', result_file=f'{stem}.json',
             tv_file=f'{stem}.tv.safetensors', tv_norm=T.norm(), tv_values=T.numel(), grid=dict(alpha_min=-0.5, alpha_max=1.5, points=5),
             eval_texts={}, n_boot=100, seeds=[0], null_files=[f'{stem}-null-gaussi0.json'], seed_files=[], sets=sets, seconds=1.0)
    (folder / f'{stem}.summary.json').write_text(json.dumps(s))

def test_cross_task_reproduces_synthetic_values(tmp_path):
    d = tmp_path / 'results'; d.mkdir()
    _task(d, 'qa', [3.0, 0.0, 0.0, 4.0], lambda a: 2.0 + 0.1 * (a * a - a), lambda a: 3.0 - a + 0.5 * a * a,
          dict(alpha=0.5, loss=1.975, interval=[-0.1, 1.2]), dict(alpha=1.0, loss=2.5, interval=[0.8, 1.3]),
          [dict(alpha=1.0, direction='up', interval=[0.7, 1.4], exists=0.97, other_seeds=[2, 2], established=True)])
    _task(d, 'sentiment_positive', [3.0, 4.0, 0.0, 0.0], lambda a: 2.0 + 0.2 * a * a, lambda a: 4.0 - 0.5 * a,
          dict(alpha=0.0, loss=2.0, interval=[0.1, 0.4]), dict(alpha=1.5, loss=3.25, interval=[1.2, 1.5]),
          [dict(alpha=0.3, direction='up', interval=[0.1, 0.9], exists=0.6, other_seeds=[0, 2], established=False)])
    nb = run_report('cross_task.ipynb', tmp_path / 'c.ipynb', tmp_path, results_dir=str(d))
    out = json.loads((d / 'cross_task.json').read_text())
    assert out['tasks'] == ['qa', 'sentiment_positive'] and out['code_hashes'] == ['abc123abc123']
    rows = {r['task']: r for r in out['table']}
    assert rows['qa']['tv_norm'] == pytest.approx(5.0) and rows['sentiment_positive']['tv_norm'] == pytest.approx(5.0)
    assert rows['qa']['general']['best']['interval'] == [-0.1, 1.2]
    assert rows['sentiment_positive']['task_set']['best']['alpha'] == 1.5
    assert sum(out['cosines'], []) == pytest.approx([1.0, 0.36, 0.36, 1.0])     # (3,0,0,4)·(3,4,0,0) / 25
    text = text_of(nb)
    assert '+1.000 [+0.700, +1.400] in 97%, established' in text                  # the table shows the crossing as given
    assert 'ΔL -0.0250' in text                                                  # 1.975 − L0 = 2.0
    assert 'squaring returns' in text and '+0.500' in text                       # the crossing halved
    f = ' '.join(out['findings'])
    assert '1 of 2 tasks' in f and 'qa' in f.split('contains 0')[1].split(')')[0]  # only qa's interval holds 0
    assert '2 found across 2 tasks, 1 established (qa +1.000)' in f
    assert 'sentiment_positive +0.300 (in 60% of resamples)' in f
    assert 'for sentiment_positive the best scaling of T differs' in f          # [1.2, 1.5] excludes α = 1
    assert (d / 'cross-task-curves.png').stat().st_size > 10_000

def test_cross_task_compares_vectors_of_one_base_on_their_common_tensors_and_never_across_bases(tmp_path):
    """An adapter's T (its target weights) beside a full fine-tune's T (every tensor) on one base: the cosine is taken on the
    tensors both move, with each vector's full norm; a vector of another base model is not compared (the report crashed on
    SmolLM2's LoRA and full-fine-tune sweeps: their fingerprints cover different tensors)."""
    d = tmp_path / 'results'; d.mkdir()
    flat = lambda a: 2.0 + 0.1 * a * a
    kw = dict(best_g=dict(alpha=0.0, loss=2.0, interval=[-0.2, 0.2]), best_t=dict(alpha=1.0, loss=1.9, interval=[0.8, 1.2]), crossings_g=[])
    _task(d, 'full', {'w': [3.0, 0.0, 0.0, 4.0], 'b': [0.0, 5.0]}, flat, flat, **kw)      # ‖T‖ = √50
    _task(d, 'lora', [3.0, 4.0, 0.0, 0.0], flat, flat, **kw)                              # ‖T‖ = 5, only 'w'
    _task(d, 'other', [1.0, 0.0, 0.0, 0.0], flat, flat, model='another-base', **kw)
    nb = run_report('cross_task.ipynb', tmp_path / 'c.ipynb', tmp_path, results_dir=str(d))
    out = json.loads((d / 'cross_task.json').read_text())
    i = {t: k for k, t in enumerate(out['tasks'])}
    C = out['cosines']
    assert C[i['full']][i['lora']] == pytest.approx(9 / (50 ** 0.5 * 5)) == C[i['lora']][i['full']]   # (3,0,0,4)·(3,4,0,0) over 'w' only
    assert C[i['full']][i['full']] == pytest.approx(1.0) and C[i['other']][i['other']] == pytest.approx(1.0)
    assert C[i['other']][i['full']] is None and C[i['lora']][i['other']] is None                   # another base: not compared
    text = text_of(nb)
    assert '2 base models: vectors of different bases are not compared' in text
    assert '4 values in common' in ' '.join(out['findings'])                                   # the furthest pair's common support

def test_cross_task_refuses_an_empty_folder(tmp_path):
    "The report's own first cells (tests/nbrun.py) on a folder with no sweep summaries."
    from nbrun import run_inputs
    (tmp_path / 'empty').mkdir()
    out = run_inputs('cross_task.ipynb', 'sweep_summaries(rd)', results_dir=tmp_path / 'empty')
    assert isinstance(out, str) and 'no per-task sweep summaries (sweep-*.summary.json)' in out, out
