"""SweepMonitor reopens a planned sweep folder (no Ray needed): the heatmap shows every planned cell,
empty until trials report, and the axes follow the swept fields."""
import numpy as np

from kdviz.sweep import SweepSpec, plan_trials
from kdviz.sweep.record import SweepRecord, new_sweep_folder
from kdviz.widgets.sweep import SweepMonitor


def test_a_reopened_planned_sweep_draws_its_grid(tmp_path):
    spec = SweepSpec(base={"train_subset": 40}, grid={"T": [1.0, 4.0, 8.0], "alpha": [0.5, 0.9]}, seeds=[0, 1])
    folder = new_sweep_folder(tmp_path, "w")
    SweepRecord.planned(folder.name, spec.to_dict(), plan_trials(spec, str(tmp_path)), path=folder).save()
    monitor = SweepMonitor(folder)
    assert (monitor.x_pick.value, monitor.y_pick.value) == ("T", "alpha")
    heat = monitor.heatmap.widget.data[0]
    assert list(heat.x) == ["1", "4", "8"] and list(heat.y) == ["0.5", "0.9"]
    assert np.isnan(np.asarray(heat.z, dtype=float)).all()
    assert "12 trials: 12 pending" in monitor.caption.value
    monitor.y_pick.value = "seed"
    assert list(monitor.heatmap.widget.data[0].y) == ["0", "1"]
    assert monitor.done and monitor.start_button.disabled
