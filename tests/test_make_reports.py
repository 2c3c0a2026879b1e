"""scripts/make_reports.py: the reading copy drops tests and hidden code, numbers are compared within tolerance, and the
staleness check catches old code, missing files and error outputs; the committed reports/ pass it."""
import json, sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'scripts'))
import make_reports as mr

def _nb(path, error=False):
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell
    def code(src, outputs=()):
        c = nbformat.v4.new_code_cell(src); c.outputs = list(outputs); return c
    png = nbformat.v4.new_output('display_data', data={'image/png': 'iVBORw0KGgo=', 'text/plain': '<Figure>'})
    nb.cells = [md('# The report title'), code('#| export\ndef library_function(): pass'),
                code('#| hide\ntest_eq(library_function(), None)  # a library test'),
                code('# parameters\ntask = "qa"'), md('## Results'),
                code('#| echo: false\nsecret_plotting_code()', [png, nbformat.v4.new_output('stream', name='stdout', text='measured 42\n')]),
                code('#| hide\nhidden_but_shown_output()', [nbformat.v4.new_output('stream', name='stdout', text='hidden cell output\n')]),
                code('visible_code(1)')]
    nb.cells[3].metadata['tags'] = ['parameters']
    if error: nb.cells[-1].outputs = [nbformat.v4.new_output('error', ename='ValueError', evalue='boom', traceback=[])]
    nbformat.write(nb, path)
    return path

def test_reading_copy_keeps_the_report_and_drops_tests_and_hidden_code(tmp_path):
    mr.reading_copy(_nb(tmp_path / 'r.ipynb'), tmp_path / 'r.html')
    h = (tmp_path / 'r.html').read_text()
    assert 'The report title' in h and 'measured 42' in h and 'hidden cell output' in h and '<img' in h
    assert 'visible_code' in h and 'task' in h                                   # ordinary code and the parameters stay
    for gone in ('library_function', 'test_eq', 'secret_plotting_code', 'hidden_but_shown_output', '#| '):
        assert gone not in h, gone

def test_numbers_differ_within_tolerance():
    a = {'points': [{'key': {'alpha': 0.5}, 'metrics': {'loss': 2.0}, 'seconds': 1.0}], 'updated': 'x'}
    same = {'points': [{'key': {'alpha': 0.5}, 'metrics': {'loss': 2.0 + 1e-9}, 'seconds': 9.0}], 'updated': 'y'}
    moved = {'points': [{'key': {'alpha': 0.5}, 'metrics': {'loss': 2.01}, 'seconds': 1.0}], 'updated': 'x'}
    assert mr.numbers_differ(a, same) == []                                      # timings and last-digit noise ignored
    assert mr.numbers_differ(a, moved) == ['.points[0].metrics.loss: 2.0 vs 2.01']
    assert mr.numbers_differ({'x': [1, 2]}, {'x': [1]}) == ['.x: length 2 vs 1']

def test_check_finds_stale_missing_and_broken_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(mr, 'OUT', tmp_path)
    monkeypatch.setattr(mr, 'REPORTS', {'good': None, 'old': None, 'broken': None, 'absent': None})
    (tmp_path / 'results').mkdir()
    for n in ('good', 'old', 'broken'):
        _nb(tmp_path / f'{n}.ipynb', error=n == 'broken'); (tmp_path / f'{n}.html').write_text('<html/>')
    (tmp_path / 'results' / 'r.json').write_text('{}')
    now = mr.report_hash('sweep.ipynb')
    manifest = {'good': dict(notebook='sweep.ipynb', code_hash=now, results=['r.json']), 'old': dict(notebook='sweep.ipynb', code_hash='000000000000', results=[]),
                'broken': dict(notebook='sweep.ipynb', code_hash=now, results=['gone.json'])}
    bad = mr.check(manifest)
    assert not any(b.startswith('good') for b in bad), bad
    assert any(b.startswith('old:') and 'stale' in b for b in bad)
    assert any('broken: results/gone.json missing' in b for b in bad) and any("broken: error outputs ['ValueError']" in b for b in bad)
    assert any("never generated: ['absent']" in b for b in bad)

def test_report_hash_covers_the_notebook_and_the_modules_it_reaches(tmp_path):
    "A report is stale when its notebook's code or a sitv module it imports (directly, lazily or through another) changes; other modules do not count."
    pkg, nbs = tmp_path / 'sitv', tmp_path / 'nbs'; pkg.mkdir(); nbs.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'a.py').write_text('from .core import x\ndef f():\n    from sitv.lazy import y\n    return y\n')
    (pkg / 'core.py').write_text('x = 1\n'); (pkg / 'lazy.py').write_text('y = 2\n'); (pkg / 'other.py').write_text('z = 3\n')
    nb = nbformat.v4.new_notebook(); nb.cells = [nbformat.v4.new_markdown_cell('# r'), nbformat.v4.new_code_cell('%matplotlib inline\nfrom sitv.a import f\nprint(f())')]
    nbformat.write(nb, nbs / 'r.ipynb')
    assert mr.sitv_closure(mr.code_cells(nbs / 'r.ipynb'), pkg) == ['__init__', 'a', 'core', 'lazy']
    h = lambda: mr.report_hash('r.ipynb', pkg, nbs)
    h0 = h(); (pkg / 'other.py').write_text('z = 4\n')
    assert h() == h0                                                             # a module the report never reaches
    for f, text in (('lazy.py', 'y = 5\n'), ('core.py', 'x = 6\n')):
        (pkg / f).write_text(text); assert h() != h0; h0 = h()                   # imported inside a function; imported by a.py
    nb.cells[1].source += '\nprint(2)'; nbformat.write(nb, nbs / 'r.ipynb')
    assert h() != h0                                                             # the report's own code

def test_a_report_reading_others_is_stale_when_they_are_made_again(tmp_path, monkeypatch):
    monkeypatch.setattr(mr, 'OUT', tmp_path); monkeypatch.setattr(mr, 'REPORTS', {'sweep-a': None, 'cross': None}); monkeypatch.setattr(mr, 'READS', {'cross': ['sweep-a']})
    for n in ('sweep-a', 'cross'): _nb(tmp_path / f'{n}.ipynb'); (tmp_path / f'{n}.html').write_text('<html/>')
    entry = lambda made: dict(notebook='sweep.ipynb', code_hash=mr.report_hash('sweep.ipynb'), results=[], made=made)
    manifest = {'sweep-a': entry('2026-12-03T10:00:00')}
    manifest['cross'] = {**entry('2026-12-03T10:05:00'), 'reads': mr.reads_of('cross', manifest)}
    assert mr.check(manifest) == []
    manifest['sweep-a'] = entry('2026-12-03T11:00:00')                           # the sweep made again, the cross-task report not
    assert any(b.startswith('cross: the reports it reads (sweep-a) were made again') for b in mr.check(manifest))

def test_committed_reports_are_made_by_this_code():
    manifest = ROOT / 'reports' / 'manifest.json'
    if not manifest.exists(): pytest.skip('reports/ has not been generated yet (python scripts/make_reports.py)')
    bad = mr.check(json.loads(manifest.read_text()))
    assert not bad, 'committed reports are stale or broken — run python scripts/make_reports.py:\n' + '\n'.join(bad)

def test_index_links_every_report(tmp_path, monkeypatch):
    monkeypatch.setattr(mr, 'OUT', tmp_path)
    m = {n: dict(notebook='sweep.ipynb', parameters={'task': n}, date='2026-11-23', code_hash='abc', seconds=12.0, figures=3) for n in ('sweep-qa', 'cross-task')}
    mr.write_index(m)
    h = (tmp_path / 'index.html').read_text()
    assert "<a href='sweep-qa.html'>" in h and "<a href='cross-task.html'>" in h and h.count('<tr>') == 3

def test_outputs_go_back_to_the_notebook_only_where_the_cell_is_the_same(tmp_path, monkeypatch):
    "A report run with the notebook's defaults gives its outputs to nbs/<nb>: matching cells get them, edited cells get none."
    monkeypatch.setattr(mr, 'ROOT', tmp_path); (tmp_path / 'nbs').mkdir()
    src = _nb(tmp_path / 'nbs' / 'r.ipynb')
    ran = nbformat.read(src, as_version=4)
    out = lambda t: [nbformat.v4.new_output('stream', name='stdout', text=t)]
    ran.cells[7].outputs = out('from the run\n') + [nbformat.v4.new_output('execute_result', data={'text/plain': '1'}, execution_count=5)]
    ran.cells[7].execution_count = 5                                      # 'visible_code(1)': same source → copied
    ran.cells[5].source += '\nedited_after_the_run()'                     # a different source → not copied, its old output dropped
    ran.cells[5].outputs = out('stale\n')
    nbformat.write(ran, tmp_path / 'ran.ipynb')
    assert mr.defaults_of('r.ipynb') == {'task': 'qa'}
    assert mr.sync_outputs('r.ipynb', tmp_path / 'ran.ipynb') == 5         # the five code cells whose source matches
    nb = nbformat.read(src, as_version=4)
    assert nb.cells[7].outputs[0]['text'] == 'from the run\n' and nb.cells[7].outputs[1]['data']['text/plain'] == '1'
    assert nb.cells[5].outputs == []
    assert nb.cells[7].execution_count is None and nb.cells[7].outputs[1].get('execution_count') is None   # nbdev-clean ran

def test_real_reports_make_their_inputs_outside_sitv_and_keep_to_one_base_model(tmp_path, monkeypatch):
    "Each real-model input is made once by scripts/real_inputs.py with the recorded steps; the real results stay in their own folder."
    monkeypatch.setattr(mr, 'OUT', tmp_path)
    calls = []
    def fake_run(args, check):                                                  # records the call; 'data' writes its files as the script does
        calls.append(args[2:])
        if args[3:5] == ['--kind', 'data']: (Path(args[2]) / 'data').mkdir(parents=True); (Path(args[2]) / 'data' / 'code-eval.jsonl').write_text('')
    monkeypatch.setattr(mr.subprocess, 'run', fake_run)
    nb, params = mr.REAL['real-sweep-prose-full']
    mr.prepare(params)
    real = str(tmp_path / mr.REAL_IN)
    assert calls == [[real, '--kind', 'data'], [real, '--kind', 'full', '--task', 'prose', '--steps', '8']]
    calls.clear()
    (tmp_path / mr.REAL_IN / 'full-prose').mkdir(); (tmp_path / mr.REAL_IN / 'full-prose' / 'training.json').write_text('{}')
    mr.prepare(params); assert calls == []                                       # made already: nothing trained again
    mr.prepare(mr.REAL['real-lora-code'][1])
    assert calls == [[real, '--kind', 'lora', '--task', 'code', '--steps', '12']]
    calls.clear(); (tmp_path / mr.REAL_IN / 'lora-code').mkdir(); (tmp_path / mr.REAL_IN / 'lora-code' / 'training.json').write_text('{}')
    mr.prepare(mr.REAL['real-tsv'][1])                                          # comma-separated lists: each input made, once
    assert calls == [[real, '--kind', 'full', '--task', 'code', '--steps', '8'], [real, '--kind', 'lora', '--task', 'prose', '--steps', '12']]
    writes = [(nb, p) for nb, p in mr.REAL.values() if {'out_dir', 'results_dir'} & set(mr.defaults_of(nb))]   # symmetries writes no result file
    assert len(writes) == len(mr.REAL) - 1 and all(p.get('out_dir', p.get('results_dir')) == mr.REAL_OUT for _, p in writes)
    assert set(mr.READS['real-cross-task']) == {n for n in mr.REAL if n.startswith('real-sweep-')} and not set(mr.READS['cross-task']) & set(mr.REAL)
    tasks = [p['task'] for n, (_, p) in mr.REAL.items() if n.startswith('real-sweep-')]
    assert len(set(tasks)) == len(tasks) == 4                                    # one summary per task name in the real cross-task folder

def test_result_files_are_found_in_subfolders(tmp_path, monkeypatch):
    monkeypatch.setattr(mr, 'OUT', tmp_path)
    (tmp_path / 'results' / 'smollm2').mkdir(parents=True); (tmp_path / 'results' / 'old.json').write_text('{}')
    before = mr.result_mtimes()
    (tmp_path / 'results' / 'smollm2' / 'sweep-code-lora-1.json').write_text('{}')
    assert mr.result_files(before) == ['smollm2/sweep-code-lora-1.json']
