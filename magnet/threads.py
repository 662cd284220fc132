"""Sharing the CPU between torch's OpenMP threads and numba's parallel code (UMAP, the catalogue
scorer's Top-K kernel)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_thread_budget() -> Iterator[int]:
    """Run numba-parallel code (UMAP) within torch's thread count, and give torch its count back.

    numba's OpenMP threading layer shares libgomp with torch and sets the process-wide OpenMP
    thread count to every core when it starts, so after a UMAP projection torch silently ran
    with all cores whatever the user had set (OMP_NUM_THREADS=1 became 2 here): oversubscribed
    when several runs share a machine, which made every ablation variant after the first up to
    8× slower. Yields the count kept."""
    threads = torch.get_num_threads()
    try:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover - numba comes with umap-learn
        pass
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)
