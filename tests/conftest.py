"Shared test setup: never touch the network, and start every test from the same global torch state."
import os
for k, v in dict(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', HF_HUB_DISABLE_PROGRESS_BARS='1',
                 TOKENIZERS_PARALLELISM='false').items():
    os.environ.setdefault(k, v)
# one fine-tuning cache per checkout, shared by every test, notebook and papermill run, so nothing trains twice
os.environ.setdefault('SITV_CACHE', str(__import__('pathlib').Path(__file__).resolve().parent.parent / '.sitv-cache'))

import random
import numpy as np
import pytest
import torch

_THREADS = torch.get_num_threads()

def reset_global_state():
    "Undo what a notebook or test may have changed in process-wide state."
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(_THREADS)
    torch.set_grad_enabled(True)
    torch.manual_seed(0); random.seed(0); np.random.seed(0)
    try:
        import matplotlib.pyplot as plt
        plt.close('all')
    except ImportError: pass

@pytest.fixture(autouse=True)
def _clean_state():
    reset_global_state()
    yield
    reset_global_state()
