"""The rendered docs site (`_docs/`, built by scripts/make_site.py before the tests in CI): the checks of
scripts/check_site.py pass on it, and each of them fails on a deliberately broken copy.

Where Quarto is not installed the site cannot be built and these tests skip, unless SITV_SITE=1 (set by .ci/run
when it built the site), which makes a missing site a failure."""
import json, os, shutil, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'scripts'))
from check_site import check, sidebar_entries
from make_site import check_sidebar, report_names, sidebar_reports

DOCS = ROOT / '_docs'

@pytest.fixture(scope='module')
def docs():
    if not (DOCS / 'index.html').exists():
        if os.environ.get('SITV_SITE') == '1': pytest.fail('SITV_SITE=1 but _docs/ was not built (python scripts/make_site.py)')
        pytest.skip('the docs site is not built here (needs Quarto): python scripts/make_site.py')
    return DOCS

def broken_copy(docs, tmp):
    "A copy of the site made of hard links (cheap); `edit` replaces a file's content without touching the original."
    dst = tmp / 'site'
    shutil.copytree(docs, dst, copy_function=os.link)
    def edit(rel, f):
        p = dst / rel; text = p.read_text(encoding='utf-8'); p.unlink(); p.write_text(f(text), encoding='utf-8')
    return dst, edit

def test_the_site_passes_its_checks(docs):
    assert check(docs) == []

def test_sidebar_lists_every_report():
    check_sidebar()                                       # raises SystemExit on a stale list
    assert sorted(sidebar_reports()) == sorted(report_names()) and len(report_names()) >= 10

def test_home_page_carries_the_readme(docs):
    text = (docs / 'index.html').read_text()
    for section in ('Set up', 'The main job: a per-task report', 'Your own models and data', 'Benchmarks'):
        assert section in text, section
    figures = (ROOT / 'README.md').read_text().count('![')
    assert figures >= 2 and text.count('<img') >= figures          # the README's figures are on the home page

def test_a_missing_page_is_found(docs, tmp_path):
    site, _ = broken_copy(docs, tmp_path)
    (site / 'core.html').unlink()
    probs = check(site)
    assert any('sidebar entry core.ipynb: no page core.html' in p for p in probs), probs
    assert any('broken link' in p and 'core.html' in p for p in probs), probs     # the other pages' links to it

def test_an_empty_page_is_found(docs, tmp_path):
    "The home page as it was: the body dropped, title and summary kept."
    site, edit = broken_copy(docs, tmp_path)
    def drop_body(t):
        a, b = t.index('</header>') + len('</header>'), t.index('</main>')
        return t[:a] + t[b:]
    edit('index.html', drop_body)
    probs = check(site)
    assert any(p.startswith('index.html: empty page') for p in probs), probs
    assert any('lacks the README section' in p for p in probs), probs

def test_a_broken_link_and_image_are_found(docs, tmp_path):
    site, edit = broken_copy(docs, tmp_path)
    edit('data.html', lambda t: t.replace('</main>', '<p><a href="no-such-page.html">x</a><img src="images/no-such.png"></p></main>', 1))
    probs = check(site)
    assert 'data.html: broken link no-such-page.html' in probs and 'data.html: broken link images/no-such.png' in probs, probs

def test_a_missing_report_figure_is_found(docs, tmp_path):
    site, _ = broken_copy(docs, tmp_path)
    figs = sorted((site / 'reports').glob('sweep-qa_files/figure-html/*.png'))
    assert figs, 'the sweep-qa report page has no figure files'
    figs[0].unlink()
    probs = check(site)
    assert any(p.startswith('reports/sweep-qa.html:') and 'figures shown' in p for p in probs), probs

def test_page_without_its_prose_is_found(docs, tmp_path):
    site, edit = broken_copy(docs, tmp_path)
    import re
    edit('grid.html', lambda t: re.sub(r'(<main[^>]*>).*(</main>)', r'\1<p>' + 'placeholder text ' * 40 + r'</p>\2', t, flags=re.S))
    probs = check(site)
    assert any(p.startswith("grid.html: lacks its notebook's prose") for p in probs), probs

def test_family_support_table_and_your_own_data_page_are_on_the_site(docs):
    "The per-family support table (nbs/support.json, measured by tests/test_families.py) and the bring-your-own page."
    import sys
    sys.path.insert(0, str(ROOT / 'scripts'))
    from check_site import parse
    fam = (docs / 'families.html').read_text()
    table = fam[fam.index('<table'):fam.index('</table>')]
    support = json.loads((ROOT / 'nbs' / 'support.json').read_text())
    assert len(support) >= 10 and all(f'>{k}<' in table or f'>{k} ' in table or f'{k}</td>' in table for k in support), sorted(support)
    assert 'papermill nbs/sweep.ipynb' in parse(docs / 'sources.html').text     # the commands for your own models and data
