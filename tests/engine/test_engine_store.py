"""LiveStore: versioned reads, bounded memory (old step points thinned, evaluations kept), threads."""
import threading

import numpy as np
import pytest

from kdviz.engine.store import LiveStore


def test_metrics_since_returns_only_new_records_and_the_next_version():
    store = LiveStore()
    assert store.metrics_since(0) == ([], 0)
    for step in range(1, 4):
        store.add_metric({"kind": "step", "step": step, "loss": 1.0 / step})
    records, v = store.metrics_since(0)
    assert [r["step"] for r in records] == [1, 2, 3] and v == 3
    store.add_metric({"kind": "eval", "step": 3, "test_acc": 0.5})
    new, v2 = store.metrics_since(v)
    assert [r["kind"] for r in new] == ["eval"] and v2 == 4
    assert store.metrics_since(v2) == ([], 4)


def test_memory_is_bounded_and_every_evaluation_is_kept():
    store = LiveStore(max_step_points=100)
    for step in range(1, 5001):
        store.add_metric({"kind": "step", "step": step})
        if step % 50 == 0:
            store.add_metric({"kind": "eval", "step": step})
    steps = store.metrics("step")
    assert len(steps) <= 100
    assert steps[0]["step"] == 1 and steps[-1]["step"] == 5000  # the ends survive thinning
    assert [r["step"] for r in store.metrics("eval")] == list(range(50, 5001, 50))
    seqs = [r["seq"] for r in store.metrics()]
    assert seqs == sorted(seqs)
    # recent points are denser than old ones
    tail = [r["step"] for r in steps[-10:]]
    assert tail == list(range(4991, 5001))


def test_snapshots_since_and_latest_and_thinning():
    store = LiveStore(max_snapshots=10)
    assert store.latest_snapshot() is None
    for step in range(0, 300, 10):
        store.add_snapshot(step, step / 100, {"probe_acc": step / 300}, {"w": np.full(3, step)})
    snaps, v = store.snapshots_since(0)
    assert len(snaps) <= 10 and v == 30
    assert snaps[0].step == 0 and snaps[-1].step == 290
    assert store.latest_snapshot().arrays["w"].tolist() == [290, 290, 290]
    assert store.snapshots_since(v) == ([], 30)


def test_seq_must_grow():
    store = LiveStore()
    store.add_metric({"kind": "step"}, seq=5)
    with pytest.raises(ValueError, match="grow"):
        store.add_metric({"kind": "step"}, seq=5)


def test_concurrent_writer_and_reader_see_every_record_once_in_order():
    store = LiveStore(max_step_points=100000)
    n = 5000
    seen, version = [], 0

    def write():
        for step in range(1, n + 1):
            store.add_metric({"kind": "step", "step": step})

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive() or version < n:
        records, version = store.metrics_since(version)
        seen.extend(r["step"] for r in records)
    writer.join()
    assert seen == list(range(1, n + 1))
