"""The layers stay layered: the read side (evaluation, explanations, the dashboard) never
imports the training stack, the library never imports Streamlit or the app, and the vocabulary
and variants tables are torch-free. Each check imports a module in a fresh interpreter and
looks at ``sys.modules``."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.hostile import REPO

pytestmark = pytest.mark.slow  # a fresh interpreter per check

TRAINING_STACK = ("magnet.trainer", "magnet.pipeline", "magnet.tune", "magnet.ablation")


def loaded_after_import(module: str) -> set[str]:
    """Names in ``sys.modules`` after ``import module`` in a fresh interpreter."""
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["magnet.explain", "magnet.evaluate", "magnet.restore", "magnet.inputs",
                                    "app.state", "app.charts", "app.analysis"])
def test_the_read_side_never_imports_the_training_stack(module: str) -> None:
    loaded = loaded_after_import(module)
    assert not loaded & set(TRAINING_STACK), sorted(loaded & set(TRAINING_STACK))


@pytest.mark.parametrize("module", ["magnet.explain", "magnet.pipeline", "magnet.cli", "magnet.tune"])
def test_the_library_never_imports_streamlit_or_the_app(module: str) -> None:
    loaded = loaded_after_import(module)
    assert "streamlit" not in loaded and not any(m == "app" or m.startswith("app.") for m in loaded)


@pytest.mark.parametrize("module", ["magnet.vocab", "magnet.variants", "magnet.fileio"])
def test_the_vocabulary_is_torch_free(module: str) -> None:
    assert "torch" not in loaded_after_import(module)
