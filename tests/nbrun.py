"""A report notebook's input checks, run in this process: its exported definitions, its `parameters` cell with the values a
test gives (as papermill injects them), then the cells after it up to the one that checks the inputs. That is the code a
papermill run executes first, without starting a kernel and importing torch again (about 8 s a run), so bad inputs are
tested at function level with the notebook's own code, and each report still runs end to end by papermill elsewhere."""
import ast, json, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def input_cells(nb, through):
    "(label, source, is the parameters cell) of `nb`'s exported cells, its parameters cell, and the cells after it through the first containing `through`."
    cells = [c for c in json.loads((ROOT / 'nbs' / nb).read_text())['cells'] if c['cell_type'] == 'code']
    src = [''.join(c['source']) for c in cells]
    p = next(i for i, c in enumerate(cells) if 'parameters' in c['metadata'].get('tags', []))
    end = next((i for i in range(p + 1, len(cells)) if through in src[i]), None)
    if end is None: raise ValueError(f'{nb}: no cell after the parameters cell contains {through!r}')
    keep = [i for i in range(p) if src[i].lstrip().startswith('#| export')] + list(range(p, end + 1))
    return [(f'{nb}, code cell {i}', src[i], i == p) for i in keep]

def run_inputs(nb, through, **params):
    """Run `nb`'s input cells with `params` in place of the defaults; returns the namespace, or the exception's whole
    traceback text (what a papermill run prints) as a `str` when a cell raised."""
    ns, cells = {'__name__': '__main__'}, input_cells(nb, through)
    for label, source, is_params in cells:
        try: exec(compile(source, label, 'exec'), ns)
        except Exception as e: return ''.join(traceback.format_exception(e))
        if is_params:
            unknown = set(params) - {t.id for a in ast.parse(source).body if isinstance(a, ast.Assign) for t in a.targets}
            if unknown: raise KeyError(f'{nb} has no parameters {sorted(unknown)}')
            ns.update({n: str(v) if isinstance(v, Path) else v for n, v in params.items()})
    return ns
