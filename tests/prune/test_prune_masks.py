"""Pruning masks: explicit objects that zero weights, validate shapes, and survive save and load."""
import pytest
import safetensors.torch
import torch
from torch import nn

from kdviz.models import build_model
from kdviz.prune import PruningMasks, load_pruned, magnitude_masks, prunable_weights, save_pruned


def small_mlp(seed=0):
    torch.manual_seed(seed)
    return build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(32, 16))


def test_prunable_weights_are_linear_and_conv_weights():
    assert list(prunable_weights(small_mlp())) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    lenet5 = build_model("lenet5", input_shape=(1, 8, 8))
    assert list(prunable_weights(lenet5)) == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]


def test_model_without_prunable_layers_is_rejected():
    with pytest.raises(ValueError, match="no prunable layers"):
        PruningMasks.dense(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        prunable_weights("not a model")


def test_apply_zeroes_exactly_the_pruned_weights():
    model = small_mlp()
    before = model.fc1.weight.detach().clone()
    mask = torch.rand(before.shape, generator=torch.Generator().manual_seed(1)) > 0.3
    masks = PruningMasks({"fc1.weight": mask})
    masks.apply(model)
    after = model.fc1.weight.detach()
    assert torch.all(after[~mask] == 0)
    assert torch.equal(after[mask], before[mask])
    assert masks.sparsity()["fc1.weight"] == pytest.approx(float((~mask).sum()) / mask.numel())


def test_integer_masks_are_accepted_and_float_masks_rejected():
    m = PruningMasks({"fc3.weight": torch.ones(10, 16, dtype=torch.int64)})
    assert m["fc3.weight"].dtype == torch.bool
    with pytest.raises(ValueError, match="must be bool"):
        PruningMasks({"fc3.weight": torch.ones(10, 16)})
    with pytest.raises(TypeError, match="torch.Tensor"):
        PruningMasks({"fc3.weight": [[1, 0]]})


def test_shape_mismatch_names_parameter_and_both_shapes():
    masks = PruningMasks({"fc2.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"'fc2.weight' has shape \(3, 3\).*shape \(16, 32\)"):
        masks.apply(small_mlp())
    with pytest.raises(ValueError, match="matches no parameter"):
        PruningMasks({"conv9.weight": torch.ones(2, dtype=torch.bool)}).apply(small_mlp())


def test_state_dict_round_trip_and_mismatch_errors():
    model = small_mlp()
    masks = magnitude_masks(model, 0.7)
    fresh = PruningMasks.dense(model)
    fresh.load_state_dict(masks.state_dict())
    for name in masks:
        assert torch.equal(fresh[name], masks[name])
    with pytest.raises(ValueError, match="mask names differ"):
        fresh.load_state_dict({"fc1.weight": masks["fc1.weight"]})
    bad = masks.state_dict()
    bad["fc1.weight"] = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"'fc1.weight' has shape \(2, 2\)"):
        fresh.load_state_dict(bad)


def test_reloaded_pruned_model_is_still_pruned_after_a_training_step(tmp_path):
    model = small_mlp(seed=0)
    masks = magnitude_masks(model, 0.8)
    masks.apply(model)
    path = save_pruned(model, masks, tmp_path / "pruned.safetensors")

    raw = safetensors.torch.load_file(path)  # a safetensors file: tensors only, no weight_orig/weight_mask
    assert set(raw) == {f"model/{k}" for k in model.state_dict()} | {f"masks/{k}" for k in masks.names()}
    assert not any("orig" in k for k in raw)

    reloaded = small_mlp(seed=123)  # different random weights before loading
    loaded = load_pruned(reloaded, path)
    for name, p in prunable_weights(reloaded).items():
        assert torch.equal(p.detach(), prunable_weights(model)[name].detach())
        assert torch.all(p.detach()[~loaded[name]] == 0)
        assert torch.equal(loaded[name], masks[name])

    # one optimizer step with momentum and weight decay: every weight gets a gradient ...
    opt = torch.optim.SGD(reloaded.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    nn.functional.cross_entropy(reloaded(x), y).backward()
    opt.step()
    pruned = ~loaded["fc1.weight"]
    assert (reloaded.fc1.weight.detach()[pruned] != 0).any()  # ... so without masks it would un-prune
    loaded.apply(reloaded)  # the masks re-applied after the step keep it pruned
    for name, p in prunable_weights(reloaded).items():
        assert torch.all(p.detach()[~loaded[name]] == 0)
    assert loaded.overall_sparsity() == pytest.approx(masks.overall_sparsity())


def test_load_into_wrong_architecture_is_a_clear_error(tmp_path):
    model = small_mlp()
    path = save_pruned(model, magnitude_masks(model, 0.5), tmp_path / "p.pt")
    other = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(8, 16))
    with pytest.raises(ValueError, match=r"'fc1.weight' has shape \(32, 64\).*\(8, 64\)"):
        load_pruned(other, path)
    torch.save({"weights": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a kdviz pruned checkpoint"):
        load_pruned(model, tmp_path / "bad.pt")
