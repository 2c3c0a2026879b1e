"Project wiring: the papermill `parameters` tag survives nbdev-clean and reaches papermill; README matches index.ipynb."
import json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

def _nb(cells):
    return dict(cells=cells, metadata=dict(kernelspec=dict(name='python3', display_name='python3', language='python')),
                nbformat=4, nbformat_minor=5)

def _code(src, tags=None):
    return dict(cell_type='code', execution_count=3, metadata=({'tags': tags} if tags else {}) | {'collapsed': False},
                outputs=[], source=src)

def test_parameters_tag_survives_nbdev_clean_and_papermill_uses_it(tmp_path):
    nb = tmp_path / 'p.ipynb'
    nb.write_text(json.dumps(_nb([_code('x = 1', ['parameters']), _code('open("x.txt", "w").write(str(x))')])))
    subprocess.run(['nbdev-clean', '--fname', str(nb)], cwd=ROOT, check=True)
    cleaned = json.loads(nb.read_text())
    assert cleaned['cells'][0]['metadata'] == {'tags': ['parameters']}     # other metadata stripped, tag kept
    assert cleaned['cells'][1]['metadata'] == {}
    subprocess.run([sys.executable, '-m', 'papermill', str(nb), str(tmp_path / 'out.ipynb'), '-p', 'x', '42',
                    '--cwd', str(tmp_path), '-k', 'python3'], check=True, capture_output=True)
    assert (tmp_path / 'x.txt').read_text() == '42'

def test_committed_parameter_cells_keep_their_tag():
    "Every notebook that defines a parameters cell (marked by its comment) still carries the tag."
    for p in (ROOT / 'nbs').glob('*.ipynb'):
        for c in json.loads(p.read_text())['cells']:
            if c['cell_type'] == 'code' and ''.join(c['source']).lstrip().startswith('# parameters'):
                assert 'parameters' in c['metadata'].get('tags', []), p.name

def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout

def test_readme_test_command_is_what_ci_runs():
    readme, ci = (ROOT / 'README.md').read_text(), (ROOT / '.ci' / 'run').read_text()
    assert 'python -m pytest -q tests' in readme and 'python -m pytest -q tests' in ci
    assert 'pyproject.toml' in readme and 'settings.ini' in readme

def test_docs_sidebar_lists_every_notebook_and_the_reports():
    "The sidebar is written by hand (custom_sidebar): a new notebook missing from it would have no way in from the site."
    import yaml
    side = yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    def flat(items):
        for it in items:
            if isinstance(it, dict) and 'contents' in it: yield from flat(it['contents'])
            else: yield it
    entries = list(flat(side))
    listed = {e for e in entries if isinstance(e, str)}
    on_disk = {p.name for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith('_')}
    assert listed == on_disk, f'missing from sidebar: {sorted(on_disk - listed)}; listed but absent: {sorted(listed - on_disk)}'
    links = [e['href'] for e in entries if isinstance(e, dict) and 'href' in e]
    reports = json.loads((ROOT / 'reports' / 'manifest.json').read_text())
    assert sorted(links) == sorted(f'reports/{n}.ipynb' for n in reports)     # every report a page of the site, nothing else

def test_jupyterlab_comes_with_the_set_up():
    "The README opens reports and the explorer in JupyterLab: the dev extra installs it into this environment."
    r = subprocess.run([sys.executable, '-m', 'jupyterlab', '--version'], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().split('.')[0] >= '4', r.stderr[-500:]
    lab = Path(sys.executable).parent / 'jupyter-lab'
    assert lab.exists(), f'{lab}: `jupyter lab` would answer "command jupyter-lab not found"'

def _exported_cells():
    import json
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        for i, c in enumerate(json.loads(nb.read_text())['cells']):
            s = ''.join(c['source'])
            if c['cell_type'] == 'code' and s.lstrip().startswith('#| export'): yield nb.name, i, s

def relative_imports(source:str):
    "Lines of `source` that import relatively (`from .x import y`), which fail when a report runs the notebook's own cells."
    import ast
    return [n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.level > 0]

def test_no_exported_cell_imports_relatively():
    "A report executes its notebook's exported cells in a kernel, where `from .sources import x` raises ImportError (issue 26's crash)."
    assert relative_imports('def f():\n    from .sources import model_file_tensors\n') == [2]     # the detector finds the crash's line …
    assert relative_imports('from sitv.sources import model_file_tensors\n') == []                  # … and passes the absolute form
    bad = [(nb, i, ln) for nb, i, s in _exported_cells() for ln in relative_imports(s)]
    assert not bad, f'relative imports in exported cells (notebook, cell, line): {bad}'
