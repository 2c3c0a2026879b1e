"Exact symmetries hold, near misses and random moves of the same size are detected, alignment undoes a permutation."
import pytest
import torch
from sitv.data import make_split
from sitv.evaluate import evaluate
from sitv.model import random_llama, byte_tokenizer
from sitv.symmetries import (check, mlp_permutation, mlp_rescale, value_head_rescale, qk_rescale, norm_trade, head_permutation,
                             align_mlp, state, loaded, _heads, HOLDS, DETECTED)

@pytest.fixture(scope='module')
def setup():
    tok = byte_tokenizer(); xs = make_split('general', 'eval', 8)
    m = random_llama(seed=3, num_key_value_heads=2, num_hidden_layers=2)
    return m, (lambda mm: evaluate(mm, {'g': xs}, tok)['g']['loss'])

def cases(cfg, g):
    nh, nkv, hd = _heads(cfg)
    pos = lambda n: torch.exp(torch.randn(n, generator=g))
    return [(mlp_permutation, torch.randperm(cfg.intermediate_size, generator=g)), (mlp_rescale, pos(cfg.intermediate_size)),
            (value_head_rescale, pos(nkv)), (qk_rescale, pos(nkv)), (norm_trade, pos(cfg.hidden_size)),
            (head_permutation, torch.tensor([1, 0]))]

@pytest.mark.parametrize('i', range(6))
def test_symmetry_holds_and_controls_are_detected(setup, i):
    m, loss = setup
    f, arg = cases(m.config, torch.Generator().manual_seed(i))[i]
    for layer in range(m.config.num_hidden_layers):
        r = check(m, loss, f, layer, arg)
        assert abs(r['symmetry']) < HOLDS, (f.__name__, layer, r)
        assert abs(r['near_miss']) > DETECTED and abs(r['random']) > DETECTED, (f.__name__, layer, r)

def test_post_attention_norm_trade_and_norm_alone(setup):
    m, loss = setup
    c = torch.exp(torch.randn(m.config.hidden_size, generator=torch.Generator().manual_seed(9)))
    r = check(m, loss, norm_trade, 1, c, 'post_attention_layernorm')
    assert abs(r['symmetry']) < HOLDS and abs(r['near_miss']) > DETECTED   # the gain alone (near miss) is not a symmetry

def test_alignment_positive_and_negative_control(setup):
    m, _ = setup
    cfg = m.config; sd0 = state(m); g = torch.Generator().manual_seed(5)
    ft = {n: t + 0.01 * torch.randn(t.shape, generator=g) for n, t in sd0.items()}
    perms = {i: torch.randperm(cfg.intermediate_size, generator=g) for i in range(cfg.num_hidden_layers)}
    scrambled = dict(ft)
    for i, p in perms.items(): scrambled = mlp_permutation(scrambled, cfg, i, p)
    back, found = align_mlp(sd0, scrambled, cfg)
    for i, p in perms.items(): assert torch.equal(p[found[i]], torch.arange(cfg.intermediate_size))   # the inverse permutation
    assert all(torch.equal(back[n], ft[n]) for n in ft)
    _, ident = align_mlp(sd0, ft, cfg)
    assert all(torch.equal(p, torch.arange(cfg.intermediate_size)) for p in ident.values())

# --- checks change the live model's affected tensors and put them back: no copy of the model ---
def test_check_puts_every_parameter_back_bit_for_bit(setup, monkeypatch):
    "No deep copy of the model; after a check (also one whose loss raises halfway) every parameter is bit-identical, in its own storage."
    import copy
    from sitv import symmetries as S
    m, loss = setup
    monkeypatch.setattr(copy, 'deepcopy', lambda *a, **k: (_ for _ in ()).throw(AssertionError('the model was deep-copied')))
    before = {n: (p.detach().clone(), p.data_ptr()) for n, p in m.named_parameters()}
    same = lambda: all(torch.equal(p, before[n][0]) and p.data_ptr() == before[n][1] for n, p in m.named_parameters())
    c = torch.exp(torch.randn(m.config.intermediate_size, generator=torch.Generator().manual_seed(1)))
    r = check(m, loss, mlp_rescale, 1, c)
    assert abs(r['symmetry']) < HOLDS and abs(r['random']) > DETECTED and same()
    for fail_at in (2, 3, 4):                         # the loss raises with the symmetry, the near miss, the random move held
        calls = []
        def bad_loss(mm):
            calls.append(1)
            if len(calls) == fail_at: raise RuntimeError('loss failed halfway')
            return loss(mm)
        with pytest.raises(RuntimeError, match='loss failed halfway'): check(m, bad_loss, mlp_rescale, 1, c)
        assert same(), fail_at
    seen = []                                         # inside a check only the map's tensors are swapped in
    def watching(mm):
        seen.append({n for n, p in mm.named_parameters() if p.data_ptr() != before[n][1]}); return loss(mm)
    check(m, watching, mlp_rescale, 1, c)
    assert seen[0] == set() and seen[1] == {'model.layers.1.mlp.up_proj.weight', 'model.layers.1.mlp.down_proj.weight'}, seen
    assert S.symmetry_checks(m, loss, ('MLP hidden-unit permutation',)) and same()

def test_holding_nests_and_refuses_unknown_names(setup):
    "A state that differs from the one held in a few tensors swaps only those; a name the model lacks is refused."
    from sitv.symmetries import holding, live
    m, loss = setup
    sd0 = live(m); ft = {**sd0, 'model.norm.weight': sd0['model.norm.weight'] * 1.5}
    perm = mlp_permutation(ft, m.config, 0, torch.randperm(m.config.intermediate_size, generator=torch.Generator().manual_seed(2)))
    with holding(m, ft):
        L_ft = loss(m)
        with holding(m, perm):
            assert m.get_parameter('model.norm.weight').data_ptr() == ft['model.norm.weight'].data_ptr()
            assert abs(loss(m) - L_ft) < HOLDS
        assert torch.equal(m.get_parameter('model.layers.0.mlp.down_proj.weight'), sd0['model.layers.0.mlp.down_proj.weight'])
    assert all(p.data_ptr() == sd0[n].data_ptr() for n, p in m.named_parameters())
    with pytest.raises(KeyError, match="'lm_head.bias' is not a parameter"):
        with holding(m, {'lm_head.bias': torch.zeros(1)}): pass

# --- the report's runtime parameters are checked before anything is loaded ---
@pytest.mark.parametrize('params,msg', [(dict(dtype='float8'), 'unknown dtype'), (dict(device='cuda'), 'no CUDA device')])
def test_bad_runtime_refused_before_loading(monkeypatch, params, msg):
    "A bad dtype, or device='cuda' on a machine without CUDA, stops the report before any model is loaded."
    import sitv.model
    from nbrun import run_inputs
    if params.get('device') == 'cuda' and torch.cuda.is_available(): pytest.skip('this machine has CUDA')
    monkeypatch.setattr(sitv.model, 'load_model', lambda *a, **k: (_ for _ in ()).throw(AssertionError('a model was loaded')))
    out = run_inputs('symmetries.ipynb', 'check_runtime(device', model='/nonexistent/model', **params)
    assert isinstance(out, str), sorted(out)
    assert msg in out and "a model was loaded" not in out, out[-2000:]

def test_report_with_given_checkpoints_fine_tunes_nothing(tmp_path, monkeypatch):
    "With finetuned_a and finetuned_b given the report fine-tunes nothing (and says so), measures its peak, and its checks hold."
    import sitv.finetune
    from nbrun import run_inputs
    from sitv.model import save_model
    m = random_llama(seed=3, num_key_value_heads=2, num_hidden_layers=2); tok = byte_tokenizer()
    save_model(m, tok, tmp_path / 'base')
    g = torch.Generator().manual_seed(0)
    for k in ('a', 'b'):
        ft = random_llama(seed=3, num_key_value_heads=2, num_hidden_layers=2)
        with torch.no_grad():
            for p in ft.parameters(): p.add_(0.01 * torch.randn(p.shape, generator=g))
        save_model(ft, tok, tmp_path / f'ft-{k}')
    monkeypatch.setattr(sitv.finetune, 'finetune', lambda *a, **k: (_ for _ in ()).throw(AssertionError('fine-tuned')))
    monkeypatch.setattr('matplotlib.pyplot.show', lambda *a, **k: None)
    ns = run_inputs('symmetries.ipynb', 'meter.report', model=tmp_path / 'base', finetuned_a=tmp_path / 'ft-a', finetuned_b=tmp_path / 'ft-b', n_eval=8, batch_size=4)
    assert isinstance(ns, dict), ns[-3000:]
    assert ns['n_tune'] == 0 and len(ns['raw']) == 12 and all(abs(r['symmetry']) < HOLDS for r in ns['raw'])
    assert abs(ns['L_scr'] - ns['L_b']) < HOLDS and ns['cos_back'] == pytest.approx(ns['cos_al'], abs=1e-9)
    assert 'copies of the weights' in ns['meter'].report(ns['base_m'])

def test_symmetry_checks_on_chosen_blocks_only():
    "blocks=[1]: the same maps as a full run, all in block 1 (a 30-block model need not pay for all); the symmetries hold, the controls are detected."
    from sitv.model import random_llama, byte_tokenizer
    from sitv.data import make_split
    from sitv.evaluate import evaluate
    from sitv.symmetries import symmetry_checks
    m, tok, xs = random_llama(seed=0, num_hidden_layers=2), byte_tokenizer(), make_split('general', 'eval', 4)
    L = lambda mm: evaluate(mm, {'g': xs}, tok)['g']['loss']
    some, every = symmetry_checks(m, L, blocks=[1]), symmetry_checks(m, L)
    assert some and {r['block'] for r in some} == {1}
    assert [r['kind'] for r in some] == [r['kind'] for r in every if r['block'] == 1]
    assert all(abs(r['symmetry']) < 1e-5 and abs(r['random']) > 1e-4 for r in some), some
