"Splits, masks and losses: the properties every reported number depends on."
import numpy as np
import pytest
import torch
from sitv.data import DATASETS, TASKS, Example, collate, encode, make_split, task_data, entropy_rate, unigram_entropy
from sitv.evaluate import score, summarize
from sitv.model import byte_tokenizer, random_llama

@pytest.mark.parametrize('task', list(DATASETS))
def test_splits_are_disjoint(task):
    d = task_data(task, n_train=256, n_val=48, n_eval=48)
    for a, b in [('train', 'val'), ('train', 'eval'), ('val', 'eval')]:
        assert not {e.text for e in d[a]} & {e.text for e in d[b]}
        assert not {e.key for e in d[a]} & {e.key for e in d[b]}
    for xs in d.values(): assert len({e.text for e in xs}) == len(xs)   # no duplicates inside a split

def test_qa_eval_facts_never_trained_on():
    d = task_data('qa', n_train=400, n_val=32, n_eval=64)
    train_facts = {e.key for e in d['train']}
    assert all(e.key not in train_facts for e in d['eval'])
    assert {e.category for e in d['eval']} >= {'capital', 'arithmetic'}

def test_general_corpus_has_four_categories_and_fits():
    xs = make_split('general', 'eval', 128)
    assert sorted({e.category for e in xs}) == ['arithmetic', 'dialogue', 'encyclopedia', 'narrative']
    assert max(len(e.text.encode()) for e in xs) <= 128

def test_generator_entropy_between_zero_and_unigram():
    d = task_data('general', 1024, 8, 128)
    assert 0.05 < entropy_rate(d['eval']) < 0.5 * unigram_entropy(d['train'], d['eval'])

@pytest.mark.parametrize('task', ['qa', 'instruction_following'])
def test_answer_only_masking_counts_exactly_the_answer_tokens(task):
    tok = byte_tokenizer()
    for e in make_split(task, 'eval', 32):
        ids, labels = encode(e, tok)
        scored = [(i, l) for i, l in enumerate(labels) if l != -100]
        n_prompt = len(e.prompt.encode())
        assert [i for i, _ in scored] == list(range(n_prompt, n_prompt + len(e.target.encode()) + 1))
        assert tok.decode([l for _, l in scored], skip_special_tokens=True) == e.target

def test_full_text_tasks_score_every_predictable_token():
    tok = byte_tokenizer()
    e = make_split('sentiment_positive', 'eval', 1)[0]
    ids, labels = encode(e, tok)
    assert sum(l != -100 for l in labels) == len(ids) - 1   # all but position 0

def test_text_alone_and_in_padded_batch_same_loss():
    tok, m = byte_tokenizer(), random_llama(seed=3)
    xs = make_split('instruction_following', 'eval', 12)
    batched = score(m, xs, tok, batch_size=12)
    assert len({len(e.text) for e in xs}) > 1   # the batch really is padded
    for i in (0, 5, 11):
        alone = score(m, [xs[i]], tok)
        assert abs(alone['nll'][0] - batched['nll'][i]) < 1e-5 * max(1, abs(alone['nll'][0]))
        assert alone['n_tokens'][0] == batched['n_tokens'][i]

def test_pads_never_scored_and_masked_positions_ignored():
    tok = byte_tokenizer()
    b = collate([encode(Example('', 'ab'), tok), encode(Example('Q:', ' abcdef'), tok)], tok.pad_token_id)
    assert (b['labels'][b['attention_mask'] == 0] == -100).all()
    assert b['input_ids'][0, 3:].eq(tok.pad_token_id).all()

def test_loss_is_token_weighted_not_text_weighted():
    s = dict(nll=np.array([1.0, 30.0]), n_tokens=np.array([1, 10]), n_correct=np.array([0, 0]),
             exact=np.array([False, False]), n_bytes=np.array([1, 10]), category=np.array(['a', 'b']))
    m = summarize(s)
    assert m['loss'] == pytest.approx(31 / 11) and m['loss'] != pytest.approx((1.0 + 3.0) / 2)
    assert m['category_loss'] == {'a': 1.0, 'b': 3.0}

def test_teacher_forced_exact_match_positive_and_negative():
    "A model whose argmax is always the true next token scores exact match 1 and accuracy 1; a shifted one 0."
    tok = byte_tokenizer()
    xs = make_split('qa', 'eval', 6)
    class Oracle(torch.nn.Module):
        def __init__(self, shift): super().__init__(); self.w = torch.nn.Parameter(torch.zeros(1)); self.shift = shift
        def forward(self, input_ids, attention_mask=None):
            nxt = (torch.roll(input_ids, -1, 1) + self.shift) % 384
            return type('Out', (), {'logits': torch.nn.functional.one_hot(nxt, 384).float() * 10})()
    for shift, want in ((0, 1.0), (1, 0.0)):
        m = summarize(score(Oracle(shift), xs, tok, batch_size=4))
        assert m['exact_match'] == want and m['token_accuracy'] == want

class _PadPoison(torch.nn.Module):
    "A causal LM whose logits at padded positions are NaN, with one −inf (as some kernels produce where a row sees only pads)."
    def __init__(self, lm): super().__init__(); self.lm = lm
    def forward(self, input_ids, attention_mask):
        lg = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits.clone()
        lg[attention_mask == 0] = float('nan'); lg[..., 0][attention_mask == 0] = float('-inf')
        return type('Out', (), {'logits': lg})

def test_nan_logits_at_padded_positions_do_not_reach_the_loss():
    "Masking by selection: per-text losses of a padded batch stay finite and equal to the clean model's."
    tok, model, xs = byte_tokenizer(), random_llama(seed=0), make_split('qa', 'eval', 12)
    clean, poisoned = score(model, xs, tok, batch_size=6), score(_PadPoison(model), xs, tok, batch_size=6)
    assert np.isfinite(poisoned['nll']).all()
    np.testing.assert_allclose(poisoned['nll'], clean['nll'], rtol=1e-9)
    assert (poisoned['n_tokens'] == clean['n_tokens']).all()
