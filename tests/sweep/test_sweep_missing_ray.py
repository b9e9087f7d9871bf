"""Without Ray: the package imports, and every way in names `pip install 'kdviz[sweep]'`."""
import sys

import pytest

from kdviz.sweep import INSTALL_COMMAND, SweepSpec, SweepUnavailable, ray_available, require_ray, start_sweep
from kdviz.sweep.cli import main


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when it is not installed


def test_require_ray_names_the_install_command(no_ray, tmp_path):
    assert INSTALL_COMMAND == "pip install 'kdviz[sweep]'" and not ray_available()
    with pytest.raises(SweepUnavailable, match=r"pip install 'kdviz\[sweep\]'"):
        require_ray()
    with pytest.raises(SweepUnavailable, match="Ray Tune"):
        start_sweep(SweepSpec(grid={"T": [1.0]}), runs_root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_cli_says_it_in_one_line(no_ray, capsys, tmp_path):
    assert main(["sweep", "--grid", "T=1,2", "--runs-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kdviz: error: SweepUnavailable") and "pip install 'kdviz[sweep]'" in err


def test_the_widget_shows_it_with_start_disabled(no_ray):
    from kdviz.widgets.sweep import SweepMonitor

    monitor = SweepMonitor(SweepSpec(grid={"T": [1.0, 2.0]}))
    assert "pip install &#x27;kdviz[sweep]&#x27;" in monitor.caption.value and monitor.start_button.disabled
