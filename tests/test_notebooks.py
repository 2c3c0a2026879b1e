"Run every nbdev notebook once as a pytest test (nbdev's own runner, so `#| slow` cells are skipped as in nbdev-test)."
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as _run_nb   # aliased: a bare `test_nb` would be collected by pytest

_cfg = get_config(Path(__file__).parent)
# report notebooks are executed once each, by papermill with parameters, in test_reports.py
REPORTS = {'sweep.ipynb', 'composition.ipynb', 'lora.ipynb', 'tsv.ipynb', 'symmetries.ipynb', 'geometry.ipynb', 'cross_task.ipynb'}
_NBS = sorted(p for p in Path(_cfg.nbs_path).glob('*.ipynb') if not p.name.startswith(('_', '.')) and p.name not in REPORTS)

def test_found_notebooks(): assert len(_NBS) >= 6, _NBS

@pytest.mark.parametrize('nb', _NBS, ids=[p.name for p in _NBS])
def test_notebook(nb):
    flags = _cfg.tst_flags.split() if isinstance(_cfg.tst_flags, str) else list(_cfg.tst_flags)
    ok, secs = _run_nb(nb, skip_flags=flags, basepath=_cfg.config_path, cell_timeout=600)
    assert ok, f'{nb.name} failed (traceback above on stderr)'
