"""What the reproduction tests share: where MNIST is, and a quick reproduction run on its own job manager."""
from __future__ import annotations

import os
from pathlib import Path

MNIST = Path(os.environ.get("KDVIZ_DATA") or "/work/shared/data/mnist")
HAS_MNIST = (MNIST / "train-images-idx3-ubyte.gz").is_file() or (MNIST / "train-images-idx3-ubyte").is_file()


def run_quick(name: str, seeds: list[int], runs_root: Path):
    """``run_reproduction(name, seeds, quick=True)`` on MNIST with a two-job manager (2 threads each),
    every job stopped afterwards; the result."""
    from kdviz.engine import JobManager
    from kdviz.reproduce import run_reproduction

    manager = JobManager(max_concurrent=2, cpu_threads=2)
    try:
        return run_reproduction(name, seeds=seeds, quick=True, runs_root=runs_root, data_root=MNIST, manager=manager)
    finally:
        manager.stop_all(wait=True, timeout=30)
