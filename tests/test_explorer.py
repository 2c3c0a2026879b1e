"The explorer's callbacks without a browser: moving a slider, picking a task or a pad point changes what is displayed."
import json
from pathlib import Path

import pytest
import torch

from sitv.core import TaskVector, fingerprint
from sitv.explorer import Explorer, at, continuation, rebuild_task_vector
from sitv.finetune import finetune
from sitv.model import SHIPPED, load_model, load_tokenizer
from sitv.results import Results

ALPHAS = [-0.5, 0.0, 0.5, 1.0, 1.5]
LOSS = {'general': lambda a: 2.0 + 0.1 * a * a, 'qa': lambda a: 3.0 - a + 0.4 * a * a, 'sentiment_positive': lambda a: 4.0 - 0.5 * a}

def _sweep(folder, task, tv=None, config=None):
    "What a sweep report leaves in its folder, with known losses and KL = α²/10."
    stem = f'sweep-{task}-0123456789'
    res = Results(folder / f'{stem}.json', {'task': task})
    for a in ALPHAS:
        res.add({'alpha': a}, {n: {'loss': LOSS[n](a), 'kl': a * a / 10, 'top1_agreement': 1 - abs(a) / 10} for n in ('general', task)})
    s = dict(kind='sweep-summary', task=task, model=SHIPPED, config=config or {}, code_hash='abc123abc123', result_file=f'{stem}.json',
             tv_file=f'{stem}.tv.safetensors', null_files=[])
    if tv is not None: tv.save(folder / s['tv_file'])
    (folder / f'{stem}.summary.json').write_text(json.dumps(s))

def _grid(folder):
    res = Results(folder / 'composition-sentiment_positive-qa-0123456789.json', {'tasks': ['sentiment_positive', 'qa']})
    for a in (0.0, 0.5, 1.0):
        for b in (0.0, 0.5, 1.0):
            res.add({'alpha': a, 'beta': b}, {n: {'loss': 10 * a + b + len(n)} for n in ('general', 'sentiment_positive', 'qa')})

@pytest.fixture
def folder(tmp_path):
    _sweep(tmp_path, 'qa'); _sweep(tmp_path, 'sentiment_positive'); _grid(tmp_path)
    return tmp_path

def test_slider_moves_the_displayed_loss_and_kl(folder):
    ex = Explorer(folder, task='qa', generate=False)
    assert ex.alpha.value == 1.0 and [v for _, v in ex.alpha.options] == ALPHAS   # only measured α are offered
    ex.alpha.value = 0.5
    assert ex.state['loss']['qa'] == pytest.approx(LOSS['qa'](0.5)) and ex.state['kl']['qa'] == pytest.approx(0.025)
    assert ex.state['delta']['general'] == pytest.approx(0.1 * 0.25)
    assert f"{LOSS['qa'](0.5):.4f}" in ex.readout.value and '+0.0250' in ex.readout.value
    ex.alpha.value = -0.5                                                                        # and back the other way
    assert ex.state['loss']['qa'] == pytest.approx(LOSS['qa'](-0.5)) and f"{LOSS['qa'](-0.5):.4f}" in ex.readout.value
    ex.alpha.value = 0.0
    assert ex.state['delta'] == {'general': 0.0, 'qa': 0.0}
    assert 'continuations off' in ex.text.value

def test_task_picker_switches_grid_and_sets(folder):
    ex = Explorer(folder, generate=False)
    assert ex.task.value == 'qa'                                       # alphabetical first
    ex.task.value = 'sentiment_positive'
    assert set(ex.state['loss']) == {'general', 'sentiment_positive'} and ex.state['alpha'] == 1.0
    assert ex.state['loss']['sentiment_positive'] == pytest.approx(3.5)
    assert ex.prompt.value                                              # a prompt from the task's eval texts
    with pytest.raises(ValueError, match="no sweep of 'tsv'"): Explorer(folder, task='tsv', generate=False)

def test_pad_reads_the_composition_grid(folder):
    ex = Explorer(folder, generate=False)
    assert ex.mode.options == ('one task', 'two tasks')
    ex.mode.value = 'two tasks'
    assert ex._one.layout.display == 'none' and ex._two.layout.display is None
    ex.pad_a.value, ex.pad_b.value = 1.0, 0.5
    assert ex.state['loss'] == {'general': 10.5 + 7, 'sentiment_positive': 10.5 + 18, 'qa': 10.5 + 2}
    assert ex.state['delta']['qa'] == pytest.approx(10.5) and ex.state['kl']['qa'] is None
    assert '<td>—</td>' in ex.readout.value                              # KL not recorded in a grid: shown as missing

def test_no_pad_without_a_grid(tmp_path):
    _sweep(tmp_path, 'qa')
    ex = Explorer(tmp_path, generate=False)
    assert ex.mode.options == ('one task',) and ex.pair.disabled

def test_missing_task_vector_is_explained_not_loaded(folder):
    ex = Explorer(folder, task='qa')
    assert ex.state['continuation'] is None and 'no task vector for qa' in ex.text.value and ex._model is None

def test_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='no per-task sweep summaries'): Explorer(tmp_path)

def test_continuation_follows_the_model_at_alpha(tmp_path):
    "Positive and negative control on the live text: α = 0 is the base's continuation, a large move changes it; weights restored."
    m, tok = load_model(SHIPPED), load_tokenizer(SHIPPED)
    base_params = dict(m.named_parameters())
    g = torch.Generator().manual_seed(0)
    D = TaskVector({n: torch.randn(p.shape, generator=g) for n, p in base_params.items()}, fingerprint(base_params), source='test')
    D = D * (20.0 / D.norm())                                           # a random move far larger than any task vector here
    _sweep(tmp_path, 'qa', tv=D)
    before = {n: p.detach().clone() for n, p in m.state_dict().items()}
    ex = Explorer(tmp_path, task='qa', model=m, tok=tok, max_new_tokens=12)
    ex.alpha.value = 0.0
    base_text = continuation(m, tok, ex.prompt.value, max_new_tokens=12)
    assert ex.state['continuation'] == base_text and base_text in ex.text.value
    ex.alpha.value = 1.5
    assert ex.state['continuation'] != base_text
    assert all(torch.equal(before[n], p) for n, p in m.state_dict().items())

def test_rebuild_refuses_a_different_finetune(tmp_path):
    cfg = dict(model=SHIPPED, ft_steps=2, ft_batch_size=4, ft_lr=3e-4, seed=0, data_seed=0, n_train=16, dtype='float32', device='cpu')
    base, (ft, info) = load_model(SHIPPED), finetune(SHIPPED, 'qa', steps=2, batch_size=4, n_train=16, progress=False)
    T = rebuild_task_vector(dict(task='qa', config={**cfg, 'finetune_key': info['key']}), base)
    assert T.cosine(TaskVector.from_models(base, ft)) == pytest.approx(1.0) and T.norm() > 0
    with pytest.raises(ValueError, match='cannot be rebuilt'):
        rebuild_task_vector(dict(task='qa', config={**cfg, 'finetune_key': '0' * 16}), base)
