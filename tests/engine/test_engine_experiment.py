"""Experiment: named jobs and stages through one JobManager (kdviz.engine.experiment)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import kdviz.engine.experiment as experiment_module
from kdviz.engine import JobManager, TrainConfig
from kdviz.engine.experiment import Experiment


class FakeJob:
    def __init__(self, config, state="running"):
        self.config, self.state, self.stopped = config, state, False
        self.path = f"runs/{config.name}"

    @property
    def done(self):
        return self.state in ("finished", "failed", "stopped")

    def status(self):
        return SimpleNamespace(state=self.state, message=f"{self.state} on purpose", done=self.done)

    def stop(self):
        self.stopped, self.state = True, "stopped"


@pytest.fixture
def fake_start(monkeypatch):
    started = []

    def start(config, manager=None):
        job = FakeJob(config)
        started.append(job)
        return job

    monkeypatch.setattr(experiment_module, "start", start)
    return started


def test_a_stage_starts_only_after_its_predecessor_finished(fake_start):
    exp = Experiment(title="t")
    first = exp.start("one", TrainConfig(name="one"))
    exp.then("two", "one", lambda jobs: TrainConfig(name="two", init_from=jobs["one"].path))
    exp.then("three", "two", lambda jobs: TrainConfig(name="three", init_from=jobs["two"].path))
    assert exp.poll() == [] and exp.pending == ["two", "three"] and not exp.done
    first.state = "finished"
    assert exp.poll() == ["two"] and exp.job("two").config.init_from == "runs/one"
    exp.job("two").state = "finished"
    assert exp.poll() == ["three"] and list(exp.jobs) == ["one", "two", "three"]
    exp.job("three").state = "finished"
    assert exp.done and exp.blocked == {}


def test_a_failed_stage_blocks_its_followers_and_says_why(fake_start):
    exp = Experiment()
    exp.start("one", TrainConfig(name="one")).state = "failed"
    exp.then("two", "one", lambda jobs: TrainConfig(name="two"))
    exp.then("three", "two", lambda jobs: TrainConfig(name="three"))
    exp.poll()
    assert exp.blocked == {"two": "one ended 'failed': failed on purpose", "three": "two never started"}
    assert exp.done and list(exp.jobs) == ["one"]


def test_a_stage_whose_config_cannot_be_built_is_blocked_not_lost(fake_start):
    exp = Experiment()
    exp.start("one", TrainConfig(name="one")).state = "finished"

    def bad(jobs):
        raise ValueError("sparsity must be in [0, 1)")

    exp.then("two", "one", bad)
    assert exp.blocked == {"two": "could not start: sparsity must be in [0, 1)"} and exp.done


def test_stop_stops_running_jobs_and_cancels_pending_stages(fake_start):
    exp = Experiment()
    job = exp.start("one", TrainConfig(name="one"))
    exp.then("two", "one", lambda jobs: TrainConfig(name="two"))
    exp.stop()
    assert job.stopped and exp.pending == [] and exp.blocked == {"two": "stopped before it started"}


def test_names_are_unique_and_stages_wait_for_known_jobs(fake_start):
    exp = Experiment()
    exp.start("one", TrainConfig(name="one"))
    with pytest.raises(ValueError, match="already has a job named 'one'"):
        exp.start("one", TrainConfig(name="again"))
    with pytest.raises(ValueError, match="waits for 'nobody'"):
        exp.then("two", "nobody", lambda jobs: TrainConfig())


def test_a_real_two_stage_experiment_runs_through_the_manager(tmp_path):
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    common = dict(dataset="digits", model="mlp", model_options={"hidden": [16]}, runs_root=str(tmp_path), snapshot_every=0)
    exp = Experiment(manager, "real")
    exp.start("first", TrainConfig(max_steps=5, name="first", **common))
    exp.then("second", "first", lambda jobs: TrainConfig(max_steps=3, init_from=str(jobs["first"].path), name="second", **common))
    states = exp.wait(60)
    assert {name: s.state for name, s in states.items()} == {"first": "finished", "second": "finished"}
    assert exp.job("second").config.init_from == str(exp.job("first").path)
