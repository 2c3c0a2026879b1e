"Issue 18: a sweep that reads θ_base from the model's own safetensors (memory-mapped, no in-memory copy) gives the same numbers bit for bit and restores the base."
import pytest, torch
from sitv.core import TaskVector, fingerprint
from sitv.data import make_split
from sitv.model import load_model, random_llama, save_model, byte_tokenizer
from sitv.results import Results
from sitv.sweep import sweep, base_source

def _folder(tmp_path, dtype=torch.float32):
    f = tmp_path / f'base-{str(dtype)[6:]}'
    save_model(random_llama(seed=0).to(dtype), byte_tokenizer(), f)
    return f

def _tv(m):
    P = dict(m.named_parameters()); g = torch.Generator().manual_seed(0)
    return TaskVector({n: 0.02 * torch.randn(p.shape, generator=g) for n, p in P.items()}, fingerprint(P))

@pytest.mark.parametrize('stored', [torch.float32, torch.bfloat16])
def test_file_backed_sweep_is_bit_identical_to_the_in_memory_sweep(tmp_path, stored):
    "fp32 model from an fp32 file, and from a bf16 file (loading upcasts): the same losses to the last bit, and the base back."
    folder, tok, sets = _folder(tmp_path, stored), byte_tokenizer(), {'general': make_split('general', 'eval', 6)}
    m_file, m_mem = load_model(folder), load_model(folder)
    T, alphas = _tv(m_file), [0.0, 0.5, 1.0, -0.5]
    before = {n: p.detach().clone() for n, p in m_file.named_parameters()}
    r_file, r_mem = Results(tmp_path / f'f{stored}.json', {}), Results(tmp_path / f'm{stored}.json', {})
    sweep(m_file, T, sets, tok, alphas, r_file, progress=False, base_file=True)
    sweep(m_mem, T, sets, tok, alphas, r_mem, progress=False, base_file=False)
    n = len(before)
    for a, b in zip(r_file.points, r_mem.points):
        assert a['metrics']['base_tensors_from_file'] == n and b['metrics']['base_tensors_from_file'] == 0
        assert a['metrics']['general']['loss'] == b['metrics']['general']['loss'] and a['metrics']['distance_ratio'] == b['metrics']['distance_ratio']
        assert a['per_text']['general']['nll'] == b['per_text']['general']['nll']
    assert all(torch.equal(p, before[k]) for k, p in m_file.named_parameters())     # restored bit for bit

def test_base_source_is_chosen_by_size_and_absent_without_a_file(tmp_path, monkeypatch):
    import sitv.sweep as sw
    m = load_model(_folder(tmp_path)); T = _tv(m)
    assert base_source(m, T, 'auto') is None                                           # a small model: in-memory copy
    monkeypatch.setattr(sw, 'FILE_BASE_BYTES', 1)
    assert set(base_source(m, T, 'auto')) == {n for n, _ in m.named_parameters()}     # above the threshold: the file
    assert base_source(m, T, False) is None
    assert base_source(random_llama(seed=0), _tv(random_llama(seed=0)), True) is None  # built from a config: no file to read

# Issue 26: the vectors a report keeps are memory-mapped scratch files, not copies of the weights in memory, and an
# adapter's dense ΔW is built once (by the report), not also by the check before it.
import copy, warnings
from sitv.runtime import mapped_file

def _noisy(base, folder, seed): # a "fine-tuned" checkpoint of `base`, saved in bf16
    ft = copy.deepcopy(base); g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ft.parameters(): p.add_(0.01 * torch.randn(p.shape, generator=g))
    ft.to(torch.bfloat16).save_pretrained(folder)
    return folder

def _adapter(base, folder, seed=0): # a peft adapter with random A and B on three kinds of layer
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        get_peft_model(copy.deepcopy(base), LoraConfig(r=2, lora_alpha=4, target_modules=['q_proj', 'v_proj', 'down_proj'],
                                                       init_lora_weights=False)).save_pretrained(folder)
    return folder

@pytest.fixture
def count_products(monkeypatch):
    "Every s·B·A product `sitv.lora` takes, by module."
    import sitv.lora as lora
    calls, real = [], lora._lora_delta
    monkeypatch.setattr(lora, '_lora_delta', lambda *a: calls.append(a[1]) or real(*a))
    return calls

def test_preflight_checks_an_adapter_without_building_its_delta(tmp_path, count_products):
    from sitv.vectors import load_vector, preflight_vector
    folder = _folder(tmp_path); m = load_model(folder)
    ad = _adapter(m, tmp_path / 'ad')
    assert preflight_vector(m, ad, folder) == 'adapter' and count_products == []        # checked, nothing multiplied
    dW, info = load_vector(m, ad, folder)
    assert len(count_products) == len(set(count_products)) == 3 * m.config.num_hidden_layers   # each targeted module once
    narrow = random_llama(seed=0, intermediate_size=320)
    with pytest.raises(ValueError, match="does not fit the base model.*down_proj"): preflight_vector(narrow, ad, 'narrow')

def test_large_vectors_are_memory_mapped_and_equal_the_in_memory_ones(tmp_path):
    from sitv.vectors import load_vector
    folder = _folder(tmp_path); m = load_model(folder)
    for spec in (_noisy(m, tmp_path / 'ft', 1), _adapter(m, tmp_path / 'ad')):
        mem, _ = load_vector(m, spec, folder)
        big, _ = load_vector(m, spec, folder, file_bytes=4 * mem.numel())             # at the threshold: a scratch file
        assert all(mapped_file(t) for t in big.deltas.values()) and not any(mapped_file(t) for t in mem.deltas.values())
        assert big.names == mem.names and big.base_fingerprint == mem.base_fingerprint and big.max_abs_diff(mem) == 0
        assert not any(mapped_file(t) for t in load_vector(m, spec, folder, file_bytes=4 * mem.numel() + 1)[0].deltas.values())

def test_composition_report_keeps_its_vectors_in_files_and_builds_the_adapter_once(tmp_path, count_products):
    "The report's input cells with base_file_mib=0 (every vector 'large'): a checkpoint and an adapter, both memory-mapped; ΔW built once."
    from nbrun import run_inputs
    folder = _folder(tmp_path); m = load_model(folder)
    ns = run_inputs('composition.ipynb', 'base_src =', model=folder, finetuned1=_noisy(m, tmp_path / 'ft', 1), adapter2=_adapter(m, tmp_path / 'ad'),
                    base_file_mib=0, n_general_eval=2, coef_min=0, coef_max=1, coef_step=0.5, batch_size=2, out_dir=tmp_path / 'r')
    assert isinstance(ns, dict), ns
    assert all(mapped_file(t) for tv in ns['tvs'] for t in tv.deltas.values()) and ns['n_mapped'] == 2
    assert len(count_products) == len(set(count_products)) == 3 * m.config.num_hidden_layers   # once: the preflight built nothing

def test_tsv_report_keeps_its_vectors_and_merges_in_files(tmp_path):
    "The TSV report's input cells with base_file_mib=0: both checkpoints memory-mapped; TSV-C and a merge built the report's way are too."
    from nbrun import run_inputs
    folder = _folder(tmp_path); m = load_model(folder)
    ns = run_inputs('tsv.ipynb', 'base_src =', model=folder, finetuned=f"{_noisy(m, tmp_path / 'a', 1)},{_noisy(m, tmp_path / 'b', 2)}",
                    names='qa,sentiment_positive', base_file_mib=0, n_val=2, n_task_eval=2, n_general_eval=2, batch_size=2, out_dir=tmp_path / 'r')
    assert isinstance(ns, dict), ns
    tvs = list(ns['tvs'].values())
    assert all(mapped_file(t) for tv in tvs for t in tv.deltas.values()) and ns['n_mapped'] == 2
    from sitv.tsv import tsv_compress, tsv_merge
    for v in (tsv_compress(tvs[0], n_tasks=2, file_bytes=ns['file_bytes'])[0], tsv_merge(tvs, file_bytes=ns['file_bytes'])):
        assert all(mapped_file(t) for t in v.deltas.values())
