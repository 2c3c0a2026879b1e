"""Inputs as a user brings them, on a real model: SmolLM2-135M-Instruct (`sitv.real`) with text from the Python standard
library, a LoRA adapter trained by plain peft and a full fine-tune trained by a plain torch loop — no sitv code in the
training, so the reports meet what other tools write.

    python scripts/real_inputs.py OUT [--task code|prose] [--kind data|lora|full] [--steps N] [--seed S]

- data: OUT/data/{code,prose}-{train,eval}.jsonl and stdlib-data.json (`sitv.real.write_stdlib_data`)
- lora: OUT/lora-<task>/ — peft LoraConfig(r=8, lora_alpha=16, all linear layers), AdamW lr 1e-3, batches of 8 texts of
  at most 128 tokens, the model's own loss; saved with `save_pretrained` (adapter_config.json names the base folder)
- full: OUT/full-<task>/ — every parameter, AdamW lr 2e-5, same batches; saved in bfloat16, sharded at 100MB, without a
  tokenizer, as training checkpoints often are

Deterministic for a given seed on one machine; each step is printed with its loss and seconds."""
import argparse, json, random, time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

def texts(out, task, split='train'):
    return [json.loads(l)['text'] for l in (Path(out) / 'data' / f'{task}-{split}.jsonl').read_text().splitlines() if l.strip()]

def batch(rows, tok, max_len=128):
    b = tok(rows, return_tensors='pt', padding=True, truncation=True, max_length=max_len)
    b['labels'] = b['input_ids'].masked_fill(b['attention_mask'] == 0, -100)
    return b

def train(model, rows, tok, steps, lr, batch_size, seed, params):
    opt = torch.optim.AdamW(params, lr=lr)
    rng = random.Random(seed)
    model.train(); hist = []
    for step in range(steps):
        t0 = time.perf_counter()
        loss = model(**batch(rng.sample(rows, batch_size), tok)).loss
        loss.backward(); opt.step(); opt.zero_grad()
        hist.append(loss.item())
        print(f'step {step + 1}/{steps}: loss {loss.item():.4f} ({time.perf_counter() - t0:.1f} s)', flush=True)
    return hist

def main(out, task='code', kind='lora', steps=15, seed=0, batch_size=8):
    from sitv.real import real_model_dir, write_stdlib_data
    out = Path(out)
    if kind == 'data': return print(json.dumps(write_stdlib_data(out / 'data'), indent=1))
    if not (out / 'data' / f'{task}-train.jsonl').exists(): write_stdlib_data(out / 'data')
    base = real_model_dir('smollm2')
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    rows, dest = texts(out, task), out / f'{kind}-{task}'
    if kind == 'lora':
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules='all-linear', lora_dropout=0.0, task_type='CAUSAL_LM'))
        lr = 1e-3
        hist = train(model, rows, tok, steps, lr, batch_size, seed, [p for p in model.parameters() if p.requires_grad])
        model.save_pretrained(dest)
    else:
        lr = 2e-5
        hist = train(model, rows, tok, steps, lr, batch_size, seed, model.parameters())
        model.eval().to(torch.bfloat16).save_pretrained(dest, max_shard_size='100MB')
    (dest / 'training.json').write_text(json.dumps(dict(base=str(base), task=task, kind=kind, steps=steps, lr=lr, batch_size=batch_size,
                                                        seed=seed, max_len=128, loss=hist)))
    print(f'{dest}: loss {hist[0]:.4f} → {hist[-1]:.4f} in {steps} steps')

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('out'); ap.add_argument('--task', default='code', choices=['code', 'prose'])
    ap.add_argument('--kind', default='lora', choices=['data', 'lora', 'full'])
    ap.add_argument('--steps', type=int, default=15); ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    main(a.out, a.task, a.kind, a.steps, a.seed)
