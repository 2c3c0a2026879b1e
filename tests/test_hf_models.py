"Any Hugging Face causal LM from a local folder: a GPT-2 with its own BPE tokenizer (no pad token) through the whole report."
import json, re, subprocess, sys
from pathlib import Path
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
import torch
from sitv.data import make_split
from sitv.finetune import finetune
from sitv.model import load_tokenizer, save_model

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture(scope='module')
def gpt2_folder(tmp_path_factory):
    bpe = Tokenizer(models.BPE(unk_token='<unk>'))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()      # without it decode() returns 'Ġ'-marked pieces, which sitv's tokenizer check refuses
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=['<unk>', '</s>'], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([e.text for e in make_split('general', 'train', 300) + make_split('qa', 'train', 100)], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token='</s>', unk_token='<unk>')
    assert tok.pad_token_id is None                          # like GPT-2's and Llama's tokenizers
    cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=len(tok), n_positions=128, tie_word_embeddings=True,
                     eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    return save_model(GPT2LMHeadModel(cfg), tok, tmp_path_factory.mktemp('hf') / 'gpt2-bpe', {'note': 'test model'})

def test_finetune_local_gpt2_with_bpe_tokenizer(gpt2_folder):
    tok = load_tokenizer(gpt2_folder)
    assert len(tok) == 320
    model, info = finetune(gpt2_folder, 'qa', steps=5, batch_size=4, n_train=16, cache=False, progress=False)
    assert len(info['history']) == 5 and info['history'][-1]['loss'] < info['history'][0]['loss']

def test_sweep_report_on_local_gpt2(gpt2_folder, tmp_path):
    out = tmp_path / 'out.ipynb'
    cmd = [sys.executable, '-m', 'papermill', str(ROOT / 'nbs' / 'sweep.ipynb'), str(out), '--cwd', str(tmp_path), '-k', 'python3',
           '-p', 'model', str(gpt2_folder), '-p', 'task', 'qa', '-p', 'ft_steps', '10', '-p', 'alpha_step', '0.5',
           '-p', 'n_general_eval', '16', '-p', 'n_task_eval', '16', '-p', 'n_train', '64', '-p', 'out_dir', str(tmp_path / 'r')]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    text = out.read_text()
    assert 'bit-equal: True' in text and 'gpt2-bpe' in text
    main_file = [p for p in (tmp_path / 'r').glob('sweep-qa-*.json') if re.fullmatch(r'sweep-qa-[0-9a-f]{10}\.json', p.name)]
    assert len(main_file) == 1, sorted(p.name for p in (tmp_path / 'r').iterdir())   # not the null, seed or summary files beside it
    doc = json.loads(main_file[0].read_text())
    assert len(doc['points']) == 5 and doc['config']['model'] == str(gpt2_folder)
