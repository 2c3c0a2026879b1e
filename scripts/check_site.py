"""Check the rendered docs site (`_docs/`, from scripts/make_site.py) as a reader would find it.

- every sidebar entry has a page, and the page holds its notebook's prose (a run of words from its first paragraphs);
- no page is empty (its main text is more than its title);
- the home page holds every section heading and every figure of README.md;
- no internal link, image, stylesheet or script points at a file that is not there (a short check over the HTML:
  the site is static files, so "broken" means "no such file", plus anchors to ids that do not exist);
- every report page shows as many figures as its executed notebook has.

    python scripts/check_site.py [_docs]        # prints the problems, exits 1 if there are any
"""
import json, re, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_site import report_names, sidebar_entries

class Page(HTMLParser):
    "Links, images, element ids and the text of `<main>` of one HTML page."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs, self.imgs, self.ids, self.text, self.depth, self.skip = [], [], set(), [], 0, 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('href'): self.refs.append(a['href'])
        if tag in ('link',) and a.get('href'): self.refs.append(a['href'])
        if tag in ('img', 'script') and a.get('src'): (self.imgs if tag == 'img' else self.refs).append(a['src'])
        if tag == 'main': self.depth += 1
        if tag in ('script', 'style'): self.skip += 1
    def handle_endtag(self, tag):
        if tag == 'main': self.depth -= 1
        if tag in ('script', 'style'): self.skip = max(0, self.skip - 1)
    def handle_data(self, data):
        if self.depth > 0 and not self.skip: self.text.append(data)

def parse(path):
    p = Page(); p.feed(Path(path).read_text(encoding='utf-8', errors='replace'))
    p.text = ' '.join(' '.join(p.text).split())
    return p

def words(s): return re.findall(r"[A-Za-z][A-Za-z'-]+", s.replace('\u2019', "'"))   # Quarto renders ' as ’

def prose(nb_path, n=6):
    "A run of n plain words from the first prose paragraph of the notebook (after the title and summary), or None."
    cells = json.loads(Path(nb_path).read_text(encoding='utf-8'))['cells']
    for c in cells:
        if c['cell_type'] != 'markdown': continue
        for para in ''.join(c['source']).split('\n\n'):
            para = para.strip()
            if not para or para.startswith(('#', '>', '|', '```', '-', '*', '!', '<', '$')) or ':::' in para: continue
            line = para.splitlines()[0]
            run = re.split(r"[`*_\[\]()$|\\]", line)[0]                 # stop at the first markup
            w = words(run)
            if len(w) >= n and ' '.join(w[:n]) in ' '.join(words(line)): return ' '.join(w[:n])
    return None

def internal(ref):
    u = urlsplit(ref)
    return not (u.scheme or u.netloc or ref.startswith(('mailto:', 'javascript:', 'data:')))

def check(docs=ROOT / '_docs', root=ROOT):
    "The list of problems found in the site at `docs` (empty: none)."
    docs, root, out = Path(docs), Path(root), []
    if not (docs / 'index.html').exists(): return [f'{docs}: no index.html (was the site built? python scripts/make_site.py)']
    pages = {p: parse(p) for p in docs.rglob('*.html') if 'site_libs' not in p.parts}
    # sidebar entries: a page each, holding its notebook's prose
    for e in sidebar_entries(root / 'nbs'):
        if not internal(e): continue
        html = docs / (str(Path(e).with_suffix('')) + '.html')
        if html not in pages: out.append(f'sidebar entry {e}: no page {html.relative_to(docs)}'); continue
        nb = root / 'nbs' / e if not e.startswith('reports/') else root / 'reports' / Path(e).name
        run = prose(nb) if nb.suffix == '.ipynb' and nb.exists() else None
        if run and run not in ' '.join(words(pages[html].text)): out.append(f'{html.relative_to(docs)}: lacks its notebook\'s prose ("{run} …")')
    for p, pg in pages.items():
        if len(pg.text) < 200: out.append(f'{p.relative_to(docs)}: empty page ({len(pg.text)} characters of text)')
    # the home page carries the README
    readme, home = (root / 'README.md').read_text(encoding='utf-8'), pages.get(docs / 'index.html')
    if home:
        hw = ' '.join(words(home.text))
        for h in re.findall(r'^##+ (.+)$', readme, re.M):
            if ' '.join(words(h)) not in hw: out.append(f'index.html: lacks the README section "{h}"')
        srcs = {Path(unquote(urlsplit(s).path)).name for s in home.imgs}
        for img in re.findall(r'!\[[^\]]*\]\(([^)\s]+)', readme):
            if Path(img).name not in srcs: out.append(f'index.html: lacks the README figure {img}')
    # internal links, images and anchors
    for p, pg in pages.items():
        for ref in pg.refs + pg.imgs:
            if not internal(ref): continue
            u = urlsplit(ref)
            target = (p.parent / unquote(u.path)).resolve() if u.path else p
            if u.path and target.is_dir(): target = target / 'index.html'
            if not target.exists(): out.append(f'{p.relative_to(docs)}: broken link {ref}'); continue
            if u.fragment and target.suffix == '.html' and target in pages and u.fragment not in pages[target].ids:
                out.append(f'{p.relative_to(docs)}: link {ref} to a missing anchor')
    # report pages show their figures
    for n in report_names(root):
        page, nb = docs / 'reports' / f'{n}.html', root / 'reports' / f'{n}.ipynb'
        if page not in pages: out.append(f'report {n}: no page reports/{n}.html'); continue
        want = sum('image/png' in o.get('data', {}) for c in json.loads(nb.read_text())['cells'] for o in c.get('outputs', []))
        shown = sum((page.parent / unquote(urlsplit(s).path)).exists() or s.startswith('data:image') for s in pages[page].imgs)
        if shown < want: out.append(f'reports/{n}.html: {shown} figures shown, its notebook has {want}')
    return out

if __name__ == '__main__':
    probs = check(sys.argv[1] if len(sys.argv) > 1 else ROOT / '_docs')
    print('\n'.join(probs) or 'site OK')
    sys.exit(1 if probs else 0)
