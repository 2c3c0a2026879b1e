"""sitv never builds batch × length × vocabulary logits: `score`, g and h, the Fisher quadratic form and the KL to the base
are computed from hidden states with the output layer applied to the scored positions only, in chunks
(`sitv.evaluate.scored_logits`). Here each is set against the computation it replaced — the model's own full logits,
`model(...).logits` — on every model family of `families.py` and on the three kinds of data a user brings: plain text
(every token scored), prompt/completion (the answer only) and chat conversations rendered by a chat template (assistant
turns only). Tolerance: 1e-6 relative, the issue's bar."""
import math
import pytest
import torch
from torch.func import functional_call, jvp

import families
from byo import CHAT
from sitv.core import TaskVector
from sitv.data import batches, make_split
from sitv.datafiles import row_example
from sitv.evaluate import score
from sitv.model import byte_tokenizer

KINDS = ('text', 'prompt_completion', 'chat')
TOPK = 4

@pytest.fixture(scope='module')
def tok():
    t = byte_tokenizer()
    t.chat_template = CHAT
    return t

def examples(kind, tok, n=5):
    "Five texts of one kind, of different lengths (so batches are padded)."
    if kind == 'text': return make_split('general', 'eval', n)
    qa = make_split('qa', 'eval', 2 * n)
    if kind == 'prompt_completion': return qa[:n]
    conv = lambda a, b: [dict(role='user', content=a.prompt), dict(role='assistant', content=a.target),
                         dict(role='user', content=b.prompt), dict(role='assistant', content=b.target + ' Anything else?')]
    return [row_example(dict(messages=conv(qa[i], qa[n + i])), 'messages', f'row {i}', tok, chat=True) for i in range(n)]

def test_the_three_kinds_score_what_they_should(tok):
    "Control of the data itself: text scores every token after the first, prompt/completion and chat fewer."
    for kind in KINDS:
        (_, b), = batches(examples(kind, tok), tok, 8, 256, min_fill=0)
        lab, mask = b['labels'][:, 1:], b['attention_mask'][:, 1:]
        scored, real = int((lab != -100).sum()), int(mask.sum())
        assert scored == real if kind == 'text' else 0 < scored < real / 2, (kind, scored, real)

# --- the reference: today's removed path, written out here from the model's own full logits ---
def full_logits_score(model, xs, tok, batch_size, ref=None):
    "Per text, from `model(...).logits` (the whole vocabulary at every position): NLL, tokens, correct argmaxes, top-k and KL to `ref` (top-k + the rest, as `score` defines it)."
    n = len(xs)
    out = dict(nll=[0.0] * n, n_tokens=[0] * n, n_correct=[0] * n, topk_logp=[None] * n, topk_ids=[None] * n, kl=[0.0] * n, agree=[0] * n, near_ties=[0] * n)
    with torch.no_grad():
        for idx, b in batches(xs, tok, batch_size, 256):
            lg = model(input_ids=b['input_ids'], attention_mask=b['attention_mask']).logits[:, :-1].float()
            lab = b['labels'][:, 1:]
            for r, i in enumerate(idx):
                keep = lab[r] != -100
                lp = torch.log_softmax(lg[r][keep], -1)
                y = lab[r][keep]
                out['nll'][i] = float(-lp.gather(-1, y[:, None]).double().sum())
                out['n_tokens'][i] = int(keep.sum())
                out['n_correct'][i] = int((lp.argmax(-1) == y).sum())
                top = lp.topk(TOPK + 1, -1).values
                out['near_ties'][i] = int(((top[:, :-1] - top[:, 1:]) < 1e-5).any(-1).sum())   # where an argmax or a top-k id may flip on rounding
                out['topk_logp'][i], out['topk_ids'][i] = lp.topk(TOPK, -1)
                if ref is not None:
                    rl, ri = ref['topk_logp'][i].double(), ref['topk_ids'][i]
                    la = lp.double().gather(-1, ri)
                    rest_ref, rest = (1 - rl.exp().sum(-1)).clamp_min(0), (1 - la.exp().sum(-1)).clamp_min(1e-30)
                    kl = (rl.exp() * (rl - la)).sum(-1) + torch.where(rest_ref > 0, rest_ref * (rest_ref.clamp_min(1e-30).log() - rest.log()), 0.0)
                    out['kl'][i], out['agree'][i] = float(kl.double().sum()), int((lp.argmax(-1) == ri[:, 0]).sum())
    return out

def assert_rel(got, want, rel=1e-6, what=''):
    assert abs(got - want) <= rel * abs(want) + 1e-12, (what, got, want, abs(got - want) / max(abs(want), 1e-300))

CASES = [(f, k) for f in families.FAMILIES for k in KINDS]

@pytest.mark.parametrize('family,kind', CASES)
def test_score_equals_full_logits(family, kind, tok):
    "Per-text NLL, token counts, accuracy, top-k log-probabilities and KL to the base (and top-1 agreement) against the full logits, fp32."
    base, other = families.model(family, 0), families.model(family, 1)
    xs = examples(kind, tok)
    ref_new = score(base, xs, tok, batch_size=3, topk=TOPK)
    new = score(other, xs, tok, batch_size=3, ref=ref_new)
    ref_old = full_logits_score(base, xs, tok, 3)
    old = full_logits_score(other, xs, tok, 3, ref=ref_old)
    for i in range(len(xs)):
        assert new['n_tokens'][i] == old['n_tokens'][i] > 0
        assert_rel(new['nll'][i], old['nll'][i], what=f'nll of text {i}')
        assert abs(new['n_correct'][i] - old['n_correct'][i]) <= old['near_ties'][i], (i, new['n_correct'][i], old['n_correct'][i])
        torch.testing.assert_close(ref_new['topk_logp'][i], ref_old['topk_logp'][i], rtol=1e-6, atol=1e-6)
        if ref_old['near_ties'][i] == 0: assert torch.equal(ref_new['topk_ids'][i], ref_old['topk_ids'][i])
        assert_rel(new['kl'][i], old['kl'][i], what=f'KL of text {i}')
        assert abs(new['agree'][i] - old['agree'][i]) <= old['near_ties'][i] + ref_old['near_ties'][i]

def test_chunk_boundaries_inside_texts_do_not_change_the_scores(tok, monkeypatch):
    "One scored position per output-layer chunk (chunks cut through every text) gives the scores of one chunk per batch."
    import sitv.evaluate as ev
    m, xs = families.model('qwen2-tied'), examples('chat', tok)
    whole = score(m, xs, tok, batch_size=5, topk=TOPK)
    monkeypatch.setattr(ev, 'HEAD_CHUNK_BYTES', 1)
    tiny = score(m, xs, tok, batch_size=5, topk=TOPK)
    for i in range(len(xs)):
        assert_rel(tiny['nll'][i], whole['nll'][i]); assert tiny['n_correct'][i] == whole['n_correct'][i]
        torch.testing.assert_close(tiny['topk_logp'][i], whole['topk_logp'][i], rtol=1e-6, atol=1e-6)

def test_the_comparison_can_fail(tok, monkeypatch):
    "Negative control: a head that forgets Gemma 2's soft-capping is off by far more than the tolerance on the same comparison."
    import sitv.evaluate as ev
    m, xs = families.model('gemma2'), examples('prompt_completion', tok)
    with torch.no_grad(): m.get_output_embeddings().weight.mul_(200.0)     # logits large enough that capping at 30 bites
    old = full_logits_score(m, xs, tok, 3)
    monkeypatch.setattr(ev, 'head_logits', lambda model, h: ev.causal_lm(model).get_output_embeddings()(h))
    new = score(m, xs, tok, batch_size=3)
    assert max(abs(a - b) / abs(b) for a, b in zip(new['nll'], old['nll'])) > 1e-2

# --- derivatives and the Fisher metric, float64, against jvp through the full logits ---
def direction(family):
    "A direction over every parameter: a tenth of the difference of two random models of the family (float64)."
    return 0.1 * TaskVector.from_models(families.model(family, 0).double(), families.model(family, 1).double())

def full_logits_fn(m, tv, ids, mask, lab):
    "t ↦ the full logits at the scored positions of θ + tT (functional_call over every parameter)."
    params = dict(m.named_parameters())
    keep = lab != -100
    def f(t):
        p = {n: v + t * tv[n] if n in tv.deltas else v for n, v in params.items()}
        return functional_call(m, p, (ids,), dict(attention_mask=mask)).logits[:, :-1][keep]
    return f, lab[keep]

def per_text(xs, tok):
    "Each text as its own batch of one (no padding: the float64 models with sliding windows need none)."
    for _, b in batches(xs, tok, 1, 256): yield b['input_ids'], b['attention_mask'], b['labels'][:, 1:]

# every family on answer-only data; the other two kinds on the families whose layers differ most (soft-capping and a scaled
# embedding; Conv1D with LayerNorm): 16 cases of nested JVPs instead of 36, for CI's time
DERIVATIVE_CASES = [(f, 'prompt_completion') for f in families.FAMILIES] + [(f, k) for f in ('gemma2', 'gpt2') for k in ('text', 'chat')]

@pytest.mark.parametrize('family,kind', DERIVATIVE_CASES)
def test_derivatives_fisher_and_kl_equal_full_logits(family, kind, tok):
    "g = ∇L·T, h = TᵀHT, TᵀFT and KL(p_base ‖ p_α) from sitv against nested JVPs / softmaxes of the full logits, float64."
    from sitv.geometry import fisher_quadratic, kl_from_base
    from sitv.second_order import directional_derivatives
    m, tv, xs = families.model(family, 0).double(), direction(family), examples(kind, tok, 3)
    g = h = q = kl = 0.0; n = 0
    for ids, mask, lab in per_text(xs, tok):
        f, y = full_logits_fn(m, tv, ids, mask, lab)
        nll = lambda t: -torch.log_softmax(f(t), -1).gather(-1, y[:, None]).sum()
        t0, one = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
        g += float(jvp(nll, (t0,), (one,))[1])
        h += float(jvp(lambda t: jvp(nll, (t,), (one,))[1], (t0,), (one,))[1])
        with torch.no_grad():
            z, dz = jvp(f, (t0,), (one,))
            p = torch.softmax(z, -1)
            q += float(((p * dz * dz).sum(-1) - (p * dz).sum(-1) ** 2).sum())
            lp0, lpa = torch.log_softmax(z, -1), torch.log_softmax(f(torch.tensor(0.3, dtype=torch.float64)), -1)
            kl += float((lp0.exp() * (lp0 - lpa)).sum())
        n += len(y)
    d = directional_derivatives(m, xs, tok, tv)
    assert d['n_tokens'] == n
    assert_rel(d['g'], g / n, what='g'); assert_rel(d['h'], h / n, what='h')
    assert_rel(fisher_quadratic(m, xs, tok, tv), q / n, what='TᵀFT')
    assert_rel(float(kl_from_base(m, xs, tok, tv, [0.3])[0]), kl / n, what='KL')

# --- batches cut by a memory budget ---
def test_a_memory_budget_cuts_batches_and_not_the_scores(tok, monkeypatch):
    "With a budget of one text's worth (256 tokens), `score` runs more, smaller batches (each within the budget) and gives the same per-text scores; the default does not cut."
    import sitv.evaluate as ev
    m, xs = families.model('mistral'), make_split('general', 'eval', 12)
    seen = []
    real = ev.batches
    def spy(*a, **k):
        for idx, b in real(*a, **k): seen.append(b['input_ids'].numel()); yield idx, b
    monkeypatch.setattr(ev, 'batches', spy)
    whole = score(m, xs, tok, batch_size=12, min_fill=0)
    n_whole, seen[:] = len(seen), []
    budget = 256 * ev.token_bytes(m, 256)
    cut = score(m, xs, tok, batch_size=12, min_fill=0, memory=budget)
    assert n_whole == 1 and len(seen) >= 3, (n_whole, seen)
    assert max(seen) <= ev.token_budget(m, 256, budget) == 256
    for i in range(len(xs)):
        assert_rel(cut['nll'][i], whole['nll'][i]); assert cut['n_tokens'][i] == whole['n_tokens'][i]

def test_the_derivative_passes_are_cut_by_the_budget_too(tok, monkeypatch):
    "`scored_batches` with a model: batches within `token_budget(copies=4)`, and g and h unchanged by the cut."
    import sitv.evaluate as ev
    from sitv.second_order import directional_derivatives, scored_batches
    m, tv, xs = families.model('llama', 0).double(), direction('llama'), make_split('general', 'eval', 24)
    loose, _ = scored_batches(xs, tok, 24, 256, 'cpu', model=m)
    d0 = directional_derivatives(m, xs, tok, tv)
    monkeypatch.setattr(ev, 'ACTIVATION_BYTES', 256 * ev.token_bytes(m, 256, copies=4))
    tight, _ = scored_batches(xs, tok, 24, 256, 'cpu', model=m)
    assert len(tight) > len(loose) and max(i.numel() for i, _, _ in tight) <= 256 < max(i.numel() for i, _, _ in loose)
    d1 = directional_derivatives(m, xs, tok, tv)
    assert_rel(d1['g'], d0['g'], 1e-9); assert_rel(d1['h'], d0['h'], 1e-9)

# --- fine-tuning's loss ---
@pytest.mark.parametrize('family', ['llama', 'qwen2-tied', 'gemma2', 'gpt2', 'opt'])   # untied and tied heads, soft-capping, Conv1D, learned positions
def test_training_loss_equals_the_models_own_loss_and_gradients(family, tok):
    "`training_loss` (hidden states, chunked head under checkpointing) against `model(..., labels=...).loss` and its gradients, prompt/completion batch, fp32."
    from sitv.evaluate import training_loss
    m = families.model(family)
    (_, b), = batches(examples('prompt_completion', tok), tok, 5, 256, min_fill=0)
    m.zero_grad(); (want := m(**b).loss).backward()
    g = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad(); (got := training_loss(m, b['input_ids'], b['attention_mask'], b['labels'])).backward()
    assert_rel(got.item(), want.item())
    assert {n for n, p in m.named_parameters() if p.grad is not None} == set(g)
    worst = max(float((p.grad - g[n]).norm() / g[n].norm()) for n, p in m.named_parameters() if n in g and g[n].norm() > 0)
    assert worst < 1e-5, worst

def test_training_loss_through_a_peft_adapter(tok):
    "A peft LoRA model (as `sitv.lora.lora_finetune` trains it): the same loss and adapter gradients as peft's own forward."
    from peft import LoraConfig, get_peft_model
    from sitv.evaluate import training_loss
    torch.manual_seed(0)
    pm = get_peft_model(families.model('qwen2-tied'), LoraConfig(r=4, lora_alpha=8, target_modules='all-linear', init_lora_weights=False))
    (_, b), = batches(examples('chat', tok), tok, 5, 256, min_fill=0)
    pm.zero_grad(); (want := pm(**b).loss).backward()
    g = {n: p.grad.clone() for n, p in pm.named_parameters() if p.requires_grad}
    pm.zero_grad(); (got := training_loss(pm, b['input_ids'], b['attention_mask'], b['labels'])).backward()
    assert_rel(got.item(), want.item())
    assert g and all(n.count('lora_') for n in g)
    assert max(float((p.grad - g[n]).norm() / g[n].norm()) for n, p in pm.named_parameters() if n in g) < 1e-5
