"""Issue 15: ``binary-lenet5``, binary weights on LeNet-5 / MNIST (BinaryConnect, Courbariaux et al.
2015; BWN, Rastegari et al. 2016) beside a full-precision LeNet-5, through the engine's binary hook.

The plan and the paper's numbers are checked without data; the quick reproduction runs end to end
on real MNIST (skipped without the IDX files), and each row's value is checked against the run's
own files: the error recorded in its metrics, and the error recomputed here from its checkpoint by
binarizing the latent weights independently (sign, and alpha = mean |W| per filter for BWN)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _support.reproduce import HAS_MNIST, MNIST, run_quick
from _support.run_files import metric_lines
from kdviz.data import load_dataset
from kdviz.engine.run_folder import load_checkpoint
from kdviz.reproduce import REPRODUCTIONS
from kdviz.reproduce.binary import BINARY_LENET5, BINARYCONNECT_ROW, BWN_ROW, FLOAT_ROW, LEARNING_RATE, QUICK



def test_binary_plan_trains_three_nets_per_seed_with_the_right_hook():
    assert REPRODUCTIONS.get("binary-lenet5") is BINARY_LENET5
    plan = BINARY_LENET5.plan([5, 8], quick=False)
    assert [(run.key, run.row, run.seed, run.config.seed) for run in plan] == [
        ("float/seed5", FLOAT_ROW, 5, 5), ("binaryconnect/seed5", BINARYCONNECT_ROW, 5, 5), ("bwn/seed5", BWN_ROW, 5, 5),
        ("float/seed8", FLOAT_ROW, 8, 8), ("binaryconnect/seed8", BINARYCONNECT_ROW, 8, 8), ("bwn/seed8", BWN_ROW, 8, 8)]
    methods = {run.row: [h.get("method") for h in run.config.hooks] for run in plan}
    assert methods == {FLOAT_ROW: [], BINARYCONNECT_ROW: ["binaryconnect"], BWN_ROW: ["xnor"]}
    for run in plan:
        assert run.config.model == "lenet5" and run.config.dataset == "mnist" and not run.reuse and run.after is None
        assert run.config.lr == LEARNING_RATE[run.row] and run.config.max_steps is None  # full: whole epochs
        run.config.validate()
    quick = BINARY_LENET5.plan([0], quick=True)
    assert all(run.config.max_steps == QUICK["max_steps"] and run.config.model_options == QUICK["model_options"]
               for run in quick)


def test_binary_paper_numbers_quote_only_what_the_papers_state():
    paper = {p.label: p for p in BINARY_LENET5.paper}
    assert list(paper) == [FLOAT_ROW, BINARYCONNECT_ROW, BWN_ROW]
    assert paper[FLOAT_ROW].value == 0.80 and "Han et al. 2015" in paper[FLOAT_ROW].note
    assert paper[BINARYCONNECT_ROW].value is None  # BinaryConnect's MNIST number is an MLP's, not LeNet-5's
    assert "1.29" in paper[BINARYCONNECT_ROW].note and "MLP" in paper[BINARYCONNECT_ROW].note
    assert paper[BWN_ROW].value is None and "ImageNet only" in paper[BWN_ROW].note
    assert all(p.unit == "% test error" for p in paper.values())


def binarized_test_error(run: Path, method: str | None, test_images: torch.Tensor, test_labels: torch.Tensor) -> float:
    """Test error in % of the run's checkpoint, each conv/fc weight binarized here: sign(w) (+1 at 0)
    for BinaryConnect, times mean |w| per output filter for BWN; float weights as saved otherwise."""
    state = load_checkpoint(run)["model"]
    weights = {}
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        latent = state.get(f"{layer}.parametrizations.weight.original", state.get(f"{layer}.weight"))
        if method is not None:
            assert float(latent.abs().max()) <= 1.0  # BinaryConnect's clip to [-1, 1] after every step
            sign = torch.where(latent >= 0, 1.0, -1.0)
            alpha = latent.abs().mean(dim=tuple(range(1, latent.dim())), keepdim=True) if method == "xnor" else 1.0
            weights[layer] = alpha * sign
        else:
            weights[layer] = latent
    x = F.relu(F.conv2d(test_images, weights["conv1"], state["conv1.bias"], padding=2))
    x = F.relu(F.conv2d(F.max_pool2d(x, 2), weights["conv2"], state["conv2.bias"], padding=2))
    x = F.relu(F.linear(F.max_pool2d(x, 2).flatten(1), weights["fc1"], state["fc1.bias"]))
    logits = F.linear(x, weights["fc2"], state["fc2.bias"])
    return 100.0 * float((logits.argmax(dim=1) != test_labels).float().mean())


@pytest.mark.slow  # 3 quick runs on MNIST: 12-30 s on 2 cores
@pytest.mark.timeout(300)
@pytest.mark.skipif(not HAS_MNIST, reason=f"no MNIST IDX files in {MNIST}")
def test_quick_binary_lenet5_rows_are_the_runs_binarized_errors(tmp_path):
    result = run_quick("binary-lenet5", [3], tmp_path)
    assert result.state == "finished", result.runs
    assert [(row.label, row.paper, row.seeds) for row in result.rows] == [
        (FLOAT_ROW, 0.80, [3]), (BINARYCONNECT_ROW, None, [3]), (BWN_ROW, None, [3])]
    mnist = load_dataset("mnist", root=str(MNIST))
    with torch.no_grad():
        for row, method in ((FLOAT_ROW, None), (BINARYCONNECT_ROW, "binaryconnect"), (BWN_ROW, "xnor")):
            (run,), (value,) = [Path(p) for p in result.row(row).runs], result.row(row).values
            assert value == pytest.approx(100 * (1 - metric_lines(run, "eval")[-1]["test_acc"]))
            assert value == pytest.approx(binarized_test_error(run, method, mnist.test_images, mnist.test_labels), abs=0.02)
            assert value < 80  # learnt something: chance is 90 %
