"The shipped model and the four fine-tunes it supports: each measurably learns its task and the vectors differ."
import itertools
import pytest
import torch
from sitv.core import TaskVector
from sitv.data import TASKS, make_split, entropy_rate, unigram_entropy
from sitv.evaluate import evaluate
from sitv.finetune import finetune
from sitv.model import SHIPPED, load_model, byte_tokenizer

@pytest.fixture(scope='module')
def base(): return load_model(SHIPPED)

@pytest.fixture(scope='module')
def vectors(base):
    return {t: TaskVector.from_models(base, finetune(SHIPPED, t, progress=False)[0]) for t in TASKS}

def test_shipped_model_beats_unigram_by_far(base):
    ev = evaluate(base, {'g': make_split('general', 'eval', 128)}, byte_tokenizer())['g']
    U = unigram_entropy(make_split('general', 'train', 2000), make_split('general', 'eval', 128))
    assert ev['loss'] < 0.5 * U
    assert ev['loss'] > entropy_rate(make_split('general', 'eval', 128))

@pytest.mark.parametrize('task', TASKS)
def test_finetune_lowers_task_loss_by_more_than_3_se(base, task):
    tok, xs = byte_tokenizer(), make_split(task, 'eval', 64)
    before = evaluate(base, {task: xs}, tok)[task]
    after = evaluate(finetune(SHIPPED, task, progress=False)[0], {task: xs}, tok)[task]
    se = max(before['loss_se'], after['loss_se'])
    assert before['loss'] - after['loss'] > 3 * se, (before['loss'], after['loss'], se)

def test_task_vectors_are_clearly_different(vectors):
    for a, b in itertools.combinations(TASKS, 2):
        c = vectors[a].cosine(vectors[b])
        assert c < 0.9, (a, b, c)
