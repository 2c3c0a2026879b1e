"""Every model family through every report's computation, at function level on tiny random models built from configs
(tests/families.py), saved and reloaded as a user's folders are. Each check records its outcome ('ok', or the refusal
it raised) and the outcome must equal the committed support table `nbs/support.json`, which the docs page
`nbs/families.ipynb` renders. Refresh the table after a deliberate change with `SITV_UPDATE_SUPPORT=1 pytest tests/test_families.py`."""
import json, math, os, re
from pathlib import Path

import numpy as np
import pytest
import torch

import families as F
from sitv.core import TaskVector, displaced
from sitv.data import make_split
from sitv.evaluate import score, summarize
from sitv.model import byte_tokenizer, load_model, load_tokenizer
from sitv.results import Results
from sitv.vectors import checkpoint_vector
from sitv.sweep import curve, sweep

TABLE = Path(__file__).resolve().parent.parent / 'nbs' / 'support.json'
REPORTS = ['sweep', 'lora', 'tsv', 'geometry', 'symmetries']

@pytest.fixture(scope='module')
def data():
    return dict(train=[e.text for e in make_split('qa', 'train', 32)], eval=make_split('qa', 'eval', 8))

@pytest.fixture(scope='module')
def built(tmp_path_factory, data):
    "family -> (base folder, fine-tuned folder, second fine-tune's folder), made without sitv and saved by save_pretrained."
    tok, root, out = byte_tokenizer(), tmp_path_factory.mktemp('families'), {}
    def make(f):
        if f not in out:
            m = F.model(f)
            out[f] = tuple(F.saved(x, tok, root / f'{f}-{k}') for k, x in
                           (('base', m), ('ft', F.plain_finetune(m, tok, data['train'], seed=0)), ('ft2', F.plain_finetune(m, tok, data['train'], seed=1))))
        return out[f]
    return make

def loaded(folders):
    "The user's path: base loaded by sitv, its tokenizer checked, T streamed from the fine-tuned folder."
    base, tok = load_model(folders[0]), load_tokenizer(folders[0])
    return base, tok, checkpoint_vector(base, folders[1])[0]

def record(family, report, check):
    "Run `check`; the outcome is 'ok' or 'refused: <first line of the message>'; compare it with (or write it to) the table."
    try: got = check() or 'ok'
    except (ValueError, NotImplementedError) as e: got = 'refused: ' + re.sub(r"'/[^']*/", "'", str(e).splitlines()[0])   # no temporary paths
    table = json.loads(TABLE.read_text()) if TABLE.exists() else {}
    if os.environ.get('SITV_UPDATE_SUPPORT'):
        table.setdefault(family, {})[report] = got
        TABLE.write_text(json.dumps({f: table[f] for f in sorted(table)}, indent=1, ensure_ascii=False) + '\n')
    assert table.get(family, {}).get(report) == got, f'{family} / {report}: measured {got!r}, table says {table.get(family, {}).get(report)!r}'

# --- sweep: L(0) is the base's loss exactly, L(1) the fine-tune's, the base bit-identical after ---
def sweep_check(folders, data, tmp):
    base, tok, T = loaded(folders)
    sets = {'task': data['eval']}
    snap = {n: p.detach().clone() for n, p in base.named_parameters()}
    res = Results(tmp / 'sweep.json', {})
    sweep(base, T, sets, tok, [-0.5, 0.0, 0.5, 1.0], res, progress=False)
    a, y = curve(res, 'task')
    assert y[list(a).index(0.0)] == summarize(score(base, sets['task'], tok))['loss']
    ft = summarize(score(load_model(folders[1]), sets['task'], tok))['loss']
    assert abs(y[list(a).index(1.0)] - ft) < 1e-4 * ft, (y, ft)
    assert all(torch.equal(p, snap[n]) for n, p in base.named_parameters())

# --- tsv: full-rank compression is T; a TSV merge of two fine-tunes evaluates to finite losses ---
def tsv_check(folders, data, tmp):
    from sitv.tsv import is_matrix, spectra, tsv_compress, tsv_merge
    base, tok, T = loaded(folders)
    T2 = checkpoint_vector(base, folders[2])[0]
    mats = [n for n in T.names if is_matrix(n, T[n])]
    assert mats, 'no matrices in T'
    full, _ = tsv_compress(T, k=max(min(T[n].shape) for n in mats))
    for n in mats: torch.testing.assert_close(full[n], T[n], atol=1e-5, rtol=1e-4)
    assert set(mats) <= set(spectra(T)[0])
    merged = tsv_merge([T, T2])
    with displaced(base, merged, 1.0): loss = summarize(score(base, data['eval'], tok))['loss']
    assert math.isfinite(loss)

# --- geometry: the exact Fisher quadratic TᵀFT agrees with the KL of a small step, 2·KL(εT)/ε² → TᵀFT ---
def geometry_check(folders, data, tmp):
    from sitv.geometry import fisher_quadratic, kl_from_base
    from sitv.second_order import directional_derivatives
    base, tok, T = loaded(folders)
    base = base.double()                                  # float64, as the geometry report computes
    q = fisher_quadratic(base, data['eval'], tok, T)
    eps = 1e-3
    kl = kl_from_base(base, data['eval'], tok, T, [eps])[0]
    assert q > 0 and abs(2 * kl / eps ** 2 - q) < 2e-2 * q, (q, 2 * kl / eps ** 2)
    d = directional_derivatives(base, data['eval'], tok, T)
    assert math.isfinite(d['g']) and math.isfinite(d['h'])
    hessian_vector_check(base, tok, data['eval'][:3], T)

def hessian_vector_check(base, tok, texts, T):
    "`hvp_fn` (forward AD, then backward, each term drained as it comes) equals torch.func's grad of jvp on the family's own attention and output layer."
    from torch.func import grad, jvp
    from sitv.geometry import hvp_fn
    from sitv.second_order import nll_sum, scored_batches
    names = T.names[:4]
    hv, pt = hvp_fn(base, texts, tok, names, batch_size=3)
    v = {k: T[k].to(pt[k].dtype) for k in names}
    got = hv(v)
    bl, n = scored_batches(texts, tok, 3, 256, 'cpu', model=base)
    ref = {k: 0 for k in names}
    for b in bl:
        h = grad(lambda d: jvp(lambda e: nll_sum(base, e, *b), (d,), (v,))[1])(pt)
        ref = {k: ref[k] + h[k] / n for k in names}
    for k in names:                                        # in norm: RMSNorm computes in fp32 even in a float64 model
        assert float((got[k] - ref[k]).norm()) <= 1e-6 * float(ref[k].norm()) and float(ref[k].norm()) > 0, (k, float((got[k] - ref[k]).norm()), float(ref[k].norm()))

# --- lora: a full-rank extraction with modules_to_save, loaded by plain peft and merged, is the fine-tuned model ---
def lora_check(folders, data, tmp):
    from peft import PeftModel
    from sitv.lora import extract_lora
    base, tok, T = loaded(folders)
    rank = max(min(t.shape) for t in T.deltas.values() if t.ndim == 2)
    info = extract_lora(T, base, rank, tmp / 'lora', modules_to_save=True)
    assert abs(sum(info['split'].values()) - 1) < 1e-9 and info['split']['low_rank'] > 0
    merged = dict(PeftModel.from_pretrained(load_model(folders[0]), str(tmp / 'lora')).merge_and_unload().named_parameters())
    ft = dict(load_model(folders[1]).named_parameters())
    carried = [n for n in T.names if n not in info['not_carried']]
    assert len(carried) >= len(T.names) - len(info['not_carried']) and carried
    for n in carried: torch.testing.assert_close(merged[n], ft[n], atol=2e-5, rtol=1e-4, msg=lambda m: f'{n}: {m}')

# --- symmetries: every map the family supports holds at round-off in float64; its near miss and a random move do not ---
def symmetries_check(folders, data, tmp):
    from sitv.symmetries import MAPS, supported_maps, symmetry_checks
    base, tok, _ = loaded(folders)
    base = base.double()
    ok = supported_maps(base)                                  # a ValueError naming the family if it has no maps
    loss = lambda m: summarize(score(m, data['eval'], tok))['loss']
    rows = symmetry_checks(base, loss, maps=list(MAPS))
    held = {k for k in MAPS if ok[k][0]}
    assert {r['kind'] for r in rows} == held and held
    for r in rows:
        assert abs(r['symmetry']) < 1e-7, r                   # Gemma's RMSNorm computes in fp32 even in a float64 model
        assert abs(r['near_miss']) > 1e-6 and abs(r['random']) > 1e-6, r
    refused = sorted(k for k in MAPS if not ok[k][0])
    return f"ok: {len(held)} of {len(MAPS)} maps hold" + (f" (refused for this family, with its reason: {'; '.join(refused)})" if refused else '')

CHECKS = dict(sweep=sweep_check, lora=lora_check, tsv=tsv_check, geometry=geometry_check, symmetries=symmetries_check)

@pytest.mark.parametrize('report', list(CHECKS))
@pytest.mark.parametrize('family', list(F.FAMILIES))
def test_family_report(family, report, built, data, tmp_path):
    record(family, report, lambda: CHECKS[report](built(family), data, tmp_path))
