"Issue 18: length-bucketed evaluation gives every text the loss it has alone, in the caller's order, with less padding."
import random
import numpy as np
import torch
from sitv.data import Example, batches, make_split
from sitv.evaluate import score
from sitv.model import random_llama, byte_tokenizer

def _texts(n=40, seed=0):
    "A wide length spread in a shuffled order (as a user's file comes)."
    words = ' '.join(e.text for e in make_split('general', 'eval', 60)).split()
    r = random.Random(seed)
    return [Example('', ' '.join(r.choice(words) for _ in range(int(2 * 20 ** r.random())))) for _ in range(n)]

def test_bucketed_per_text_losses_equal_one_text_per_batch_in_the_original_order():
    m, tok, xs = random_llama(seed=0).double(), byte_tokenizer(), _texts()
    alone = score(m, xs, tok, batch_size=1)                                # no padding at all: the reference
    for fill in (0.9, 0.0):                                                # length buckets; sorted cuts (the old batching)
        s = score(m, xs, tok, batch_size=16, min_fill=fill)
        np.testing.assert_array_equal(s['n_tokens'], alone['n_tokens'])   # the same texts in the same places
        np.testing.assert_allclose(s['nll'], alone['nll'], rtol=1e-8)     # float64 (Llama's RMSNorm computes in fp32): rounding only
    assert not np.array_equal(alone['n_tokens'], np.sort(alone['n_tokens']))   # the order given was not sorted (the control)

def test_buckets_fill_at_least_min_fill_where_sorted_cuts_do_not():
    tok, xs = byte_tokenizer(), _texts()
    frac = lambda fill: (lambda bl: sum(int(b['attention_mask'].sum()) for b in bl) / sum(b['attention_mask'].numel() for b in bl))(
        [b for _, b in batches(xs, tok, 16, min_fill=fill)])
    assert frac(0.9) >= 0.9 > frac(0.0)
    for _, b in batches(xs, tok, 16, min_fill=0.9):
        m = b['attention_mask']; assert m.sum() / m.numel() >= 0.9 and len(m) <= 16
