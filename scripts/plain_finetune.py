"""Fine-tune a causal LM outside sitv: plain transformers and torch, as a user's own training script would, so that one
committed report (reports/sweep-my_qa) is made from inputs as a user brings them.

    python scripts/plain_finetune.py BASE DATA.jsonl OUT [--steps 150] [--lr 3e-4] [--seed 0]

DATA is a JSONL of prompt/completion pairs; the loss is on the completions only (prompt tokens labelled -100), batches
are right-padded, AdamW with a constant learning rate, and the result is saved with `save_pretrained` in bfloat16 and
without a tokenizer, as training checkpoints often are. Deterministic for a given seed on one machine."""
import argparse, json, random
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

def batch(rows, tok):
    ids, labels = [], []
    for r in rows:
        p = tok(r['prompt'], add_special_tokens=False).input_ids
        c = tok(r['completion'], add_special_tokens=False).input_ids + [tok.eos_token_id]
        ids.append(p + c); labels.append([-100] * len(p) + c)
    n = max(map(len, ids))
    pad = lambda xs, v: [x + [v] * (n - len(x)) for x in xs]
    mask = [[1] * len(x) + [0] * (n - len(x)) for x in ids]
    return dict(input_ids=torch.tensor(pad(ids, tok.pad_token_id)), attention_mask=torch.tensor(mask), labels=torch.tensor(pad(labels, -100)))

def main(base, data, out, steps=150, lr=3e-4, batch_size=16, seed=0):
    random.seed(seed); torch.manual_seed(seed)
    tok, model = AutoTokenizer.from_pretrained(base), AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    rows = [json.loads(l) for l in Path(data).read_text().splitlines() if l.strip()]
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        loss = model(**batch(random.sample(rows, batch_size), tok)).loss
        loss.backward(); opt.step(); opt.zero_grad()
        if step % 50 == 0 or step == steps - 1: print(f'step {step + 1}: loss {loss.item():.3f}')
    model.eval().to(torch.bfloat16).save_pretrained(out)
    (Path(out) / 'training.json').write_text(json.dumps(dict(base=str(base), data=str(data), steps=steps, lr=lr, batch_size=batch_size, seed=seed)))
    return out

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('base'); ap.add_argument('data'); ap.add_argument('out')
    ap.add_argument('--steps', type=int, default=150); ap.add_argument('--lr', type=float, default=3e-4); ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    main(a.base, a.data, a.out, a.steps, a.lr, seed=a.seed)
