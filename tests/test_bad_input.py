"DESIGN.md §9: each bad input gets one clear error, before expensive work, with a message that says what is wrong."
import json, math
import pytest
import torch
from sitv.core import TaskVector
from sitv.data import get_task, load_jsonl, load_text_file, make_split
from sitv.evaluate import evaluate, score
from sitv.grid import alpha_grid
from sitv.model import load_model, random_llama, byte_tokenizer
from sitv.results import Results

def test_unknown_task_lists_valid_ones():
    with pytest.raises(ValueError) as e: get_task('sentiment')
    for t in ('sentiment_positive', 'sentiment_negative', 'qa', 'instruction_following'): assert t in str(e.value)
    with pytest.raises(ValueError, match="unknown task 'QA'"): make_split('QA', 'eval', 4)

def test_parameter_name_mismatch_names_it():
    base = {'a.weight': torch.zeros(2), 'b.weight': torch.zeros(2)}
    with pytest.raises(ValueError, match="'b.weight' is in the base model but not in the fine-tuned model"):
        TaskVector.from_state_dicts(base, {'a.weight': torch.zeros(2), 'c.weight': torch.zeros(2)})

def test_parameter_shape_mismatch_names_it():
    a, b = random_llama(seed=0), random_llama(seed=0, vocab_size=400)
    with pytest.raises(ValueError, match=r"'model.embed_tokens.weight' has shape \(384, 128\) in the base model but \(400, 128\)"):
        TaskVector.from_models(a, b)

def test_empty_eval_data():
    with pytest.raises(ValueError, match='empty eval data'): score(random_llama(), [], byte_tokenizer())
    with pytest.raises(ValueError, match="eval set 'general' has no examples"):
        evaluate(random_llama(), {'general': []}, byte_tokenizer())

def test_empty_user_files(tmp_path):
    (tmp_path / 'e.txt').write_text('')
    (tmp_path / 'e.jsonl').write_text('\n')
    with pytest.raises(ValueError, match='contains no text'): load_text_file(tmp_path / 'e.txt')
    with pytest.raises(ValueError, match='contains no examples'): load_jsonl(tmp_path / 'e.jsonl')
    with pytest.raises(FileNotFoundError, match='no such data file'): load_jsonl(tmp_path / 'missing.jsonl')

@pytest.mark.parametrize('lo,hi,step,msg', [(1.0, 1.0, 0.1, r'min \(1.0\) must be below max \(1.0\)'),
                                            (1.5, -0.5, 0.1, r'min \(1.5\) must be below max'),
                                            (0.0, 0.05, 0.05, r'has 2 point\(s\); at least 3'),
                                            (-0.5, 1.5, -0.1, 'step must be positive')])
def test_bad_alpha_range(lo, hi, step, msg):
    with pytest.raises(ValueError, match=msg): alpha_grid(lo, hi, step)

def test_missing_model_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'): load_model(tmp_path / 'no-such-model')
    with pytest.raises(FileNotFoundError, match="model path './checkpoints/x' does not exist"): load_model('./checkpoints/x')

def test_hub_id_offline_says_so():
    with pytest.raises(OSError, match='offline mode'): load_model('sitv-nobody/not-a-model')

def test_unreadable_safetensors(tmp_path):
    (tmp_path / 'bad.safetensors').write_bytes(b'\x00' * 64)
    random_llama().save_pretrained(tmp_path / 'good')
    with pytest.raises(ValueError, match='cannot read .*bad.safetensors as safetensors'):
        TaskVector.from_safetensors(tmp_path / 'good', tmp_path / 'bad.safetensors')
    with pytest.raises(ValueError, match='cannot read'): TaskVector.load(tmp_path / 'bad.safetensors')
    with pytest.raises(ValueError, match='not a sitv task vector'): TaskVector.load(tmp_path / 'good' / 'model.safetensors')

def test_nonfinite_loss_is_recorded_and_flagged(tmp_path):
    m, tok = random_llama(), byte_tokenizer()
    with torch.no_grad(): m.model.norm.weight.fill_(float('nan'))
    r = evaluate(m, {'qa': make_split('qa', 'eval', 4)}, tok)['qa']
    assert math.isnan(r['loss']) and r['n_nonfinite'] == 4
    res = Results(tmp_path / 'r.json', {})
    res.add({'alpha': 1.0}, {'loss': r['loss'], 'n_nonfinite': r['n_nonfinite']})
    doc = json.loads((tmp_path / 'r.json').read_text())   # strict JSON parser: no bare NaN token in the file
    assert doc['points'][0]['metrics'] == {'loss': 'NaN', 'n_nonfinite': 4}
    assert math.isnan(Results.read(tmp_path / 'r.json').points[0]['metrics']['loss'])

def test_model_folder_without_matching_tokenizer_is_refused(tmp_path):
    random_llama(vocab_size=32000).save_pretrained(tmp_path / 'm')
    from sitv.model import load_tokenizer
    with pytest.raises(OSError, match='save one beside the model'): load_tokenizer(tmp_path / 'm')

@pytest.mark.parametrize('family', ['mistral', 'phi3'])
def test_tokenizer_of_a_mistral_or_phi3_folder(tmp_path, family):
    "A byte tokenizer saved beside a Mistral/Phi-3 model loads (AutoTokenizer alone raises); one of another model is refused by name."
    from transformers import MistralConfig, MistralForCausalLM, Phi3Config, Phi3ForCausalLM
    from sitv.model import byte_tokenizer, load_tokenizer
    C, M = dict(mistral=(MistralConfig, MistralForCausalLM), phi3=(Phi3Config, Phi3ForCausalLM))[family]
    for rows in (384, 129):
        M(C(vocab_size=rows, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=64, pad_token_id=0, eos_token_id=1, bos_token_id=None)).save_pretrained(tmp_path / str(rows))
        byte_tokenizer().save_pretrained(tmp_path / str(rows))
    assert len(load_tokenizer(tmp_path / '384')) == 384
    with pytest.raises(ValueError, match="384 entries but the model's embedding has 129 rows"): load_tokenizer(tmp_path / '129')
