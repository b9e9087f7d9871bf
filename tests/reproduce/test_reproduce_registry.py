"""Issue 15, reproduction as a feature: the registry, the plans it makes at non-default seeds, and
the ``kdviz reproduce`` command line (``--list`` and bad input), in real subprocesses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdviz.methods.kd import KD
from kdviz.methods.scratch import SCRATCH
from kdviz.reproduce import REPRODUCTIONS
from kdviz.reproduce.hinton_mnist import DISTILLED_ROW, HINTON_MNIST, SCRATCH_ROW, TEACHER_ROW, plan_runs

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "KDVIZ_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
IMPLEMENTED = ["hinton-mnist", "han-pruning", "deep-compression", "yim-fsp", "hinton-dark-knowledge", "hinton-dark-knowledge-78", "binary-lenet5"]


def kdviz(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdviz", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**ENV, "PYTHONPATH": str(REPO)})


def test_registry_names_the_implemented_reproductions_and_refuses_unknown_ones():
    assert set(IMPLEMENTED) <= set(REPRODUCTIONS.names())
    hinton = REPRODUCTIONS.get("hinton-mnist")
    assert [(p.label, p.value) for p in hinton.paper] == [(TEACHER_ROW, 67), (SCRATCH_ROW, 146), (DISTILLED_ROW, 74)]
    assert "Hinton" in hinton.citation and "2015" in hinton.citation
    with pytest.raises(ValueError, match="hinton-mnist"):
        REPRODUCTIONS.get("hinton-cifar")


@pytest.mark.parametrize("seeds, expected", [(2, [0, 1]), (4, [0, 1, 2, 3]), ([3, 7], [3, 7])])
@pytest.mark.parametrize("quick", [False, True])
def test_hinton_plan_has_one_teacher_and_a_scratch_and_distilled_student_per_seed(seeds, expected, quick):
    plan = HINTON_MNIST.plan(seeds, quick)
    (teacher,) = [run for run in plan if run.reuse]
    scratch = [run for run in plan if run.row == SCRATCH_ROW]
    distilled = [run for run in plan if run.row == DISTILLED_ROW]
    assert len(plan) == 1 + 2 * len(expected)
    assert teacher.row == TEACHER_ROW and teacher.config.seed == 0 and teacher.after is None
    for runs, loss in ((scratch, SCRATCH.loss), (distilled, KD.loss)):
        assert [run.seed for run in runs] == expected
        assert [run.config.seed for run in runs] == expected  # the seed reaches the config, not only the label
        assert {run.config.method for run in runs} == {loss}
    assert {run.after for run in distilled} == {teacher.key}
    assert {run.config.T for run in distilled} == {20.0} and {run.config.alpha for run in distilled} == {0.9}
    loss_and_transfer_set = ("method", "teacher", "T", "alpha", "name", "jitter_px", "epochs")
    for s, d in zip(scratch, distilled):  # the pair differs only in the loss and its settings, the transfer set's jitter and epochs
        same = {k: v for k, v in s.config.to_dict().items() if k not in loss_and_transfer_set}
        assert same == {k: v for k, v in d.config.to_dict().items() if k not in loss_and_transfer_set}
    assert {run.config.jitter_px for run in scratch} == {0}
    assert {run.config.jitter_px for run in distilled} == {0 if quick else 2}  # full mode: a jittered transfer set
    assert {(s.config.epochs, d.config.epochs) for s, d in zip(scratch, distilled)} == {(20, 20) if quick else (20, 35)}
    assert len({run.config.name for run in plan}) == len(plan)


def test_quick_and_full_plans_differ_as_documented():
    quick, full = HINTON_MNIST.plan(1, quick=True), HINTON_MNIST.plan(1, quick=False)
    assert quick[0].config.max_steps == 300 and full[0].config.max_steps is None and full[0].config.epochs == 8
    assert full[0].config.jitter_px == 2
    assert quick[1].config.train_subset == 1000 and full[1].config.train_subset is None
    assert full[1].config.epochs == 20 and full[2].config.epochs == 35  # scratch 20, distilled 35 epochs
    assert full[1].config.model_options == full[2].config.model_options == {"hidden": [800, 800]}


def test_bench_variants_get_their_own_rows():
    plan = plan_runs([5], teacher_kinds=("cnn", "mlp"), temperatures=(4.0, 20.0))
    rows = [run.row for run in plan]
    assert rows[:2] == [f"{TEACHER_ROW} (cnn)", f"{TEACHER_ROW} (mlp)"]
    assert f"{DISTILLED_ROW} T=4 (mlp teacher)" in rows and f"{DISTILLED_ROW} T=20 (cnn teacher)" in rows
    assert len(plan) == 2 + 1 + 4 and {run.seed for run in plan[2:]} == {5}


@pytest.mark.parametrize("seeds", [0, -1, [], [2, 2]])
def test_bad_seeds_are_refused(seeds):
    with pytest.raises(ValueError, match="seeds"):
        HINTON_MNIST.plan(seeds)


def test_cli_list_names_every_reproduction_with_title_and_paper(tmp_path):
    out = kdviz("reproduce", "--list", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in REPRODUCTIONS.names():
        item = REPRODUCTIONS.get(name)
        assert name in out.stdout and item.title in out.stdout and item.citation in out.stdout
    names = [line.split()[0] for line in out.stdout.splitlines() if line and not line[0].isspace()]
    assert sorted(names) == REPRODUCTIONS.names() and set(IMPLEMENTED) <= set(names)  # each name stands alone


@pytest.mark.parametrize("args, phrase", [
    (["hinton-cifar"], "No reproduction 'hinton-cifar' registered (known: binary-lenet5, deep-compression"),
    (["hinton-mnist", "--seeds", "0"], "--seeds must be at least 1, got 0"),
    ([], "name one reproduction or pass --all"),
    (["hinton-mnist", "--all"], "name one reproduction or pass --all"),
    (["hinton-mnist", "--quick", "--data-root", "{empty}"], "the mnist files are not found in {empty}"),
])
def test_cli_bad_input_is_one_clear_line_and_exit_2(tmp_path, args, phrase):
    empty = tmp_path / "no-mnist-here"
    empty.mkdir()
    runs = tmp_path / "runs"
    args = [a.replace("{empty}", str(empty)) for a in args]
    out = kdviz("reproduce", *args, "--runs-root", runs, cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    (line,) = [line for line in out.stderr.splitlines() if line.startswith("kdviz: error:")]
    assert phrase.replace("{empty}", str(empty)) in line, line
    assert not runs.exists()  # nothing was trained or written


def test_the_engine_commands_are_still_there(tmp_path):
    out = kdviz("hooks", cwd=tmp_path)
    assert out.returncode == 0 and "max_norm(" in out.stdout
    out = kdviz("runs", "--runs-root", tmp_path, cwd=tmp_path)
    assert out.returncode == 0 and "no runs under" in out.stdout
