"Result files: atomic writes, resume after interruption, refusal to mix configurations."
import json, os
import pytest
from sitv.results import Results, run_points, write_atomic

KEYS = [{'alpha': round(0.25 * k, 12)} for k in range(-2, 7)]
def compute(k): return {'metrics': {'loss': (k['alpha'] - 1) ** 2}, 'per_text': {'nll': [k['alpha'], 2.0], 'n_tokens': [3, 4]}}
def strip(r): return [{k: v for k, v in p.items() if k != 'seconds'} for p in r.points]

@pytest.mark.parametrize('k', [0, 1, 4, len(KEYS) - 1])
def test_interrupted_after_k_points_resumes_at_k_plus_1(tmp_path, k):
    calls = []
    def dies_after_k(key):
        if len(calls) == k: raise KeyboardInterrupt('killed')
        calls.append(key); return compute(key)
    with pytest.raises(KeyboardInterrupt): run_points(Results(tmp_path / 'r.json', {'task': 'qa'}), KEYS, dies_after_k, progress=False)
    assert len(Results.read(tmp_path / 'r.json')) == k if k else not (tmp_path / 'r.json').exists()
    resumed = []
    run_points(Results(tmp_path / 'r.json', {'task': 'qa'}), KEYS, lambda key: (resumed.append(key), compute(key))[1], progress=False)
    assert resumed == KEYS[k:]                      # starts at point k+1, computes nothing twice
    run_points(Results(tmp_path / 'full.json', {'task': 'qa'}), KEYS, compute, progress=False)
    assert strip(Results.read(tmp_path / 'r.json')) == strip(Results.read(tmp_path / 'full.json'))

def test_killed_mid_write_leaves_previous_complete_file(tmp_path, monkeypatch):
    r = Results(tmp_path / 'r.json', {'task': 'qa'})
    r.add(KEYS[0], compute(KEYS[0])['metrics'])
    before = (tmp_path / 'r.json').read_text()
    def crash(fd): raise OSError('disk full')
    monkeypatch.setattr(os, 'fsync', crash)         # the write dies after the data went to the temp file
    with pytest.raises(OSError, match='disk full'): r.add(KEYS[1], compute(KEYS[1])['metrics'])
    monkeypatch.undo()
    assert len(r) == 1 and not r.done(KEYS[1])      # memory agrees with the file
    assert (tmp_path / 'r.json').read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ['r.json']   # temp file cleaned up
    # a stray temp file from a hard kill does not confuse a reader
    (tmp_path / '.r.json.abc.tmp').write_text('{"partial')
    assert len(Results(tmp_path / 'r.json', {'task': 'qa'})) == 1

def test_truncated_file_is_a_clear_error(tmp_path):
    (tmp_path / 'r.json').write_text('{"schema": "sitv.results", "version": 1, "poi')
    with pytest.raises(ValueError, match='not a valid sitv result file: not JSON'): Results(tmp_path / 'r.json', {})

def test_refuses_to_resume_with_other_config(tmp_path):
    Results(tmp_path / 'r.json', {'task': 'qa', 'step': 0.05}).add(KEYS[0], {'loss': 1.0})
    with pytest.raises(ValueError, match="'config.step' is 0.05 in the file but 0.02 now"):
        Results(tmp_path / 'r.json', {'task': 'qa', 'step': 0.02})
    with pytest.raises(ValueError, match='already in'):
        Results(tmp_path / 'r.json', {'task': 'qa', 'step': 0.05}).add(KEYS[0], {'loss': 1.0})

def test_schema_validation_names_problem(tmp_path):
    doc = {'schema': 'sitv.results', 'version': 1, 'kind': 'sweep', 'config': {}, 'created': 'x', 'updated': 'x',
           'points': [{'key': {'alpha': 0}, 'metrics': {}}, {'key': {'alpha': 0}, 'metrics': {}}]}
    (tmp_path / 'r.json').write_text(json.dumps(doc))
    with pytest.raises(ValueError, match='point 1 repeats key'): Results.read(tmp_path / 'r.json')
    doc['version'] = 99; (tmp_path / 'r.json').write_text(json.dumps(doc))
    with pytest.raises(ValueError, match='version 99'): Results.read(tmp_path / 'r.json')
