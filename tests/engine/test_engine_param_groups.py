"""A hook's own parameter group keeps its learning rate; the schedule scales every group alike."""
import pytest
import torch
from torch import nn

from kdviz.engine import HOOKS, JobManager, TrainConfig, TrainingHook, start
from kdviz.engine.optim import learning_rate

SEEN = []


class SlowGroupHook(TrainingHook):
    """Adds one parameter in its own optimizer group at a tenth of the run's rate, and records the
    rates the optimizer really used at each step."""

    def setup(self, ctx):
        self.extra = nn.Parameter(torch.zeros(1))
        ctx.optimizer.add_param_group({"params": [self.extra], "lr": ctx.config.lr / 10})

    def loss_terms(self, ctx, batch):
        return {"extra": (self.extra - 1.0).pow(2).sum()}

    def after_step(self, ctx):
        SEEN.append((ctx.step, [g["lr"] for g in ctx.optimizer.param_groups]))


if "test-slow-group" not in HOOKS:
    HOOKS.register("test-slow-group")(SlowGroupHook)


def test_hook_group_learning_rate_follows_the_schedule_at_its_own_scale(tmp_path):
    cfg = TrainConfig(dataset="synthetic", model="mlp", model_options={"hidden": [16]}, epochs=1, max_steps=12,
                      lr=0.2, lr_schedule="cosine", runs_root=str(tmp_path), hooks=[{"name": "test-slow-group"}])
    job = start(cfg, JobManager(max_concurrent=1, cpu_threads=1))
    assert job.wait(60).state == "finished", job.status()
    assert len(SEEN) >= 5
    for step, (main_lr, hook_lr) in SEEN:
        expected = learning_rate(step - 1, job.status().total_steps, cfg)  # after_step sees the step count after the update
        assert main_lr == pytest.approx(expected)
        assert hook_lr == pytest.approx(expected / 10)
