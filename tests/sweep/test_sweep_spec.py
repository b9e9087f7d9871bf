"""Planning a sweep (no Ray): values typed as their fields, every trial's config checked up front."""
import pytest

from kdviz.sweep import AshaOptions, SweepSpec, parse_assignment, parse_setting, plan_trials
from kdviz.sweep.cli import main


def test_grid_crossed_with_seeds_in_order_and_typed():
    spec = SweepSpec(base={"model": "mlp", "train_subset": 50, "teacher": "runs/t"},
                     grid=dict([parse_assignment("T=1,4"), parse_assignment("alpha=0.5,0.9")]), seeds=[0, 3])
    trials = plan_trials(spec, runs_root="/tmp/r")
    assert [t.key for t in trials][:3] == ["T=1, alpha=0.5, seed=0", "T=1, alpha=0.5, seed=3", "T=1, alpha=0.9, seed=0"]
    assert len(trials) == 8
    first = trials[0].config
    assert first["T"] == 1.0 and isinstance(first["T"], float) and first["alpha"] == 0.5 and first["seed"] == 0
    assert first["train_subset"] == 50 and first["runs_root"] == "/tmp/r"
    assert first["teacher"].startswith("/") and first["teacher"].endswith("runs/t")  # absolute for the workers


def test_random_draws_are_reproducible_and_in_range():
    spec = SweepSpec(random={"lr": parse_assignment("lr=0.01..0.2")[1], "batch_size": [16, 32]}, samples=6, sample_seed=7)
    again = plan_trials(SweepSpec(**{**spec.to_dict(), "asha": None}))
    trials = plan_trials(spec)
    assert [t.values for t in trials] == [t.values for t in again]
    assert all(0.01 <= t.values["lr"] <= 0.2 and t.values["batch_size"] in (16, 32) for t in trials)
    assert len({t.values["lr"] for t in trials}) > 1


@pytest.mark.parametrize("spec, words", [
    (SweepSpec(grid={"temperature": [1.0]}), "not a TrainConfig field"),
    (SweepSpec(grid={"T": [1.0, -1.0]}), "trial T=-1, seed=0: T must be > 0"),
    (SweepSpec(grid={"seed": [1, 2]}), "use the seeds option"),
    (SweepSpec(grid={"T": [1.0]}, random={"T": [2.0]}, samples=1), "both grid and random"),
    (SweepSpec(grid={"T": [1.0]}, trials_at_once=0), "trials at once"),
    (SweepSpec(grid={"T": [1.0]}, asha=AshaOptions(reduction_factor=1)), "reduction factor"),
])
def test_bad_specs_name_the_problem(spec, words):
    with pytest.raises(ValueError, match=words):
        plan_trials(spec)


def test_values_parse_json_lists_and_refuse_bad_settings():
    assert parse_assignment('model_options=[{"hidden": [8]}, {"hidden": [8, 8]}]')[1] == [{"hidden": [8]}, {"hidden": [8, 8]}]
    assert parse_setting("teacher=../runs/x") == ("teacher", "../runs/x")  # a path, not a range
    with pytest.raises(ValueError, match="one value per field"):
        parse_setting("T=1,2")
    with pytest.raises(ValueError, match="FIELD=VALUES"):
        parse_assignment("T")


def test_cli_dry_run_prints_the_trials_and_bad_input_is_one_line(capsys):
    assert main(["sweep", "--set", "model=mlp", "--grid", "lr=0.1,0.2", "--seeds", "2", "--dry-run"]) == 0
    assert capsys.readouterr().out.split("\n")[:4] == ["lr=0.1, seed=0", "lr=0.1, seed=1", "lr=0.2, seed=0", "lr=0.2, seed=1"]
    assert main(["sweep", "--set", "model=mlp"]) == 2
    assert "nothing to sweep" in capsys.readouterr().err
