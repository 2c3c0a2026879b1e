"""Build the docs site in `_docs/`: the notebooks of `nbs/` and the executed reports of `reports/` as pages of one site.

CI (`.ci/run`) and the docs workflow both run this script, so the site CI checks is the site that is deployed. The
reports are rendered by Quarto as pages with the site's navigation (their committed outputs are the page: nothing
is executed): they are copied into `nbs/reports/` for the build, which nbdev-docs then processes like any notebook,
and removed afterwards (the folder is git-ignored, and must not linger: nbdev-export would read its export cells).
The sidebar's "Reports" section, in `nbs/sidebar.yml`, must list exactly the reports in `reports/manifest.json`;
the build refuses a stale list rather than publish a page nobody can reach or a link to nothing.

    python scripts/make_site.py            # needs `quarto` on PATH (here: ../shared/tools/quarto/setup.sh)
    python scripts/check_site.py           # then check it
"""
import json, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / 'nbs' / 'reports'

def report_names(root=ROOT):
    "The reports the manifest records, in its order."
    return list(json.loads((root / 'reports' / 'manifest.json').read_text()))

def sidebar_entries(nbs): # the notebooks folder holding sidebar.yml
    "Every file or link the sidebar lists, sections flattened, in order."
    import yaml
    def walk(items):
        for it in items:
            if isinstance(it, str): yield it
            elif isinstance(it, dict):
                if 'contents' in it: yield from walk(it['contents'])
                elif 'href' in it or 'file' in it: yield it.get('href') or it.get('file')
    return list(walk(yaml.safe_load((Path(nbs) / 'sidebar.yml').read_text())['website']['sidebar']['contents']))

def sidebar_reports(root=ROOT):
    "The report pages the sidebar lists (entries under nbs/reports/)."
    return [Path(e).stem for e in sidebar_entries(root / 'nbs') if e.startswith('reports/')]

def check_sidebar(root=ROOT):
    "Raise unless the sidebar lists every report of the manifest, and nothing else, under reports/."
    have, want = sidebar_reports(root), report_names(root)
    if sorted(have) != sorted(want):
        raise SystemExit(f'nbs/sidebar.yml lists the reports {sorted(have)} but reports/manifest.json has {sorted(want)}: '
                         'update the "Reports" section of the sidebar')

def split_title_cell(nb): # a notebook (dict)
    """Move what follows `# title` and `> summary` in the first markdown cell into a cell of its own: nbdev takes that
    cell as the page's title and summary and drops the rest of it (the home page was empty for that reason)."""
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'markdown': continue
        paras = ''.join(c['source']).split('\n\n')
        if not paras[0].lstrip().startswith('# '): return nb
        k = 2 if len(paras) > 1 and paras[1].lstrip().startswith('>') else 1
        if len(paras) > k:
            c['source'] = '\n\n'.join(paras[:k]).splitlines(keepends=True)
            nb['cells'].insert(i + 1, dict(cell_type='markdown', id=f"{c.get('id', 'title')}-body"[:64], metadata={},
                                           source='\n\n'.join(paras[k:]).splitlines(keepends=True)))
        return nb
    return nb

def stage_report(src, dst): # an executed report notebook, where the build reads it
    """Copy a report for the build with `skip_showdoc: true` front matter: nbdev would otherwise execute its export
    cells again to document them, and a report is a record of what ran, not a module page (its export cells are
    dropped from the page as on every page)."""
    nb = split_title_cell(json.loads(Path(src).read_text(encoding='utf-8')))
    nb['cells'].insert(0, dict(cell_type='raw', metadata={}, source=['---\n', 'skip_showdoc: true\n', '---']))
    Path(dst).write_text(json.dumps(nb), encoding='utf-8')

def build(root=ROOT):
    check_sidebar(root)
    if not shutil.which('quarto'): raise SystemExit('quarto is not on PATH: export PATH="$(../shared/tools/quarto/setup.sh):$PATH"')
    t0 = time.perf_counter()
    shutil.rmtree(STAGE, ignore_errors=True); STAGE.mkdir()
    try:
        for n in report_names(root): stage_report(root / 'reports' / f'{n}.ipynb', STAGE / f'{n}.ipynb')
        r = subprocess.run(['nbdev-docs'], cwd=root, capture_output=True, text=True)
        if r.returncode: raise SystemExit(f'nbdev-docs failed:\n{(r.stdout + r.stderr)[-4000:]}')
    finally: shutil.rmtree(STAGE, ignore_errors=True)
    pages = sorted((root / '_docs').rglob('*.html'))
    print(f'_docs/: {len(pages)} pages ({len(report_names(root))} reports) in {time.perf_counter() - t0:.0f} s')

if __name__ == '__main__':
    build()
