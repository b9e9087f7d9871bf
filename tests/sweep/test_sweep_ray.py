"""A real 4-trial sweep on a local Ray started here (one Ray session for the module), through the CLI:
each trial is an ordinary run folder with the trial's config, ASHA stops the trials of a grid built for
it (a learning rate too small to learn, after two that learn), and the heatmap's cells are the
accuracies the trials reported, read back from their run folders."""
import contextlib
import io
import json
import statistics

import numpy as np
import pytest

from _support.ray_dirs import short_ray_dir

pytest.importorskip("ray")

from kdviz.engine.run_folder import read_config  # noqa: E402
from kdviz.engine.run_reader import read_status  # noqa: E402
from kdviz.present.sweep import best_trials, heatmap_cells, heatmap_figure, sweep_caption  # noqa: E402
from kdviz.sweep import connect_ray, load_sweep, saved_sweeps, shutdown_ray  # noqa: E402
from kdviz.sweep.cli import main  # noqa: E402
from kdviz.sweep.trainable import SCHEDULER_REASON  # noqa: E402

pytestmark = pytest.mark.slow
GOOD_LR, BAD_LR, MAX_STEPS = 0.5, 1e-5, 30


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, request):
    """``kdviz sweep`` over lr (good first, then one too small to learn) x 2 seeds, ASHA from the 2nd evaluation."""
    runs = tmp_path_factory.mktemp("runs")
    connect_ray(num_cpus=2, temp_dir=str(short_ray_dir(request)))  # Ray's socket paths must stay short
    out = io.StringIO()
    argv = ["sweep", "--set", "model=mlp", "--set", 'model_options={"hidden": [12]}', "--set", "train_subset=200",
            "--set", f"max_steps={MAX_STEPS}", "--set", "eval_every=5", "--set", "batch_size=16", "--set", "T=3",
            "--set", "alpha=0.7", "--set", "snapshot_every=0", "--set", "device=cpu", "--set", "epochs=50",
            "--grid", f"lr={GOOD_LR},{BAD_LR}", "--seeds", "2", "--trials-at-once", "2",
            "--asha", "--grace-period", "2", "--reduction-factor", "2", "--runs-root", str(runs), "--name", "lrsweep"]
    try:
        with contextlib.redirect_stdout(out):
            code = main(argv)
        found = saved_sweeps(runs)
        yield code, out.getvalue(), load_sweep(found[0][0]), runs
    finally:
        shutdown_ray()


def test_the_cli_ran_every_trial_and_says_where_the_record_is(sweep):
    code, out, record, runs = sweep
    assert code == 0, out
    assert record.state == "finished" and len(record.trials) == 4
    assert f"record: {record.path / 'sweep.json'}" in out and "stopped by ASHA" in out
    assert json.loads((record.path / "sweep.json").read_text())["format"] == 1


def test_each_trial_is_a_run_folder_with_its_own_config(sweep):
    _, _, record, runs = sweep
    for trial in record.trials.values():
        config = read_config(trial.run)
        assert trial.run.startswith(str(runs)) and config.to_dict() == trial.config
        assert (config.lr, config.seed) == (trial.values["lr"], trial.values["seed"])
        assert (config.T, config.alpha, config.model_options, config.train_subset) == (3.0, 0.7, {"hidden": [12]}, 200)
        assert read_status(trial.run)["total_steps"] == MAX_STEPS


def test_asha_stops_the_trials_that_do_not_learn_and_their_folders_say_so(sweep):
    _, _, record, _ = sweep
    bad = [t for t in record.trials.values() if t.values["lr"] == BAD_LR]
    assert all(t.stopped_by_scheduler and t.state == "stopped" for t in bad)
    finished = [t for t in record.trials.values() if t.state == "finished"]
    assert finished and all(t.values["lr"] == GOOD_LR for t in finished)
    for trial in record.trials.values():
        status = read_status(trial.run)
        assert status["state"] == trial.state
        if trial.state == "stopped":
            assert SCHEDULER_REASON in status["message"] and status["step"] < MAX_STEPS
        else:
            assert status["step"] == MAX_STEPS and trial.test_acc == pytest.approx(status["test_acc"])
    assert f"{len(bad) + sum(t.stopped_by_scheduler and t.values['lr'] == GOOD_LR for t in record.trials.values())} early by ASHA" in sweep_caption(record.to_dict())


def _reported_in_folder(trial) -> float:
    """The test accuracy the trial's run folder recorded at the step the sweep last saw."""
    rows = [json.loads(line) for line in open(f"{trial.run}/metrics.jsonl")]
    return next(r["test_acc"] for r in rows if r.get("kind") == "eval" and r["step"] == trial.last["step"])


def test_heatmap_cells_are_the_trials_accuracies_from_their_run_folders(sweep):
    _, _, record, _ = sweep
    data = record.to_dict()
    cells = heatmap_cells(data, "lr", "seed")
    assert cells["x_values"] == [BAD_LR, GOOD_LR] and cells["y_values"] == [0, 1]
    for i, seed in enumerate(cells["y_values"]):
        for j, lr in enumerate(cells["x_values"]):
            trial = next(t for t in record.trials.values() if t.values == {"lr": lr, "seed": seed})
            assert cells["mean"][i, j] == pytest.approx(_reported_in_folder(trial)) and cells["count"][i, j] == 1
    pooled = heatmap_cells(data, "lr", None)
    good = [_reported_in_folder(t) for t in record.trials.values() if t.values["lr"] == GOOD_LR]
    assert pooled["mean"][0, 1] == pytest.approx(statistics.fmean(good))
    assert pooled["std"][0, 1] == pytest.approx(statistics.stdev(good)) and pooled["count"][0, 1] == 2
    figure = heatmap_figure(data, "lr", None)
    assert list(figure.data[0].z[0]) == pytest.approx(list(100 * pooled["mean"][0]))
    assert best_trials(data, 1)[0]["test_acc"] == pytest.approx(max(good))


def test_the_widget_reopens_the_sweep_with_the_same_cells(sweep):
    from kdviz.widgets.sweep import SweepMonitor

    _, _, record, _ = sweep
    monitor = SweepMonitor(record.path)
    monitor.y_pick.value = "seed"
    cells = heatmap_cells(record.to_dict(), "lr", "seed")
    assert np.asarray(monitor.heatmap.widget.data[0].z, dtype=float) == pytest.approx(100 * cells["mean"])
    assert "4 trials" in monitor.caption.value and monitor.done
