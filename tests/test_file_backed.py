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
