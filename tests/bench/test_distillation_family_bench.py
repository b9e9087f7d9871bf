"""``bench/distillation_family.py --quick`` trains the scratch student and every registered member of the
distillation family on one teacher, through the engine, and its markdown table says what the run folders
hold: each row's accuracy is its run's final test accuracy, each gain is that minus the scratch student's,
and every student shares the base config (model, seed, transfer set, epochs, unpaced). Bad options get a
message that names them. (About 10 s on an idle machine: digits, one seed, 20 short epochs.)"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kdviz.engine.run_folder import read_config
from kdviz.engine.run_reader import read_status
from kdviz.methods.kd import KD
from kdviz.present.family import family_members
from kdviz.present.family_story import SCRATCH_LABEL

BENCH = Path(__file__).resolve().parents[2] / "bench" / "distillation_family.py"
ROW = re.compile(r"^\| (?P<label>[^|]+?) \| (?P<acc>[\d.]+)% \| (?P<seed>[\d.]+)% \| (?P<gain>[^|]+?) \| "
                 r"(?P<wins>[^|]+?) \| (?P<kd>[^|]+?) \| (?P<seconds>[\d.]+) \|$", re.MULTILINE)


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=240,
                          cwd=BENCH.parents[1])


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    runs = tmp_path_factory.mktemp("family-bench")
    out = bench("--quick", "--runs-root", str(runs))
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, runs


def folders(runs: Path) -> dict[str, Path]:
    """Run folder by run name (the folder name without its timestamp)."""
    return {re.sub(r"^\d{8}-\d{6}-", "", p.name): p for p in runs.iterdir() if (p / "config.json").is_file()}


def test_quick_table_lists_scratch_and_every_member_with_the_runs_accuracies(quick):
    stdout, runs = quick
    rows = {m["label"]: m for m in ROW.finditer(stdout)}
    expected = [SCRATCH_LABEL, *(member.spec.label for member in family_members())]
    assert list(rows) == expected, stdout
    by_name = folders(runs)
    scratch_acc = float(rows[SCRATCH_LABEL]["acc"])
    for label, row in rows.items():
        name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + "-seed0"
        status = read_status(by_name[name])
        assert status["state"] == "finished"
        assert float(row["acc"]) == pytest.approx(100 * status["test_acc"], abs=0.006)  # printed to 2 decimals
        assert row["acc"] == row["seed"]  # one seed: the mean is that seed's value
        if label != KD.label:  # against KD: the difference to the KD row, and whether it is ahead
            kd_gain = float(row["kd"].split(" ")[0])
            assert kd_gain == pytest.approx(float(row["acc"]) - float(rows[KD.label]["acc"]), abs=0.011)
            assert row["kd"].endswith("(1 of 1)" if kd_gain > 0 else "(0 of 1)")
        if label == SCRATCH_LABEL:
            assert row["gain"] == "(the baseline)"
            continue
        gain = float(row["gain"])
        assert gain == pytest.approx(float(row["acc"]) - scratch_acc, abs=0.011)
        assert row["wins"] == ("1 of 1" if gain > 0 else "0 of 1")
    assert "machine: " in stdout and re.search(r"date \d{4}-\d\d-\d\d", stdout)


def test_quick_students_share_one_unpaced_base_config_and_one_teacher(quick):
    _, runs = quick
    by_name = folders(runs)
    teachers = [p for name, p in by_name.items() if name.startswith("teacher-")]
    assert len(teachers) == 1  # trained once
    students = [read_config(p) for name, p in by_name.items() if not name.startswith("teacher-")]
    assert len(students) == 1 + len(family_members())
    shared = {(c.model, str(c.model_options), c.seed, c.train_subset, c.epochs, c.batch_size, c.lr, c.pace_s)
              for c in students}
    assert shared == {("mlp", "{'hidden': [8]}", 0, 100, 20, 16, 0.01, None)}
    assert {c.teacher for c in students} == {None, str(teachers[0])}  # scratch has none; every member the same one
    assert len({c.method for c in students} | {str(c.hooks) for c in students}) > 2  # the methods differ


@pytest.mark.parametrize("args, named", [(["--members", "kd,no-such-method"], "--members"),
                                         (["--dataset", "mnist", "--data-root", "/no/such/folder"], "--data-root")])
def test_bad_options_are_named_without_a_traceback(args, named, tmp_path):
    out = bench(*args, "--runs-root", str(tmp_path))
    assert out.returncode != 0
    assert named in out.stderr and "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir())  # nothing trained
