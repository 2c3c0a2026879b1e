"Null directions have exactly ‖T‖ and are what the sweep moves along."
import math, tempfile
from pathlib import Path
import pytest
import torch
from sitv.core import TaskVector
from sitv.data import make_split
from sitv.directions import random_direction, filter_normalized_direction
from sitv.model import random_llama, byte_tokenizer
from sitv.results import Results
from sitv.sweep import sweep

@pytest.fixture(scope='module')
def pair():
    b, f = random_llama(seed=0), random_llama(seed=1)
    return b, 0.3 * TaskVector.from_models(b, f)

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_null_directions_have_exactly_the_norm_of_T(pair, seed):
    b, T = pair
    for D in (random_direction(T, seed), filter_normalized_direction(T, dict(b.named_parameters()), seed)):
        assert D.norm() == pytest.approx(T.norm(), rel=1e-6)          # fp32 storage of a float64-rescaled vector
        assert D.names == T.names and D.base_fingerprint == T.base_fingerprint
        assert abs(D.cosine(T)) < 0.05                                  # a random direction, not T

def test_sweep_moves_exactly_the_null_norm(pair, tmp_path):
    b, T = pair
    D = filter_normalized_direction(T, dict(b.named_parameters()), 3)
    r = Results(tmp_path / 'r.json', {})
    sweep(b, D, {'qa': make_split('qa', 'eval', 4)}, byte_tokenizer(), [0.0, 1.0], r, progress=False)
    assert r.get({'alpha': 1.0})['metrics']['distance_ratio'] == pytest.approx(1.0, abs=1e-6)

def test_filter_normalised_rows_follow_the_base(pair):
    b, T = pair
    D = filter_normalized_direction(T, dict(b.named_parameters()), 0)
    n = 'model.layers.1.self_attn.q_proj.weight'
    ratio = D[n].double().norm(dim=1) / b.get_parameter(n).detach().double().norm(dim=1)
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-5)
    assert torch.count_nonzero(D['model.layers.1.input_layernorm.weight']) == 0
    R = random_direction(T, 0)                                           # the Gaussian one is not row-matched
    ratio_r = R[n].double().norm(dim=1) / b.get_parameter(n).detach().double().norm(dim=1)
    assert not torch.allclose(ratio_r, ratio_r[0].expand_as(ratio_r), rtol=1e-2)
