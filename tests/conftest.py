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


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (``scripts/test.sh``: two workers, ``--dist loadfile``) a test file runs on
    one worker, so its module fixtures train once, and the browser tests all run on one worker, one
    after another: two Chromium + Streamlit + live-training tests at once on two cores made their live
    charts miss their deadlines. (xdist's own ``loadgroup`` cannot do this under pytest 9: it renames
    ``item._nodeid``, which pytest 9 no longer reads.) Other ``--dist`` modes are left to xdist."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndOneBrowserWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/browser" if nodeid.startswith("tests/browser/") else nodeid.split("::", 1)[0]

    return FilesAndOneBrowserWorker(config, log)


def pytest_collection_modifyitems(config, items):
    """Browser tests first (a stable sort): the longest work unit starts at once instead of ending last."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/browser/"))
