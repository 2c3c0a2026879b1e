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
