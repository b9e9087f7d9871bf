"""``FamilyMonitor`` without a browser: it follows a live "Which distillation?" experiment (the scratch
student, KD and a member this test registers with a panel of its own) and reopens it from its folders.

Expected values come from the run folders (``metrics.jsonl`` lines read here with json), never from the
widget code under test.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import plotly.graph_objects as go
import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods import get_method  # noqa: E402
from kdviz.present import Experiment  # noqa: E402
from kdviz.present.family import FAMILY, FamilyMember, Knob, PanelFigure, family_configs, register_member  # noqa: E402
from kdviz.present.family_story import family_base_config  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines  # noqa: E402

MAX_CONCURRENT = 3  # every run of the experiment at once (the manager fixture)
KD = get_method("kd")
SOFT = replace(KD, name="soft_widget_test", label="soft-widget student")


def soft_panel(view) -> list[PanelFigure]:
    if not view.steps:
        return []
    steps = [r["step"] for r in view.steps]
    return [PanelFigure(go.Figure(go.Scatter(x=steps, y=[r["loss"] for r in view.steps])), f"loss up to step {steps[-1]}")]


@pytest.fixture(scope="module", autouse=True)
def soft_member():
    member = register_member(FamilyMember(
        spec=SOFT, knobs=(Knob("hot", "temperature (test)", 1.0, 20.0, 2.0, 1.0),), panel=soft_panel, order=60,
        configure=lambda base, v: replace(base, method=KD.loss, T=float(v["hot"]))))
    yield member
    FAMILY._items.pop(member.name, None)


@pytest.fixture(scope="module")
def experiment(manager, tmp_path_factory):
    runs = tmp_path_factory.mktemp("family-widget-runs")
    teacher = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32]}, max_steps=80,
                                snapshot_every=0, runs_root=str(runs), name="teacher"), manager)
    assert teacher.wait(120).state == "finished"
    base = family_base_config(teacher=str(teacher.path), dataset="digits", train_size=1347, runs_root=str(runs),
                              epochs=3, pace_s=5.0)
    exp = Experiment(manager)
    for name, config in family_configs(base, {KD.name: {"T": 5.0}, SOFT.name: {"hot": 9.0}}).items():
        exp.start(name, config)
    return exp


def accuracy_lengths(monitor) -> tuple[int, ...]:
    return tuple(len(t.y or ()) for t in monitor.accuracy_chart.widget.data)


def test_monitor_follows_every_run_live_and_ends_with_the_table_and_panels(experiment):
    from kdviz.widgets.family import FamilyMonitor

    monitor = FamilyMonitor(experiment, interval_ms=50)
    seen = set()

    def collect() -> bool:
        seen.add(accuracy_lengths(monitor))
        return experiment.done and not monitor.poller.running

    wait_for(collect, 90, "every run to end and the monitor to stop polling", pause=0.05)
    assert len(seen - {()}) >= 2, f"the accuracy chart never changed while the runs trained: {seen}"
    data = {t.name: list(t.y) for t in monitor.accuracy_chart.widget.data}
    assert set(data) == {"scratch student", KD.label, SOFT.label}
    paths = {name: Path(job.path) for name, job in experiment.jobs.items()}
    finals = {}
    for name, path in paths.items():
        evals = metric_lines(path, "eval")
        assert data[name] == pytest.approx([100 * r["test_acc"] for r in evals])
        finals[name] = evals[-1]["test_acc"]
    gain = 100 * (finals[SOFT.label] - finals["scratch student"])
    assert f"{gain:+.1f} points" in monitor.table.value and f"{100 * finals[KD.label]:.1f}%" in monitor.table.value
    assert "ends" in monitor.caption.value or "level at the top" in monitor.caption.value
    last_step = metric_lines(paths[SOFT.label], "step")[-1]["step"]
    assert monitor.panel_captions[SOFT.label][0].value == f"loss up to step {last_step}"
    assert list(monitor.panel_charts[SOFT.label][0].widget.data[0].x)[-1] == last_step
    assert KD.label not in monitor.panel_charts or all(c.widget.data for c in monitor.panel_charts[KD.label])
    assert monitor.stop_button.layout.display == "none" and not monitor.errors.outputs
    monitor.close()


def test_monitor_reopens_the_runs_from_their_folders(experiment):
    from kdviz.widgets.family import FamilyMonitor

    experiment.wait(90)
    folders = [str(job.path) for job in experiment.jobs.values()]
    monitor = FamilyMonitor(folders, autostart=False)
    scratch = next(f for f in folders if f.endswith("scratch-student"))
    kd = next(f for f in folders if f.endswith("kd-student"))
    gain = 100 * (metric_lines(Path(kd), "eval")[-1]["test_acc"] - metric_lines(Path(scratch), "eval")[-1]["test_acc"])
    assert f"{gain:+.1f} points" in monitor.table.value and "(the baseline)" in monitor.table.value
    assert len(monitor.accuracy_chart.widget.data) == 3 and monitor.stop_button.disabled
    monitor.close()
