"Composition grids on a real (small) model: the grid's axes are 1-D sweeps, the base is restored, additivity is measured."
import copy
import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from sitv.composition import sweep_grid, surface, additivity, landmarks, barrier
from sitv.core import TaskVector
from sitv.data import make_split
from sitv.evaluate import evaluate
from sitv.model import byte_tokenizer, train
from sitv.results import Results
from sitv.sweep import sweep, curve

@pytest.fixture(scope='module')
def two_vectors():
    tok = byte_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    torch.manual_seed(0); base = LlamaForCausalLM(cfg).eval()
    tvs = []
    for task in ('qa', 'sentiment_positive'):
        ft = copy.deepcopy(base)
        train(ft, make_split(task, 'train', 64), tok, steps=8, batch_size=8, lr=3e-3, progress=False)
        tvs.append(TaskVector.from_models(base, ft))
    return base, tok, tvs

def test_grid_axes_are_the_one_dimensional_sweeps(two_vectors, tmp_path):
    base, tok, (T1, T2) = two_vectors
    sets = {'qa': make_split('qa', 'eval', 8), 'general': make_split('general', 'eval', 8)}
    snap = {n: p.clone() for n, p in base.named_parameters()}
    axis = np.array([-0.5, 0.0, 0.5, 1.0])
    res = Results(tmp_path / 'g.json', {'t': 'grid'}, kind='composition')
    assert sweep_grid(base, [T1, T2], sets, tok, [axis, axis], res, progress=False) == 16
    assert sweep_grid(base, [T1, T2], sets, tok, [axis, axis], res, progress=False) == 0          # resumed
    assert all(torch.equal(p, snap[n]) for n, p in base.named_parameters())                        # base restored bit-exactly
    one = Results(tmp_path / 's.json', {'t': 'sweep'})
    sweep(base, T1, sets, tok, axis, one, progress=False)
    axes, Z = surface(res, 'qa')
    a, L = curve(one, 'qa')
    np.testing.assert_array_equal(Z[:, 1], L)                  # β = 0 column = the 1-D sweep along T1, exactly
    assert Z[1, 1] == evaluate(copy.deepcopy(base), sets, tok)['qa']['loss']
    ad = additivity(axes, Z)
    assert 0 < ad['r2_anchored'] <= 1 and np.abs(ad['interaction'][1, :]).max() < 1e-12   # exact on the axes by construction
    lm = landmarks(axes, Z)
    assert lm['minimum']['loss'] == np.nanmin(Z)

def test_grid_refuses_axes_without_zero(two_vectors, tmp_path):
    base, tok, tvs = two_vectors
    with pytest.raises(ValueError, match='must contain 0'):
        sweep_grid(base, tvs, {'qa': make_split('qa', 'eval', 4)}, tok, [[0.5, 1.0], [0.0, 1.0]], Results(tmp_path / 'x.json', {}))
    with pytest.raises(ValueError, match='2 task vectors but 1 axes'):
        sweep_grid(base, tvs, {'qa': make_split('qa', 'eval', 4)}, tok, [[0.0, 1.0]], Results(tmp_path / 'y.json', {}))

def test_additivity_positive_and_negative_controls():
    a, b, c = np.linspace(-0.5, 1.5, 9), np.linspace(-0.5, 1.5, 9), np.array([-0.5, 0.0, 0.5, 1.0])
    rng = np.random.default_rng(0)
    fa, fb, fc = rng.normal(size=9), rng.normal(size=9), rng.normal(size=4)
    sep = fa[:, None, None] + fb[None, :, None] + fc[None, None, :]          # any separable surface, not just smooth ones
    r = additivity([a, b, c], sep)
    assert r['r2_anchored'] == pytest.approx(1, abs=1e-12) and r['r2_fitted'] == pytest.approx(1, abs=1e-12)
    inter = rng.normal(size=(9, 9, 4))
    r = additivity([a, b, c], sep + inter)
    assert r['r2_anchored'] < 0.95 and r['r2_fitted'] < 0.95
    assert r['r2_fitted'] >= r['r2_anchored']                  # least squares can only do better than the anchored guess

def test_barrier_sign():
    a = b = np.linspace(0, 1, 5)
    bump = np.add.outer(a, b) * 0 + 1.0
    bump[2, 2] = 3.0                                           # (0.5, 0.5) on the segment
    assert barrier(a, b, bump)['height'] == pytest.approx(2.0) and barrier(a, b, bump)['at_alpha'] == 0.5
    dip = np.ones((5, 5)); dip[1, 3] = dip[2, 2] = dip[3, 1] = 0.5   # every interior point of the segment
    assert barrier(a, b, dip)['height'] == pytest.approx(-0.5)    # below the chord between the ends: negative, no barrier

def test_grid_with_the_base_read_from_its_file(two_vectors, tmp_path, monkeypatch):
    "Above the threshold (file_base_bytes=0) θ_base comes from the model's safetensors: the grid's values equal the in-memory ones, the base is bit-identical after."
    import sitv.composition as comp
    from sitv.model import load_model
    base, tok, tvs = two_vectors
    base.save_pretrained(tmp_path / 'm')
    m = load_model(tmp_path / 'm')
    sets = {'qa': make_split('qa', 'eval', 6), 'general': make_split('general', 'eval', 6)}
    axis = np.array([-0.5, 0.0, 1.0])
    assert comp.base_source(m, tvs) is None                                 # a tiny model: below the default threshold, a copy
    src = comp.base_source(m, tvs, file_base_bytes=0)
    assert src is not None and set(tvs[0].names) <= set(src)
    used, real = [], comp.displaced
    def spy(*a, **kw):
        cm = real(*a, **kw); d = cm.__enter__(); used.append(len(d.from_file))
        class Wrap:
            def __enter__(self): return d
            def __exit__(self, *e): return cm.__exit__(*e)
        return Wrap()
    monkeypatch.setattr(comp, 'displaced', spy)
    snap = {n: p.clone() for n, p in m.named_parameters()}
    mem = Results(tmp_path / 'mem.json', {'t': 'mem'}, kind='composition')
    fil = Results(tmp_path / 'file.json', {'t': 'file'}, kind='composition')
    sweep_grid(m, tvs, sets, tok, [axis, axis], mem, progress=False)
    sweep_grid(m, tvs, sets, tok, [axis, axis], fil, progress=False, file_base_bytes=0)
    assert used[0] == 0 and used[1] == len(tvs[0].names)                     # the second grid read every moved tensor from the file
    assert all(torch.equal(p, snap[n]) for n, p in m.named_parameters())     # base restored bit-exactly
    for n in sets: np.testing.assert_array_equal(surface(mem, n)[1], surface(fil, n)[1])

def test_composition_report_refuses_bad_runtime_before_loading(monkeypatch, tmp_path):
    "A bad dtype or a device this machine lacks stops the report's input cells before any model is loaded."
    import sitv.model
    from nbrun import run_inputs
    loads = []
    monkeypatch.setattr(sitv.model, 'load_model', lambda *a, **kw: loads.append(a) or (_ for _ in ()).throw(AssertionError('loaded')))
    out = run_inputs('composition.ipynb', 'sweep_grid(', dtype='float8', out_dir=tmp_path / 'r')
    assert isinstance(out, str) and "unknown dtype 'float8'" in out, out
    if not torch.cuda.is_available():
        out = run_inputs('composition.ipynb', 'sweep_grid(', device='cuda', out_dir=tmp_path / 'r')
        assert isinstance(out, str) and 'no CUDA device' in out, out
    out = run_inputs('composition.ipynb', 'sweep_grid(', out_dir=tmp_path / 'r')          # control: good inputs reach the loading
    assert isinstance(out, str) and 'loaded' in out and loads, out[-500:]
    assert not loads[1:] and not (tmp_path / 'r').exists()
