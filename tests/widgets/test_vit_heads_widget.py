"""``HeadPruningMonitor`` without a browser: it follows a live head-pruning fine-tune of a tiny ViT on digits.

Expected values come from the run folder (snapshot ``.npz`` files and ``metrics.jsonl`` lines read here with
numpy and json), never from the widget code under test."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods.head_prune import head_prune_hook  # noqa: E402
from kdviz.widgets.vit_heads import HeadPruningMonitor  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

COMMON = dict(dataset="digits", model="vit", model_options={"patch": 2, "dim": 16, "depth": 2, "heads": 4, "mlp_ratio": 1.0},
              batch_size=32, optimizer="adam", eval_train_samples=200, device="cpu")


@pytest.fixture(scope="module")
def trained(manager, tmp_path_factory):
    job = start(TrainConfig(max_steps=40, lr=0.003, snapshot_every=0, name="vit",
                            runs_root=str(tmp_path_factory.mktemp("vit-heads-widget-runs")), **COMMON), manager)
    assert job.wait(120).state == "finished", job.status().message
    return job


def test_monitor_draws_the_importance_heatmap_as_heads_go(trained, manager):
    config = TrainConfig(init_from=str(trained.path), lr=0.001, max_steps=24, eval_every=4, snapshot_every=4, pace_s=6.0,
                         name="heads", runs_root=str(Path(trained.path).parent),
                         hooks=[head_prune_hook(heads_removed=3, rounds=3, start_step=1, end_step=13, probe_size=64)], **COMMON)
    job = start(config, manager)
    curves = {"by importance (no fine-tuning)": ([0, 1, 2], [0.5, 0.45, 0.3])}
    monitor = HeadPruningMonitor(job, curves=curves, dense_accuracy=0.5, interval_ms=50)
    drawn: dict[int, tuple[np.ndarray, list[str]]] = {}

    def collect() -> bool:
        step, data = monitor.shown_heatmap()  # read together: the chart could change between two reads
        if step is not None and data:
            drawn.setdefault(step, (np.asarray(data[0].z, dtype=float), [t for row in data[0].text for t in row]))
        return job.done and not monitor.poller.running

    wait_for(collect, 90, "the run to end and the monitor to stop polling")
    monitor.refresh()
    assert len(drawn) >= 3, f"the heatmap was drawn at only {sorted(drawn)}"
    for step, (z, text) in drawn.items():  # each drawn heatmap is the snapshot's, at that step
        np.testing.assert_allclose(z, snapshot_array(job.path, step, "head_prune/importance"), rtol=1e-6)
        removed = snapshot_array(job.path, step, "head_prune/removed").astype(bool)
        assert text.count("✕") == int(removed.sum())
    crossed = [text.count("✕") for _, (_, text) in sorted(drawn.items())]
    assert crossed[0] < crossed[-1] == 3  # heads went while the monitor watched
    evals = metric_lines(job.path, "eval")
    lines = {t.name: t for t in monitor.accuracy_chart.widget.data}
    assert list(lines) == ["by importance (no fine-tuning)", "heads pruned"]
    assert lines["heads pruned"].x[-1] == 3 and lines["heads pruned"].y[-1] == pytest.approx(100 * evals[-1]["test_acc"])
    assert "finished" in monitor.status[monitor.student.label].value and monitor.stop_button.disabled
    monitor.close()


def test_monitor_refuses_runs_without_head_pruning(trained):
    with pytest.raises(ValueError, match="needs a head-pruning run"):
        HeadPruningMonitor(trained, autostart=False)
