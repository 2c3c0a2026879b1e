"""Every model family a researcher is likely to bring, tiny and random, built from its transformers config (offline):
the configs, a plain-torch "fine-tune" of each (AdamW on the model's own loss, no sitv), and the folders both are saved
to with `save_pretrained`, as a user's would be."""
import random
import torch
import transformers as tf

COMMON = dict(vocab_size=384, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=None)
GQA = dict(num_key_value_heads=2)

# name -> (config class, model class, config overrides, what is special about it)
FAMILIES = {
    'llama':            ('LlamaConfig', 'LlamaForCausalLM', dict(**GQA, tie_word_embeddings=False), 'RMSNorm, SwiGLU, GQA'),
    'llama-bias':       ('LlamaConfig', 'LlamaForCausalLM', dict(**GQA, attention_bias=True, mlp_bias=True), 'biases on q/k/v/o and the MLP'),
    'qwen2-tied':       ('Qwen2Config', 'Qwen2ForCausalLM', dict(**GQA, tie_word_embeddings=True), 'q/k/v biases, tied embeddings'),
    'qwen2-untied':     ('Qwen2Config', 'Qwen2ForCausalLM', dict(**GQA, tie_word_embeddings=False), 'q/k/v biases, own lm_head'),
    'mistral':          ('MistralConfig', 'MistralForCausalLM', dict(**GQA, sliding_window=16), 'sliding-window attention'),
    'gemma2':           ('Gemma2Config', 'Gemma2ForCausalLM', dict(**GQA, head_dim=8, sliding_window=16, query_pre_attn_scalar=8,
                                                                   final_logit_softcapping=30.0, attn_logit_softcapping=50.0),
                         'norm weights stored as 1 + w, logit soft-capping, tied embeddings'),
    'gemma3':           ('Gemma3TextConfig', 'Gemma3ForCausalLM', dict(**GQA, head_dim=8, sliding_window=16, query_pre_attn_scalar=8,
                                                                       final_logit_softcapping=30.0),
                         'norm weights stored as 1 + w, q/k norms, tied embeddings'),
    'phi3':             ('Phi3Config', 'Phi3ForCausalLM', dict(**GQA), 'fused qkv_proj and gate_up_proj'),
    'gpt2':             ('GPT2Config', 'GPT2LMHeadModel', dict(n_embd=32, n_layer=2, n_head=4, n_positions=256), 'Conv1D (weights stored transposed), LayerNorm'),
    'gpt_neox':         ('GPTNeoXConfig', 'GPTNeoXForCausalLM', dict(rotary_pct=0.5, use_parallel_residual=True, tie_word_embeddings=False),
                         'fused query_key_value, parallel residual, partial rotary'),
    'starcoder2':       ('Starcoder2Config', 'Starcoder2ForCausalLM', dict(**GQA, use_bias=True, sliding_window=16),
                         'biases, LayerNorm, no gating (the seed model family)'),
    'opt':              ('OPTConfig', 'OPTForCausalLM', dict(ffn_dim=64, word_embed_proj_dim=32), 'learned positions, ReLU MLP, no symmetry maps written for it'),
}

# the Gemma 3 checkpoints of 4B and up: an image-text model (model_type gemma3) whose language model is a Gemma 3 text
# model under model.language_model (transformers 5); used where a test covers it (symmetries), not in FAMILIES' reports
GEMMA3_IMAGE_TEXT = dict(text_config=dict(COMMON, **GQA, head_dim=8, sliding_window=16, query_pre_attn_scalar=8, final_logit_softcapping=30.0),
                         vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14),
                         mm_tokens_per_image=4)

def image_text_config(): # the tiny Gemma 3 image-text config
    "A tiny `Gemma3Config` (text and vision towers) with eager attention."
    cfg = tf.Gemma3Config(**GEMMA3_IMAGE_TEXT)
    cfg._attn_implementation = 'eager'
    return cfg

def config(family): # a key of FAMILIES
    "A tiny config of `family` with eager attention."
    cfg_cls, _, over, _ = FAMILIES[family]
    kw = {**COMMON, **over}
    if family == 'opt': kw.pop('intermediate_size')
    if family == 'gpt2': kw = {k: v for k, v in kw.items() if k not in ('hidden_size', 'num_hidden_layers', 'num_attention_heads', 'max_position_embeddings', 'intermediate_size')}
    cfg = getattr(tf, cfg_cls)(**kw)
    cfg._attn_implementation = 'eager'
    return cfg

def model(family, seed:int=0):
    "A random tiny model of `family` in eval mode (the same for the same seed)."
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return getattr(tf, FAMILIES[family][1])(config(family)).eval()

def plain_finetune(m, tok, texts, steps:int=6, lr:float=3e-3, seed:int=0):
    "A copy of `m` after a plain AdamW loop on the model's own loss (every parameter moves, norms and embeddings too)."
    import copy
    ft = copy.deepcopy(m).train()
    opt = torch.optim.AdamW(ft.parameters(), lr=lr)
    texts = random.Random(seed).sample(list(texts), len(texts))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step in range(steps):
            batch = tok(texts[step * 4:(step + 1) * 4], return_tensors='pt', padding=True)
            labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
            ft(**batch, labels=labels).loss.backward(); opt.step(); opt.zero_grad()
    return ft.eval()

def saved(m, tok, folder):
    "`m` and `tok` saved with `save_pretrained` into `folder` (returned)."
    m.save_pretrained(folder); tok.save_pretrained(folder)
    return folder
