"""Test-wide setup: idle OpenMP threads sleep (set before torch is imported anywhere), and the
fixtures several test folders share."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

from _support.jobs import job_manager  # noqa: E402


@pytest.fixture(scope="module")
def manager(request):
    """One ``JobManager`` per test module (``MAX_CONCURRENT`` jobs at once, 2 unless the module sets it;
    one CPU thread per job); every job stopped at the end."""
    with job_manager(getattr(request.module, "MAX_CONCURRENT", 2)) as m:
        yield m


@pytest.fixture(scope="module")
def digits():
    """The digits dataset (sklearn's 8x8 images), loaded once per module."""
    from kdviz.data import load_dataset

    return load_dataset("digits")


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread (and far faster on a shared, busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
