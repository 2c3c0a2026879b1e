"""Inputs as a user brings them, made without sitv: tiny random Hugging Face models of three families saved with
`save_pretrained`, "fine-tuned" checkpoints from a plain torch training loop (one saved in bf16, one sharded), an
adapter trained with plain peft, and data files written as a user writes them (JSONL, CSV, a datasets folder, text)."""
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
from transformers import (GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM)

CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")
LINES = [f'The {a} {b} walked to the {c} and saw {n} birds.' for n in range(3)
         for a in ('old', 'young', 'quiet', 'brave') for b in ('baker', 'miner', 'sailor') for c in ('market', 'river', 'hill', 'mill')]

def bpe_tokenizer(folder=None):
    "A byte-level BPE trained on a few hundred lines, with the special tokens of a small chat format and a chat template."
    bpe = Tokenizer(models.BPE(unk_token='<unk>'))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ['<unk>', '</s>', '<|user|>', '<|assistant|>', '<|end|>']
    bpe.train_from_iterator(LINES + [f'Q: What is {i} plus {j}? A: {i + j}' for i in range(10) for j in range(10)],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token='</s>', unk_token='<unk>', additional_special_tokens=specials[2:])
    tok.chat_template = CHAT
    if folder is not None: tok.save_pretrained(folder)
    return tok

def config(family, vocab):
    "A tiny config of one family (random weights, offline)."
    common = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=256, eos_token_id=1, bos_token_id=None, pad_token_id=None)
    if family == 'llama': return LlamaConfig(num_key_value_heads=2, tie_word_embeddings=False, **common)
    if family == 'qwen2': return Qwen2Config(num_key_value_heads=2, tie_word_embeddings=True, **common)
    if family == 'gpt_neox': return GPTNeoXConfig(rotary_pct=0.5, use_parallel_residual=True, tie_word_embeddings=False, **common)
    raise ValueError(family)

CLASSES = dict(llama=LlamaForCausalLM, qwen2=Qwen2ForCausalLM, gpt_neox=GPTNeoXForCausalLM)

def base_model(family, folder, tok, seed=0):
    "A random tiny model of `family`, saved with its tokenizer by `save_pretrained`."
    torch.manual_seed(seed)
    m = CLASSES[family](config(family, 16 * ((len(tok) + 31) // 16))).eval()   # padded rows, as released models have (some tokenizer classes add a token)
    m.save_pretrained(folder); tok.save_pretrained(folder)
    return m

def plain_finetune(base_folder, out, tok, texts, steps=8, lr=3e-3, seed=0, dtype=None, shard=None, with_tokenizer=True):
    "A plain torch loop (AdamW on the model's own loss), saved by save_pretrained: in `dtype`, in shards of `shard`."
    from transformers import AutoModelForCausalLM
    import random
    torch.manual_seed(seed)
    texts = random.Random(seed).sample(list(texts), len(texts))       # the seed changes the batch order
    m = AutoModelForCausalLM.from_pretrained(base_folder)
    opt = torch.optim.AdamW(m.parameters(), lr=lr)
    m.train()
    for step in range(steps):
        for t in texts[step % 4::4][:4]:
            ids = tok(t, return_tensors='pt').input_ids
            m(input_ids=ids, labels=ids).loss.backward()
        opt.step(); opt.zero_grad()
    m.eval()
    if dtype is not None: m = m.to(dtype)
    m.save_pretrained(out, **({'max_shard_size': shard} if shard else {}))
    if with_tokenizer: tok.save_pretrained(out)
    return out

def plain_peft_adapter(base_folder, out, tok, texts, steps=8, r=4, seed=0):
    "A LoRA adapter trained by plain peft on the model's own loss, saved by save_pretrained."
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    m = get_peft_model(AutoModelForCausalLM.from_pretrained(base_folder), LoraConfig(r=r, lora_alpha=2 * r, target_modules='all-linear'))
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    m.train()
    for step in range(steps):
        ids = tok(texts[step % len(texts)], return_tensors='pt').input_ids
        m(input_ids=ids, labels=ids).loss.backward(); opt.step(); opt.zero_grad()
    m.save_pretrained(out)
    return out

def data_files(folder):
    "Task data as JSONL (prompt/completion), CSV (text), a datasets folder (messages), and general data as a text file."
    import csv, datasets
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    with open(folder / 'sums.jsonl', 'w') as f:
        for i in range(10):
            for j in range(4): f.write(json.dumps({'prompt': f'Q: What is {i} plus {j}? A:', 'completion': f' {i + j}'}) + '\n')
    with open(folder / 'stories.csv', 'w', newline='') as f:
        w = csv.writer(f); w.writerow(['text', 'source'])
        for t in LINES[:40]: w.writerow([t, 'me'])
    conv = [[{'role': 'user', 'content': f'What is {i} plus {j}?'}, {'role': 'assistant', 'content': f'{i + j}'}] for i in range(6) for j in range(4)]
    datasets.Dataset.from_dict({'messages': conv}).save_to_disk(str(folder / 'chat'))
    (folder / 'general.txt').write_text('\n'.join(LINES[40:]) + '\n')
    return dict(jsonl=folder / 'sums.jsonl', csv=folder / 'stories.csv', chat=folder / 'chat', general=folder / 'general.txt')
