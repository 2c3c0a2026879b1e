"""The README's "Your own models and data" commands, run exactly as written — with tiny local models, checkpoints,
an adapter and data files, made as a user makes them, in place of the hub ids and paths, and the geometry report's work sizes cut (`SMALL`) — and the same commands in the
docs (`nbs/sources.ipynb`)."""
import json, os, re, shlex, shutil, subprocess, sys
from pathlib import Path

import pytest

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
# here, and those defaults run in full in reports/geometry-qa; the command's own options are what is tested.
SMALL = {'nbs/geometry.ipynb': '-p n_eval 8 -p n_geo 2 -p n_random 2 -p fisher_draws 2 -p n_hutchinson 2 -p geo_steps 1 '
                               '-p bvp_segments 1 -p bvp_evals 10 -p shoot_solves 3 -p lanczos_tol 1e-2'}

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
    figures = [o for c in out['cells'] for o in c.get('outputs', []) if 'image/png' in o.get('data', {})]
    assert not errors and figures, cmd
