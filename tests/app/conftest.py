"""AppTest fixtures for the Streamlit pages: each test module gets its own runs folder and teacher."""
from __future__ import annotations

import pytest

from _support.apptest import lab_environment


@pytest.fixture(scope="module", autouse=True)
def lab_env(request, tmp_path_factory):
    """Run folders in a temp dir for this module, a teacher/baseline of the module's ``TEACHER_EPOCHS``
    epochs (3 when it sets none); every job stopped at the end."""
    epochs = getattr(request.module, "TEACHER_EPOCHS", 3)
    with lab_environment(tmp_path_factory.mktemp(f"{request.path.stem}-runs"), epochs) as root:
        yield root


@pytest.fixture(scope="module")
def baseline(lab_env):
    """The pruning/quantization pages' first baseline, trained in this module's runs folder."""
    from kdviz.app.pruning_view import BASELINES, baseline_job
    from kdviz.app.sidebar import LabSettings

    job = baseline_job(LabSettings(), next(iter(BASELINES)))
    assert job.wait(120).state == "finished", job.status()
    return job
