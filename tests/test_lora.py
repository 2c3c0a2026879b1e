"LoRA adapters as task vectors: ΔW against peft's merge, orientation on GPT-2, the scaling sweep, extraction, refusals."
import copy, json
import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from peft import LoraConfig, PeftModel, get_peft_model
from sitv.core import TaskVector, displaced
from sitv.data import make_split
from sitv.evaluate import evaluate
from sitv.grid import alpha_grid
from sitv.lora import adapter_delta, AdapterVector, extract_lora, compare, cosine64, lora_finetune, merge_in, load_adapter
from sitv.model import byte_tokenizer, random_llama, train, load_model
from sitv.results import Results
from sitv.sweep import sweep, curve

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A LoRA adapter trained on the shipped model (cached like every fine-tune) and its ΔW."
    folder, info = lora_finetune('sitv-tiny', 'qa', r=4, lora_alpha=8, steps=30, progress=False)
    base = load_model('sitv-tiny')
    return folder, base, adapter_delta(folder, base)

def test_delta_equals_fp32_merge(trained):
    folder, base, dW = trained
    b, m = merge_in('sitv-tiny', folder, torch.float32)
    T = {n: m[n] - b[n] for n in m}
    assert sorted(n for n, t in T.items() if (t != 0).any()) == sorted(dW.names)      # exactly the adapter's tensors change
    num = sum(float((T[n].double() - dW[n].double()).pow(2).sum()) for n in dW.names) ** 0.5
    assert num / dW.norm() <= 1e-6
    rows = compare(T, dW, b, torch.float32)
    assert all(r['cosine'] <= 1.0 for r in rows if r['in_adapter'])

def test_half_precision_merge_loses_entries_and_touches_every_tensor(trained):
    folder, base, dW = trained
    b16, m16 = merge_in('sitv-tiny', folder, torch.bfloat16)
    w32 = {n: p.detach() for n, p in base.named_parameters()}
    mixed = {n: m16[n].float() - w32[n] for n in m16}
    same = {n: m16[n].float() - b16[n].float() for n in m16}
    assert sum(bool((t != 0).any()) for t in same.values()) == len(dW)                 # same dtype: only targeted tensors
    assert sum(bool((t != 0).any()) for t in mixed.values()) == len(mixed) > len(dW)   # against fp32: every tensor differs
    rows = compare(same, dW, b16, torch.bfloat16)
    lost = sum(r['lost_to_rounding'] * r['size'] for r in rows) / sum(r['size'] for r in rows)
    assert 0 < lost < 0.5
    assert all(-1 <= r['cosine'] <= 1 for r in rows)

def test_cosine_never_above_one():
    "Near-parallel pairs at many scales: float32 arithmetic overshoots 1 on some of them, cosine64 never does."
    rng = torch.Generator().manual_seed(0)
    naive_over = 0
    for k in range(300):
        a = torch.randn(5000, generator=rng) * 10.0 ** (k % 13 - 6)
        b = a * (1 + 1e-7 * torch.randn(5000, generator=rng))
        c = cosine64(a, b)
        assert -1.0 <= c <= 1.0 and c > 0.999999
        naive_over += float((a @ b) / (a.norm() * b.norm())) > 1.0
    assert naive_over > 0                                   # the guard is needed: plain fp32 gives cosines above 1
    assert cosine64(torch.ones(3), -torch.ones(3)) == -1.0 and np.isnan(cosine64(torch.zeros(3), torch.ones(3)))

def test_scaling_sweep_equals_merged_sweep(trained, tmp_path):
    folder, base, dW = trained
    tok = byte_tokenizer()
    sets = {'qa': make_split('qa', 'eval', 16), 'general': make_split('general', 'eval', 16)}
    grid = alpha_grid(-0.5, 1.5, 0.25)
    pm = load_adapter('sitv-tiny', folder)
    r1, r2 = Results(tmp_path / 's.json', {'h': 'scale'}), Results(tmp_path / 'w.json', {'h': 'write'})
    sweep(pm, AdapterVector(dW), sets, tok, grid, r1, progress=False)
    sweep(base, dW, sets, tok, grid, r2, progress=False)
    for n in sets:
        a1, L1 = curve(r1, n); a2, L2 = curve(r2, n)
        assert np.array_equal(a1, a2) and np.abs(L1 - L2).max() < 1e-5
        assert L1[a1 == 0][0] == evaluate(load_model('sitv-tiny'), sets, tok)[n]['loss']   # α = 0: the base, exactly
    assert all(p['metrics']['distance_ratio'] is None for p in r1.points)                 # nothing written, nothing claimed
    # scalings are restored after the sweep: the adapter acts at full strength again
    assert evaluate(pm, sets, tok)['qa']['loss'] == pytest.approx(curve(r1, 'qa')[1][grid == 1][0], abs=1e-6)

def test_adapter_vector_refuses_a_different_adapter(trained):
    folder, base, dW = trained
    other = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules='all-linear', init_lora_weights=False))
    with pytest.raises(ValueError, match='differs from ΔW'):
        with AdapterVector(dW).displaced(other): pass
    with pytest.raises(ValueError, match='scaling is only supported|LoRA weights'):
        with AdapterVector(dW).displaced(copy.deepcopy(base)) as move: move(0.5)

def test_gpt2_conv1d_orientation(tmp_path):
    "GPT-2 stores c_attn/c_fc as (in × out) Conv1D: ΔW must be transposed (fan_in_fan_out) to match the merge."
    tok = byte_tokenizer()
    cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=len(tok), n_positions=128, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0); base = GPT2LMHeadModel(cfg).eval()
    torch.manual_seed(1)
    pm = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules=['c_attn', 'c_fc', 'c_proj'],
                                                         fan_in_fan_out=True, init_lora_weights=False))
    pm.save_pretrained(tmp_path)
    dW = adapter_delta(tmp_path, base)
    T = TaskVector.from_models(base, copy.deepcopy(pm).merge_and_unload())
    assert sorted(n for n in T.names if T[n].abs().max() > 0) == sorted(dW.names)
    for n in dW.names:
        assert dW[n].shape == base.get_parameter(n).shape
        assert float((T[n] - dW[n]).norm() / dW[n].norm()) < 1e-6
    c_attn = [n for n in dW.names if 'c_attn' in n][0]
    assert dW[c_attn].shape == (64, 192)                                          # (in, out): transposed relative to Linear

def test_extraction_full_rank_reproduces_T_and_peft_loads_it(tmp_path):
    base, ft = random_llama(seed=0), random_llama(seed=0)
    tok = byte_tokenizer()
    train(ft, make_split('qa', 'train', 32), tok, steps=5, batch_size=8, lr=3e-3, progress=False)
    T = TaskVector.from_models(base, ft)
    info = extract_lora(T, base, rank=128, folder=tmp_path)
    cfg = json.loads((tmp_path / 'adapter_config.json').read_text())
    assert cfg['peft_type'] == 'LORA' and info['energy_kept'] == pytest.approx(1.0, abs=1e-9)
    pm = PeftModel.from_pretrained(copy.deepcopy(base), str(tmp_path))
    back = adapter_delta(tmp_path, base)
    for n in back.names: assert float((back[n] - T[n]).norm() / T[n].norm()) < 1e-5
    # the loaded adapter, merged by peft, is θ_base + T on the targeted weights
    merged = dict(copy.deepcopy(pm).merge_and_unload().named_parameters())
    for n in back.names: assert torch.allclose(merged[n], base.get_parameter(n) + T[n], atol=1e-5)
    low = extract_lora(T, base, rank=1, folder=tmp_path / 'r1')
    assert low['energy_kept'] < info['energy_kept'] and low['lora_params'] < info['lora_params']

@pytest.mark.parametrize('kw,msg', [(dict(use_dora=True), 'DoRA'), (dict(modules_to_save=['lm_head']), 'modules_to_save'),
                                    (dict(bias='lora_only'), 'trains biases')])
def test_unsupported_adapters_refused(tmp_path, kw, msg):
    base = random_llama(seed=0)
    get_peft_model(copy.deepcopy(base), LoraConfig(r=2, lora_alpha=4, target_modules=['q_proj'], **kw)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=msg): adapter_delta(tmp_path, base)

def test_modules_to_save_included_explicitly(tmp_path):
    base = random_llama(seed=0)
    pm = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, lora_alpha=4, target_modules=['q_proj'], modules_to_save=['model.norm'],
                                                         init_lora_weights=False))
    with torch.no_grad(): pm.base_model.model.model.norm.modules_to_save['default'].weight.add_(0.5)
    pm.save_pretrained(tmp_path)
    dW = adapter_delta(tmp_path, base, include_modules_to_save=True)
    assert 'model.norm.weight' in dW.names and torch.allclose(dW['model.norm.weight'], torch.full_like(dW['model.norm.weight'], 0.5))

def tiny_adapter(folder, seed=0):
    "A plain peft adapter (nonzero, small) on the shipped model, saved as a user saves one: nothing sitv trained."
    torch.manual_seed(seed)
    pm = get_peft_model(load_model('sitv-tiny'), LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj', 'down_proj'], init_lora_weights=False))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if 'lora_B' in n: p.mul_(0.1)
    pm.save_pretrained(folder)
    return folder

def test_report_on_an_adapter_alone_trains_nothing(tmp_path):
    "`-p adapter DIR` without `finetuned`: no LoRA training and no full fine-tune (the cache stays empty); the adapter's own ΔW is compressed instead."
    import subprocess, sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    ad = tiny_adapter(tmp_path / 'ad')
    cmd = [sys.executable, '-m', 'papermill', str(root / 'nbs' / 'lora.ipynb'), str(tmp_path / 'l.ipynb'), '--cwd', str(tmp_path), '-k', 'python3']
    for k, v in dict(adapter=ad, task='qa', alpha_min=0, alpha_max=1, alpha_step=0.5, n_task_eval=8, n_general_eval=8, extract_ranks='2,1',
                     out_dir=tmp_path / 'r').items(): cmd += ['-p', k, str(v)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**__import__('os').environ, 'SITV_CACHE': str(tmp_path / 'cache')})
    assert r.returncode == 0, r.stderr[-4000:]
    assert not (tmp_path / 'cache').exists()                                    # neither lora_finetune nor finetune ran (both cache what they train)
    assert not list((tmp_path / 'r').glob('*extracted*'))                       # no adapter extracted from a full fine-tune
    nb = json.loads((tmp_path / 'l.ipynb').read_text())
    text = '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', '')) + ''.join(o.get('data', {}).get('text/markdown', ''))
                     for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []))
    assert 'The full-fine-tune compression was skipped: no `finetuned` was given' in text and '-p finetuned' in text
    assert '| **total** |' in text and 'One evaluation of the eval sets took' in text and 'fine-tunes' in text    # the plan
    assert 'copies of the weights' in text                                                                     # the peak memory
    # the rank table: ΔW at ranks 2 and 1 beside ΔW itself, with the share of ‖ΔW‖² each keeps (an independent dense SVD here)
    base = load_model('sitv-tiny'); dW = adapter_delta(ad, base)
    S2 = [torch.linalg.svdvals(dW[n].double()).pow(2) for n in dW.names]
    for k in (2, 1):
        share = sum(float(s[:k].sum()) for s in S2) / sum(float(s.sum()) for s in S2)
        assert f'rank {k}' in text and f'{share:.2%}' in text, (k, share)
    assert 'your adapter (rank 4)' in text and 'of ‖ΔW‖² kept' in text

@pytest.mark.parametrize('params,msg', [(dict(dtype='float8'), "unknown dtype 'float8'"), (dict(device='cuda'), 'no CUDA device')])
def test_report_refuses_bad_runtime_before_loading(tmp_path, monkeypatch, params, msg):
    "An unknown dtype, or CUDA on a machine without it: the report's own input cells stop before any model is loaded or folder made."
    if 'device' in params and torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    import sitv.model
    from nbrun import run_inputs
    def no_loading(*a, **k): raise AssertionError('a model was loaded')
    monkeypatch.setattr(sitv.model, 'load_model', no_loading)
    monkeypatch.setenv('SITV_CACHE', str(tmp_path / 'cache'))
    out = run_inputs('lora.ipynb', 'check_runtime(', out_dir=tmp_path / 'r', **params)
    assert isinstance(out, str) and msg in out and 'a model was loaded' not in out, out
    assert not (tmp_path / 'r').exists() and not (tmp_path / 'cache').exists()
