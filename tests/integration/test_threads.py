"""Sharing the CPU between torch and numba (magnet/threads.py): a UMAP projection and the catalogue
kernel must leave torch's thread count as the user set it."""
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a UMAP-sized numba compilation in a subprocess

ROOT = Path(__file__).resolve().parents[2]

# What UMAP does inside fit: start numba's parallel layer (numba.set_num_threads, a prange
# loop). Starting it resets the OpenMP thread count that libgomp shares with torch.
SCRIPT = """
import sys
import numpy as np, numba, torch
from magnet.threads import torch_thread_budget

@numba.njit(parallel=True, cache=False)
def total(x):
    s = 0.0
    for i in numba.prange(x.shape[0]):
        s += x[i]
    return s

def umap_like():
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    total(np.ones(1000))

before = torch.get_num_threads()
if sys.argv[1] == "guarded":
    with torch_thread_budget():
        umap_like()
else:
    umap_like()
print(before, torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
"""


def run(mode: str) -> list[int]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [int(v) for v in proc.stdout.split()]


def test_numba_parallel_code_keeps_torch_thread_count():
    before, after, numba_threads = run("unguarded")
    if numba_threads < 2:
        pytest.skip("one core: numba's layer cannot raise the thread count here")
    assert (before, after) == (1, numba_threads)  # the hazard: OMP_NUM_THREADS=1 silently lost
    assert run("guarded")[:2] == [1, 1]


KERNEL_SCRIPT = """
import torch
torch.set_num_threads(1)
torch.randn(1000, 1000).sum()  # torch's OpenMP pool (ATen's parallel_for) exists, as in a training run
from magnet.model.catalogue import CueScorer
g = torch.Generator().manual_seed(0)
items, weights = torch.randn(300, 12, generator=g), torch.randn(9, 12, generator=g)
scorer = CueScorer(items, weights, 0.5, 2, torch.randn(300, 6, generator=g), (3, 3), torch.zeros(2),
                   torch.rand(9, 3, generator=g), torch.zeros(9))
scorer.scores(torch.randn(100, 12, generator=g), torch.randn(100, 6, generator=g))  # >= 64 users: the kernel
print(torch.get_num_threads())
"""


def test_the_catalogue_kernel_leaves_torch_thread_count_as_set():
    """The Top-2 kernel starts numba's OpenMP pool, which resets the process's OpenMP thread count;
    a run asked to use one thread must keep one (two runs side by side would otherwise each
    spin a second thread)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KERNEL_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "1"
