"""Issue 15: ``yim-fsp`` (Yim et al. 2017, fast optimisation) through the engine on MNIST.

The plan: one reused teacher, and per seed a scratch student of N iterations beside the FSP chain
teacher -> stage 1 (``teacher`` = the teacher's folder) -> stage 2 (``init_from`` = stage 1's folder)
of N / 3 iterations. The quick reproduction (seed 2, not the default 0) runs end to end on real
MNIST; each value is checked against the run folders (evaluation records, the stage-1 probe loss,
the configs the runner linked). Skipped without MNIST.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from _support.reproduce import HAS_MNIST, MNIST, run_quick
from _support.run_files import metric_lines
from kdviz.reproduce import REPRODUCTIONS
from kdviz.reproduce import fsp



def test_plan_chains_teacher_stage1_stage2_beside_a_scratch_student():
    plan = REPRODUCTIONS.get("yim-fsp").plan([2, 5], quick=True)
    assert [run.key for run in plan] == ["teacher", "scratch/seed2", "fsp-stage1/seed2", "fsp-stage2/seed2",
                                         "scratch/seed5", "fsp-stage1/seed5", "fsp-stage2/seed5"]
    teacher, scratch, stage1, stage2 = plan[:4]
    assert teacher.reuse and teacher.config.model_options["blocks_per_stage"] == [3, 3, 3]
    assert (stage1.after, stage1.link) == ("teacher", "teacher") and stage1.config.method == "none"
    assert [h["name"] for h in stage1.config.hooks] == ["fsp"] and stage1.config.lr == pytest.approx(1e-4)
    assert (stage2.after, stage2.link) == ("fsp-stage1/seed2", "init_from")
    assert stage2.config.method == "ce" and not stage2.config.teacher and not stage2.config.hooks
    assert scratch.config.method == "ce" and not scratch.config.teacher and not scratch.config.init_from
    quick = fsp.QUICK
    assert (scratch.config.max_steps, stage1.config.max_steps, stage2.config.max_steps) == (quick.scratch, quick.stage1,
                                                                                           quick.scratch // 3)
    assert {run.config.model_options["blocks_per_stage"] == [1, 1, 1] for run in plan[1:]} == {True}
    assert [run.config.seed for run in plan[4:]] == [5, 5, 5]
    full = fsp.plan_runs([0])
    assert [run.config.max_steps for run in full[1:]] == [1500, 600, 500]  # N, S1, N/3 as the bench ran them


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not HAS_MNIST, reason=f"no MNIST IDX files in {MNIST}")
def test_quick_fsp_reproduction_measures_its_run_folders(tmp_path):
    result = run_quick("yim-fsp", [2], tmp_path)
    assert result.state == "finished", result.runs
    assert [(row.label, row.paper) for row in result.rows] == [
        (fsp.TEACHER_ROW, None), (fsp.SCRATCH_ROW, None), (fsp.SCRATCH_THIRD_ROW, None), (fsp.FSP_ROW, None),
        (fsp.FSP_LOSS_ROW, None)]
    assert all(row.paper_note.startswith("paper: ") for row in result.rows)
    value = {row.label: row.values[0] for row in result.rows}
    run = {key.split("/")[0]: Path(info["path"]) for key, info in result.runs.items()}
    configs = {key: json.loads((path / "config.json").read_text()) for key, path in run.items()}
    assert Path(configs["fsp-stage1"]["teacher"]) == run["teacher"]
    assert Path(configs["fsp-stage2"]["init_from"]) == run["fsp-stage1"]
    for row, key in ((fsp.TEACHER_ROW, "teacher"), (fsp.SCRATCH_ROW, "scratch"), (fsp.FSP_ROW, "fsp-stage2")):
        assert value[row] == pytest.approx(100 * metric_lines(run[key], "eval")[-1]["test_acc"])
        assert 20 < value[row] <= 100  # learned something: chance is 10 %
    scratch_evals = metric_lines(run["scratch"], "eval")
    assert scratch_evals[-1]["step"] == fsp.QUICK.scratch
    at_third = next(r for r in scratch_evals if r["step"] == fsp.QUICK.scratch // 3)
    assert value[fsp.SCRATCH_THIRD_ROW] == pytest.approx(100 * at_third["test_acc"])
    probe = [r["fsp/probe_loss"] for r in metric_lines(run["fsp-stage1"], "eval")]
    assert len(probe) == 2 and value[fsp.FSP_LOSS_ROW] == pytest.approx(probe[0] / probe[-1])
    assert value[fsp.FSP_LOSS_ROW] > 1  # stage 1 lowered the FSP loss
    assert metric_lines(run["fsp-stage2"], "eval")[-1]["step"] == fsp.QUICK.scratch // 3
