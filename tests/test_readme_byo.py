"""The README's "Your own models and data" commands, run exactly as written — with tiny local models, checkpoints,
an adapter and data files, made as a user makes them, in place of the hub ids and paths, and the geometry report's work sizes cut (`SMALL`) — and the same commands in the
docs (`nbs/sources.ipynb`). These runs are also where the sweep, composition and geometry reports are checked on your own
checkpoints and files (`CHECKS`); tests/test_bring_your_own.py runs the reports only for what no README command covers."""
import json, os, re, shlex, shutil, subprocess, sys
from pathlib import Path

import pytest

from test_reports import outputs, text_of

from byo import LINES, base_model, bpe_tokenizer, data_files, plain_finetune, plain_peft_adapter

ROOT = Path(__file__).resolve().parent.parent

def commands(text, heading='## Your own models and data'):
    "The papermill commands of the first sh block under `heading` (continuation lines joined)."
    sec = text.split(heading, 1)[1]
    block = re.search(r'```sh\n(.*?)```', sec, re.S).group(1)
    return [c.strip() for c in block.replace('\\\n', ' ').splitlines() if c.strip()]

def test_docs_show_the_readme_commands():
    readme = commands((ROOT / 'README.md').read_text())
    nb = json.loads((ROOT / 'nbs' / 'sources.ipynb').read_text())
    docs = commands('\n'.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown'), '## From the command line')
    assert readme == docs and len(readme) >= 6

@pytest.fixture(scope='module')
def user_folder(tmp_path_factory):
    "A folder laid out as the README's commands expect, with tiny local stand-ins; returns it and the hub-id substitutions."
    W = tmp_path_factory.mktemp('user')
    tok = bpe_tokenizer()
    base_model('qwen2', W / 'qwen-base', tok)
    plain_finetune(W / 'qwen-base', W / 'qwen-instruct', tok, LINES, dtype=__import__('torch').bfloat16)
    for i in (1, 2, 3): plain_finetune(W / 'qwen-base', W / f'run{i}' / 'checkpoint-400', tok, LINES, seed=i, with_tokenizer=i != 2)   # run2 has none
    plain_peft_adapter(W / 'qwen-base', W / 'checkpoint-40000', tok, LINES)
    d = data_files(W / 'data')
    shutil.copy(d['jsonl'], W / 'my_eval.jsonl'); shutil.copy(d['general'], W / 'my_general.txt')
    for n in ('math', 'code', 'chat'): shutil.copy(d['jsonl'], W / f'{n}.jsonl')
    (W / 'nbs').symlink_to(ROOT / 'nbs')
    return W, {'Qwen/Qwen2.5-0.5B-Instruct': str(W / 'qwen-instruct'), 'Qwen/Qwen2.5-0.5B': str(W / 'qwen-base')}

# Appended to a command (papermill takes the last -p): the geometry report at its defaults costs ~200 s on a tiny Qwen2
# here, and those defaults run in full in reports/geometry-qa (the merging report's AdaMerging in reports/tsv); the
# command's own options are what is tested.
SMALL = {'nbs/geometry.ipynb': '-p n_eval 8 -p n_geo 2 -p n_random 2 -p fisher_draws 2 -p n_hutchinson 2 -p geo_steps 1 '
                               '-p bvp_segments 1 -p bvp_evals 10 -p shoot_solves 3 -p lanczos_tol 1e-2',
         'nbs/tsv.ipynb': '-p ada_steps 2'}     # AdaMerging's 4 runs of 30 Adam steps: the command's own options are what is tested

def results_of(W, task, **config):
    "The main sweep result file of `task` in W/results (the commands' default out_dir) whose config holds `config`."
    found = [f for f in (W / 'results').glob(f'sweep-{task}-*.json') if re.fullmatch(rf'sweep-{task}-[0-9a-f]{{10}}\.json', f.name) and
             all(json.loads(f.read_text())['config'].get(k) == v for k, v in config.items())]
    assert len(found) == 1, found
    return found[0]

def check_sweep_checkpoint(W, nb, text):
    "A bf16 checkpoint from a plain loop, a JSONL task file and a text file of general data: endpoints exact, provenance kept."
    assert 'bit-equal: True' in text and 'within 1e-06 nats: True' in text and 'fingerprint' in text and '(unchanged)' in text
    assert 'T was not trained by this report' in text and 'stored as bfloat16' in text
    assert 'my_eval.jsonl' in text and 'my_general.txt' in text and 'sha256' in text and 'eval: 40 of 64 asked (the data has 40)' in text
    f = results_of(W, 'my_eval', replicates=[])
    cfg = json.loads(f.read_text())['config']
    assert cfg['vector']['kind'] == 'checkpoint' and cfg['data']['my_eval']['format'] == 'prompt_completion' and 'ft_steps' not in cfg
    prov = json.loads(f.with_name(f.stem + '.summary.json').read_text())['provenance']
    assert prov['model']['architecture'] == 'qwen2' and prov['vectors']['T']['path'] == str(W / 'qwen-instruct') and 'where' not in prov['data']['my_eval']
    assert cfg['finetune_key'] is None and len(outputs(nb, 'image/png')) >= 4      # nothing fine-tuned; curve, norms, landscape, KL

def check_sweep_replicates(W, nb, text):
    "Two checkpoints (the second without a tokenizer): the second is a replicate with its own result file."
    f = results_of(W, 'my_eval', replicates=['run2/checkpoint-400'])
    assert f.with_name(f.stem + '-rep1.json').exists()

def check_composition(W, nb, text):
    """Two checkpoints with no task data of their own: named by their folders (two `checkpoint-400`s), general text only,
    and the result file in out_dir itself (a '/' of the names is '--' in the file name)."""
    assert len(outputs(nb, 'image/png')) >= 2 and 'your checkpoint `run1/checkpoint-400`' in text
    assert 'no eval texts for run1/checkpoint-400, run2/checkpoint-400' in text
    found = list((W / 'results').glob('composition-*.json'))
    assert len(found) == 1 and found[0].name.startswith('composition-run1--checkpoint-400-run2--checkpoint-400-'), found
    doc = json.loads(found[0].read_text())
    assert set(doc['points'][0]['metrics']) == {'general'} and doc['config']['sources']['model']['parameters'] > 0
    assert doc['config']['sources']['vectors']['run1/checkpoint-400']['path'] == 'run1/checkpoint-400'
    from sitv.explorer import composition_grids                 # the explorer finds the grid (it globs out_dir, not below it)
    assert list(composition_grids(W / 'results')) == [('run1/checkpoint-400', 'run2/checkpoint-400')]

def check_geometry(W, nb, text):
    "The Fisher, curvature (at θ_ft written into the base) and plane sections on your checkpoint."
    assert len(outputs(nb, 'image/png')) >= 3 and 'T: your checkpoint' in text and 'T (qwen-instruct)' in text and 'θ_ft (qwen-instruct)' in text
    assert json.loads(next((W / 'results').glob('geometry-qwen-instruct-random-general-*.json')).read_text())['config']['vector']

CHECKS = {0: check_sweep_checkpoint, 1: check_sweep_replicates, 3: check_composition, 5: check_geometry}

@pytest.mark.parametrize('i', range(6))
def test_readme_command_runs(user_folder, i):
    W, hub = user_folder
    cmd = commands((ROOT / 'README.md').read_text())[i]
    for k, v in hub.items(): cmd = cmd.replace(k, v)
    args = shlex.split(cmd)
    args += shlex.split(SMALL.get(args[1], '')) if os.environ.get('SITV_FULL') != '1' else []
    assert args[0] == 'papermill'
    r = subprocess.run([sys.executable, '-m', *args, '-k', 'python3'], cwd=W, capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != 'MPLBACKEND'})
    assert r.returncode == 0, (cmd, r.stdout[-2000:] + r.stderr[-3000:])
    out = json.loads((W / args[2]).read_text())
    errors = [o for c in out['cells'] for o in c.get('outputs', []) if o.get('output_type') == 'error']
    assert not errors and outputs(out, 'image/png'), cmd
    if i in CHECKS: CHECKS[i](W, out, text_of(out))
