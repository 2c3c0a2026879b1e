"""Write README.md from nbs/index.ipynb (markdown cells as they are; visible code cells as fenced Python).

nbdev-readme needs Quarto, which cannot be installed on the project's machines, so this small renderer keeps the
README in step with the docs home page. `python scripts/make_readme.py --check` exits 1 when README.md is stale."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def render(nb_path=ROOT / 'nbs' / 'index.ipynb'):
    cells = json.loads(Path(nb_path).read_text(encoding='utf-8'))['cells']
    parts = ['<!-- generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file -->']
    for c in cells:
        src = ''.join(c['source']).strip()
        if not src: continue
        if c['cell_type'] == 'markdown': parts.append(src.replace('](images/', '](nbs/images/'))   # paths relative to nbs/
        elif c['cell_type'] == 'code':
            lines = src.splitlines()
            if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
            code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if code: parts.append(f'```python\n{code}\n```')
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT / 'README.md'
    if '--check' in sys.argv:
        ok = readme.exists() and readme.read_text(encoding='utf-8') == text
        print('README.md is up to date' if ok else 'README.md is stale: run python scripts/make_readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text, encoding='utf-8')
    print(f'wrote {readme}')
