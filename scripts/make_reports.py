"""Regenerate reports/ in one command: every report notebook executed by papermill on the shipped model and on a real
one (SmolLM2-135M-Instruct, the `real-*` reports), an HTML reading copy of each, and a manifest saying which code made
which result files.

    python scripts/make_reports.py                      # everything
    python scripts/make_reports.py --only sweep-qa      # some reports (comma-separated names; see REPORTS)
    python scripts/make_reports.py --only real          # the real-model reports (`shipped`: the others)
    python scripts/make_reports.py --check              # exit 1 when a committed report is stale or broken

Each report is executed into reports/<name>.ipynb with its result files in reports/results/ (task vectors and saved
models, *.safetensors, and a saved real model's tokenizer.json are not committed: the cross-task report reads them right after the sweeps that write them). The reading copy
reports/<name>.html keeps the report part of the notebook — its title and everything from the parameters cell on —
without the code of `#| hide` and `#| echo: false` cells and without the library's own tests above the parameters.
reports/manifest.json records, per report, the hash of the code it ran (`report_hash`: its notebook's code cells and
every `sitv` module they import, directly or through other modules), its parameters, its seconds and the result files
it wrote; a report that reads other reports' results (cross-task) also records theirs, and is stale when one of them
was made again. When a report is regenerated, its new result files are compared with the previous ones within
a tolerance (numbers, not notebook text) and the differences are printed (the previous result files are removed
first, so every point is measured again rather than resumed), so a reader sees whether a code change moved
any number. A report run with its notebook's own default parameters (sweep-qa, composition-2d, lora-qa, tsv, symmetries,
geometry-qa, cross-task) also gives its outputs to nbs/<notebook>, so the docs page shows the same run.
`--check` fails when a report's recorded hash differs from the working tree's, when an executed
notebook has an error output or no figure, or when a listed file is missing.
"""
import argparse, ast, hashlib, json, math, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'reports'
TASKS = ['sentiment_positive', 'sentiment_negative', 'qa', 'instruction_following']
# sweep-qa, composition-2d, lora-qa and geometry-qa run with their notebooks' defaults (which resolve to those tasks)
REPORTS = {**{f'sweep-{t}': ('sweep.ipynb', dict(task=t) if t != 'qa' else {}) for t in TASKS},
           # inputs as a user brings them: the shipped base against a checkpoint fine-tuned outside sitv (scripts/plain_finetune.py,
           # bf16, no tokenizer) on reports/inputs/my_qa_train.jsonl, evaluated on reports/inputs/my_qa.jsonl (disjoint texts)
           'sweep-my_qa': ('sweep.ipynb', dict(model='sitv-tiny', finetuned='inputs/ft-outside', task_data='inputs/my_qa.jsonl')),
           'composition-2d': ('composition.ipynb', {}),
           'composition-3d': ('composition.ipynb', dict(task1='sentiment_positive', task2='qa', task3='instruction_following', coef_step=0.5)),
           'lora-qa': ('lora.ipynb', {}),
           'tsv': ('tsv.ipynb', {}),
           'symmetries': ('symmetries.ipynb', {}),
           'geometry-qa': ('geometry.ipynb', {}),
           'cross-task': ('cross_task.ipynb', dict(results_dir='results'))}
# The real model in the box (sitv.real: SmolLM2-135M-Instruct) with inputs made outside sitv by scripts/real_inputs.py into
# reports/inputs/real (not committed, re-made here in about 10 minutes): stdlib code and prose, a LoRA adapter trained by
# plain peft and a full fine-tune trained by a plain torch loop (bf16, sharded, no tokenizer) per task. Parameters are
# small enough for a 2-core CPU: 16 + 16 held-out texts, α every 0.25 up to 3 (the full fine-tunes' best α lay at 1.5, the
# default grid's top), no null directions, no refinement. Their results go to
# reports/results/smollm2, so the real cross-task view compares vectors of one base model only.
REAL_IN, REAL_OUT = 'inputs/real', 'results/smollm2'
UNCOMMITTED = ('.safetensors', 'tokenizer.json')      # result files left out of git (weights; a real tokenizer is 3 MB)
REAL_STEPS = {'lora': 12, 'full': 8}                   # optimizer steps of 8 texts (scripts/real_inputs.py)
REAL_SWEEP = dict(model='smollm2', n_task_eval=16, n_general_eval=16, alpha_step=0.25, alpha_max=3, n_null=0, refine_tol=0.0, n_boot=200,
                  batch_size=16, out_dir=REAL_OUT)
PYTHON_MC = 'inputs/python_mc/python_mc.yaml'   # a multiple-choice task as a user writes one (24 questions about Python)
def real_sweep(task, kind):
    "Parameters of the real-model sweep of `task` (code|prose) on its plain-peft adapter (lora) or plain-loop fine-tune (full)."
    vec = dict(adapter=f'{REAL_IN}/lora-{task}') if kind == 'lora' else dict(finetuned=f'{REAL_IN}/full-{task}')
    mc = dict(accuracy=PYTHON_MC) if task == 'code' else dict(general_accuracy=PYTHON_MC)   # questions about Python: on the code side of each sweep
    return ('sweep.ipynb', dict(REAL_SWEEP, task=f'{task}-{kind}', task_data=f'{REAL_IN}/data/{task}-eval.jsonl',
                                general_data=f'{REAL_IN}/data/{"prose" if task == "code" else "code"}-eval.jsonl', **vec, **mc))
REAL = {**{f'real-sweep-{t}-{k}': real_sweep(t, k) for t in ('code', 'prose') for k in ('lora', 'full')},
        'real-lora-code': ('lora.ipynb', dict(model='smollm2', adapter=f'{REAL_IN}/lora-code', task='code',
                                              task_data=f'{REAL_IN}/data/code-eval.jsonl', general_data=f'{REAL_IN}/data/prose-eval.jsonl',
                                              n_task_eval=16, n_general_eval=16, alpha_step=0.25, batch_size=16, out_dir=REAL_OUT)),
        'real-composition': ('composition.ipynb', dict(model='smollm2', adapter1=f'{REAL_IN}/lora-code', adapter2=f'{REAL_IN}/lora-prose',
                                                       task_data1=f'{REAL_IN}/data/code-eval.jsonl', task_data2=f'{REAL_IN}/data/prose-eval.jsonl',
                                                       general_data=f'{REAL_IN}/data/prose-eval.jsonl', coef_min=0, coef_max=1, coef_step=0.5,
                                                       n_task_eval=8, n_general_eval=8, batch_size=8, out_dir=REAL_OUT)),
        'real-symmetries': ('symmetries.ipynb', dict(model='smollm2', finetuned_a=f'{REAL_IN}/full-code', finetuned_b=f'{REAL_IN}/full-prose',
                                                     general_data=f'{REAL_IN}/data/prose-eval.jsonl', n_eval=8, blocks='0,29', batch_size=8)),
        'real-tsv': ('tsv.ipynb', dict(model='smollm2', finetuned=f'{REAL_IN}/full-code,{REAL_IN}/full-prose', names='code,prose',
                                       task_data=f'{REAL_IN}/data/code-eval.jsonl,{REAL_IN}/data/prose-eval.jsonl', general_data=f'{REAL_IN}/data/prose-eval.jsonl',
                                       adapters=f'{REAL_IN}/lora-code,{REAL_IN}/lora-prose', merge_alpha_min=0.5, merge_alpha_max=3, merge_alpha_step=0.5, ada_steps=3,
                                       # α up to 3: with α ≤ 1.5 every grid method chose 1.5, the grid's top (weak 8-step fine-tunes)
                                       accuracy='inputs/python_mc/python_mc.yaml,',   # a user's multiple-choice task for the code vector, none for prose
                                       sweep_step=0.5, n_val=8, n_task_eval=8, n_general_eval=8, batch_size=8, out_dir=REAL_OUT)),
        'real-geometry': ('geometry.ipynb', dict(model='smollm2', adapter=f'{REAL_IN}/lora-code', task='code', second='random',
                                                 general_data=f'{REAL_IN}/data/prose-eval.jsonl', n_eval=4, n_geo=1, n_random=1, fisher_draws=2,
                                                 grad_batch_size=1, hvp_batch_size=1, hvp_offload_kib=64, kl_alphas='0.1,1', curv_alphas='0,1', lanczos_maxiter=4,
                                                 n_hutchinson=2, plane='curvature,bvp', plane_points='0,1', geo_steps=2, bvp_segments=1, bvp_evals=3, bvp_nodes=4,
                                                 out_dir=REAL_OUT)),
        'real-cross-task': ('cross_task.ipynb', dict(results_dir=REAL_OUT))}
REPORTS.update(REAL)      # --check requires every one of them, and the docs sidebar lists them
READS = {'cross-task': [f'sweep-{t}' for t in TASKS] + ['sweep-my_qa'],   # reports whose result files another report reads
         'real-cross-task': [n for n in REAL if n.startswith('real-sweep-')]}
VOLATILE = {'seconds', 'created', 'updated', 'train_seconds', 'path'}   # timings and paths differ between runs by design

def sitv_imports(source:str): # Python source (a module, or a notebook's code cells)
    "Names of the `sitv` modules `source` imports, at top level or inside functions (`from .x import`, `from sitv.x import`, `import sitv.x`)."
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import): out |= {a.name.split('.')[1] for a in node.names if a.name.startswith('sitv.')}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level: out |= {mod.split('.')[0]} if mod else {a.name for a in node.names}
            elif mod == 'sitv': out |= {a.name for a in node.names}
            elif mod.startswith('sitv.'): out.add(mod.split('.')[1])
    return out

def code_cells(nb_path): # a notebook
    "Its code cells' sources, IPython magics and shell lines left out (they are not Python)."
    cells = json.loads(Path(nb_path).read_text())['cells']
    src = lambda c: ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    return ['\n'.join(l for l in src(c).splitlines() if not l.lstrip().startswith(('%', '!'))) for c in cells if c['cell_type'] == 'code']

def sitv_closure(sources:list, pkg=None): # Python sources; the package folder (default: sitv/ of this tree)
    "The `sitv` modules the sources import, with everything those import in turn (sorted names, `__init__` included)."
    pkg = Path(pkg or ROOT / 'sitv')
    todo, seen = set().union(*(sitv_imports(s) for s in sources)) | {'__init__'}, set()
    while todo:
        m = todo.pop()
        if m in seen or not (pkg / f'{m}.py').exists(): continue
        seen.add(m); todo |= sitv_imports((pkg / f'{m}.py').read_text())
    return sorted(seen)

def report_hash(nb:str, pkg=None, nbs=None): # a report notebook's name in `nbs` (default: this tree's nbs/ and sitv/)
    "12 hex digits of SHA-256 over the notebook's code cells and the bytes of every sitv module they reach."
    pkg, nbs = Path(pkg or ROOT / 'sitv'), Path(nbs or ROOT / 'nbs')
    cells, h = code_cells(nbs / nb), hashlib.sha256()
    for c in cells: h.update(c.encode() + b'\0')
    for m in sitv_closure(cells, pkg): h.update(m.encode() + b'\0' + (pkg / f'{m}.py').read_bytes() + b'\0')
    return h.hexdigest()[:12]

def reads_of(name, manifest):
    "What a report read from other reports: their recorded hash and date (the cross-task report reads the sweeps' results)."
    return {r: [manifest.get(r, {}).get('code_hash'), manifest.get(r, {}).get('made')] for r in READS.get(name, [])}

def params_for(params, defaults):
    "The report's parameters, with out_dir pointed at reports/results where the notebook has one (None: beside its inputs) and the report names none."
    return {**({'out_dir': 'results'} if defaults.get('out_dir') is not None else {}), **params}

def result_mtimes():
    "Every file under reports/results (its path relative to that folder -> mtime)."
    d = OUT / 'results'
    return {p.relative_to(d).as_posix(): p.stat().st_mtime for p in d.rglob('*') if p.is_file()}

def result_files(before:dict):
    "Files under reports/results that are new or changed since `before` (relative path -> mtime)."
    return sorted(f for f, t in result_mtimes().items() if before.get(f) != t)

def numbers_differ(a, b, rtol=1e-6, atol=1e-9, where=''):
    "Paths where two parsed result files differ beyond tolerance (volatile keys skipped)."
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k in VOLATILE: continue
            if k not in a or k not in b: out.append(f'{where}.{k} only in one'); continue
            out += numbers_differ(a[k], b[k], rtol, atol, f'{where}.{k}')
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b): return [f'{where}: length {len(a)} vs {len(b)}']
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in numbers_differ(x, y, rtol, atol, f'{where}[{i}]')]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(a) and math.isnan(b): return []
        return [] if abs(a - b) <= atol + rtol * abs(b) else [f'{where}: {a!r} vs {b!r}']
    return [] if a == b else [f'{where}: {a!r} vs {b!r}']

def reading_copy(nb_path, html_path):
    "HTML of the report part: title + cells from the parameters on; inputs of hidden cells removed; directive lines stripped."
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(nb_path, as_version=4)
    i0 = next(i for i, c in enumerate(nb.cells) if 'parameters' in c.metadata.get('tags', []))
    title = next((c for c in nb.cells[:i0] if c.cell_type == 'markdown'), None)
    cells = ([title] if title else []) + nb.cells[i0:]
    for c in cells:
        if c.cell_type != 'code': continue
        lines = c.source.splitlines()
        directives = {l.strip() for l in lines if l.startswith('#|')}
        if {'#| hide', '#| echo: false'} & directives: c.source = ''; c.metadata['jupyter'] = {'source_hidden': True}; c.metadata.setdefault('tags', []).append('remove_input')
        else: c.source = '\n'.join(l for l in lines if not l.startswith('#|'))
    nb.cells = [c for c in cells if c.cell_type != 'code' or c.source or c.get('outputs')]
    from traitlets.config import Config
    exp = HTMLExporter(config=Config({'TagRemovePreprocessor': {'enabled': True, 'remove_input_tags': {'remove_input'}}}))
    body, _ = exp.from_notebook_node(nb)
    Path(html_path).write_text(body, encoding='utf-8')

def defaults_of(nb):
    "The notebook's parameter defaults, read from its `parameters` cell (literals only)."
    import ast
    cells = json.loads((ROOT / 'nbs' / nb).read_text())['cells']
    src = next(''.join(c['source']) for c in cells if 'parameters' in c['metadata'].get('tags', []))
    return {t.id: ast.literal_eval(node.value) for node in ast.parse(src).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}

def sync_outputs(nb, executed):
    """Copy the outputs of an executed report into nbs/<nb> cell by cell (same ids, same sources), so the docs page of
    the notebook shows the run that reports/ holds. Only for a report run with the notebook's own defaults."""
    import nbformat
    src, ran = nbformat.read(ROOT / 'nbs' / nb, as_version=4), nbformat.read(executed, as_version=4)
    by_id = {c.get('id'): c for c in ran.cells}
    n = 0
    for c in src.cells:
        r = by_id.get(c.get('id'))
        if c.cell_type == 'code' and r is not None and r.source == c.source: c.outputs = r.outputs; n += 1
        elif c.cell_type == 'code': c.outputs = []
    nbformat.write(src, ROOT / 'nbs' / nb)
    subprocess.run([str(Path(sys.executable).parent / 'nbdev-clean'), '--fname', str(ROOT / 'nbs' / nb)], check=True, cwd=Path(__file__).resolve().parent.parent)
    return n

def problems(nb_path):
    "Error outputs and the number of figures of an executed notebook."
    nb = json.loads(Path(nb_path).read_text())
    outs = [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]
    errors = [o.get('ename', 'error') for o in outs if o.get('output_type') == 'error']
    figures = sum('image/png' in o.get('data', {}) for o in outs)
    return errors, figures

def prepare(params):
    """Make the inputs a report needs that are not committed: the checkpoint fine-tuned outside sitv (deterministic, about a
    minute), and the real model's data, adapters and fine-tunes (scripts/real_inputs.py, a few minutes each)."""
    ft = params.get('finetuned')
    if ft == 'inputs/ft-outside' and not (OUT / ft / 'config.json').exists():
        from sitv.model import shipped_model_dir
        subprocess.run([sys.executable, str(ROOT / 'scripts' / 'plain_finetune.py'), str(shipped_model_dir()),
                        str(OUT / 'inputs' / 'my_qa_train.jsonl'), str(OUT / ft)], check=True)
    real = OUT / REAL_IN
    for v in (x for p in params.values() if isinstance(p, str) for x in p.split(',')):   # a comma-separated list names several inputs
        if not v.startswith(REAL_IN + '/'): continue
        folder = v[len(REAL_IN) + 1:].split('/')[0]            # data | lora-<task> | full-<task>
        kind, _, task = folder.partition('-')
        done = (real / 'data' / 'code-eval.jsonl') if kind == 'data' else (real / folder / 'training.json')
        if done.exists(): continue
        args = ['--kind', kind] + (['--task', task, '--steps', str(REAL_STEPS[kind])] if task else [])
        subprocess.run([sys.executable, str(ROOT / 'scripts' / 'real_inputs.py'), str(real)] + args, check=True)

def run(names, manifest):
    import papermill as pm
    (OUT / 'results').mkdir(parents=True, exist_ok=True)
    for name in names:
        nb, params = {**REPORTS, **REAL}[name]
        prepare(params)
        defaults = defaults_of(nb)
        params = params_for(params, defaults)
        before = result_mtimes()
        old = {f: json.loads((OUT / 'results' / f).read_text()) for f in manifest.get(name, {}).get('results', []) if f.endswith('.json') and (OUT / 'results' / f).exists()}
        for f in manifest.get(name, {}).get('results', []):       # measure again rather than resume: a regenerated report is a new run
            (OUT / 'results' / f).unlink(missing_ok=True)
        t0 = time.perf_counter(); print(f'{name}: {nb} {params} …', flush=True)
        pm.execute_notebook(str(ROOT / 'nbs' / nb), str(OUT / f'{name}.ipynb'), parameters=params, cwd=str(OUT), kernel_name='python3', progress_bar=False)
        secs = time.perf_counter() - t0
        files = result_files(before) or manifest.get(name, {}).get('results', [])
        reading_copy(OUT / f'{name}.ipynb', OUT / f'{name}.html')
        errors, figures = problems(OUT / f'{name}.ipynb')
        if not errors and all(defaults.get(k) == v for k, v in params.items()):
            print(f'  nbs/{nb}: outputs of {sync_outputs(nb, OUT / f"{name}.ipynb")} code cells copied from this run (its defaults)')
        manifest[name] = dict(notebook=nb, parameters=params, code_hash=report_hash(nb), seconds=round(secs, 1), date=time.strftime('%Y-%m-%d'),
                              made=time.strftime('%Y-%m-%dT%H:%M:%S'), reads=reads_of(name, manifest),
                              results=[f for f in files if not f.endswith(UNCOMMITTED)], figures=figures)
        for f, doc in old.items():
            p = OUT / 'results' / f
            if p.exists():
                diff = numbers_differ(json.loads(p.read_text()), doc)
                print(f'  {f}: ' + ('same numbers as before (within 1e-6)' if not diff else f'{len(diff)} numbers moved, e.g. {diff[:3]}'))
        print(f'  {secs:.0f} s, {figures} figures, {len(errors)} errors; results {manifest[name]["results"]}', flush=True)
        (OUT / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')
        write_index(manifest)

def write_index(manifest):
    "reports/index.html: one line per report with its reading copy, date, code hash and run time (the docs site links here)."
    import html
    rows = ''.join(f"<tr><td><a href='{n}.html'>{html.escape(n)}</a></td><td>{html.escape(m['notebook'])}</td><td><code>{html.escape(json.dumps(m['parameters']))}</code></td>"
                   f"<td>{m['date']}</td><td><code>{m['code_hash']}</code></td><td>{m['seconds']:.0f} s</td><td>{m['figures']}</td></tr>" for n, m in manifest.items())
    (OUT / 'index.html').write_text("<!doctype html><meta charset='utf-8'><title>sitv reports</title><h1>sitv reports</h1>"
                                    "<p>Executed on the shipped model (sitv-tiny) and on a real one (SmolLM2-135M-Instruct, reports named <code>real-…</code>) by <code>python scripts/make_reports.py</code>; each link is the reading copy of "
                                    "the executed notebook beside it.</p><table border='1' cellpadding='4'><tr><th>report</th><th>notebook</th>"
                                    f"<th>parameters</th><th>date</th><th>sitv code</th><th>run time</th><th>figures</th></tr>{rows}</table>\n", encoding='utf-8')

def check(manifest):
    bad = []
    missing = [n for n in REPORTS if n not in manifest]
    if missing: bad.append(f'reports never generated: {missing}')
    for name, m in manifest.items():
        now = report_hash(m['notebook'])
        if m['code_hash'] != now: bad.append(f'{name}: made by code {m["code_hash"]}, the tree is {now} ({m["notebook"]} and the sitv modules it imports): stale')
        if m.get('reads', {}) != reads_of(name, manifest): bad.append(f'{name}: the reports it reads ({", ".join(READS[name])}) were made again after it: stale')
        for f in [f'{name}.ipynb', f'{name}.html'] + [f'results/{r}' for r in m['results']]:
            if not (OUT / f).exists(): bad.append(f'{name}: {f} missing')
        if (OUT / f'{name}.ipynb').exists():
            errors, figures = problems(OUT / f'{name}.ipynb')
            if errors: bad.append(f'{name}: error outputs {errors}')
            if not figures: bad.append(f'{name}: no figures')
    return bad

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--only', default='', help='comma-separated report names: ' + ', '.join(REPORTS))
    p.add_argument('--check', action='store_true', help='exit 1 when a committed report is stale or broken')
    a = p.parse_args()
    mp = OUT / 'manifest.json'
    manifest = json.loads(mp.read_text()) if mp.exists() else {}
    if a.check:
        bad = check(manifest)
        print('\n'.join(bad) if bad else f'{len(manifest)} reports, all made by the code in this tree')
        sys.exit(1 if bad else 0)
    groups = {'real': list(REAL), 'shipped': [n for n in REPORTS if n not in REAL]}
    names = [m for n in a.only.split(',') if n for m in groups.get(n, [n])] or list(REPORTS)
    unknown = [n for n in names if n not in REPORTS and n not in REAL]
    if unknown: sys.exit(f'unknown report(s) {unknown}; known: {list(REPORTS)}')
    run(names, manifest)
