"""Hooks' random draws at setup (a hint regressor's initial weights, a probe batch) repeat on a rerun
however many jobs start at once: ``build_run`` runs every ``hook.setup`` under ``INIT_LOCK`` from the
global generator seeded by the run's seed plus ``HOOK_SEED_OFFSET``, and restores the generator."""
import threading

import torch

from kdviz.engine import HOOKS, TrainConfig, TrainingHook
from kdviz.engine.setup import HOOK_SEED_OFFSET, build_run


class DrawAtSetupHook(TrainingHook):
    """Draws four numbers from torch's global generator at setup, as a regressor's init does."""

    def setup(self, ctx):
        self.drawn = torch.randn(4)


if "test-draw-at-setup" not in HOOKS:
    HOOKS.register("test-draw-at-setup")(DrawAtSetupHook)


def drawn_by_setup(seed: int) -> torch.Tensor:
    config = TrainConfig(dataset="synthetic", model="mlp", model_options={"hidden": [8]}, seed=seed, max_steps=1,
                         hooks=[{"name": "test-draw-at-setup"}])
    parts = build_run(config, total_steps=1)
    return parts.hooks[0][1].drawn


def expected_draw(seed: int) -> torch.Tensor:
    return torch.randn(4, generator=torch.Generator().manual_seed(seed + HOOK_SEED_OFFSET))


def test_a_hooks_setup_draws_from_the_runs_seed_whatever_the_global_generator_holds():
    torch.manual_seed(123)
    torch.randn(1000)  # another job's draws before this one starts
    assert torch.equal(drawn_by_setup(3), expected_draw(3))
    assert not torch.equal(drawn_by_setup(4), expected_draw(3))
    drawn_by_setup(5)
    with_hook = torch.get_rng_state()
    build_run(TrainConfig(dataset="synthetic", model="mlp", model_options={"hidden": [8]}, seed=5, max_steps=1), 1)
    assert torch.equal(torch.get_rng_state(), with_hook)  # the hook's draws left the global generator as it was


def test_jobs_setting_up_at_once_each_get_their_own_seeds_draws():
    results: dict[int, list[torch.Tensor]] = {seed: [] for seed in range(4)}

    def set_up_repeatedly(seed: int) -> None:
        for _ in range(10):
            results[seed].append(drawn_by_setup(seed))

    threads = [threading.Thread(target=set_up_repeatedly, args=(seed,)) for seed in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for seed, draws in results.items():
        assert len(draws) == 10 and all(torch.equal(d, expected_draw(seed)) for d in draws)
