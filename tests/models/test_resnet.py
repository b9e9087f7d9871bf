"""The small ResNet: documented feature names and shapes, stage channels shared by teacher and student."""
import pytest
import torch

from kdviz.models import MODELS, FeatureModel, build_model, count_parameters
from kdviz.models.resnet import ResNet

NAMES = ("stage1_in", "stage1_out", "stage2_in", "stage2_out", "stage3_in", "stage3_out", "pool")


def test_registered_as_resnet():
    assert "resnet" in MODELS
    assert isinstance(build_model("resnet"), (ResNet, FeatureModel))


@pytest.mark.parametrize("side,sizes", [(8, (8, 4, 2)), (28, (28, 14, 7))])
@pytest.mark.parametrize("blocks", [(1, 1, 1), (3, 3, 3)])
def test_feature_names_and_shapes(side, sizes, blocks):
    model = build_model("resnet", input_shape=(1, side, side), num_classes=10, blocks_per_stage=blocks)
    assert model.feature_names == NAMES
    logits, feats = model.forward_with_features(torch.rand(2, 1, side, side))
    assert logits.shape == (2, 10)
    assert tuple(feats) == NAMES
    c = (16, 32, 64)
    expected = {
        "stage1_in": (2, c[0], sizes[0], sizes[0]), "stage1_out": (2, c[0], sizes[0], sizes[0]),
        "stage2_in": (2, c[0], sizes[0], sizes[0]), "stage2_out": (2, c[1], sizes[1], sizes[1]),
        "stage3_in": (2, c[1], sizes[1], sizes[1]), "stage3_out": (2, c[2], sizes[2], sizes[2]),
        "pool": (2, c[2]),
    }
    assert {k: tuple(v.shape) for k, v in feats.items()} == expected
    assert [s for s in model.stage_shapes()] == [(c[k], sizes[k], sizes[k]) for k in range(3)]
    # stageK_in is the map leaving stage K-1, and pool is the spatial mean of the last map
    assert torch.equal(feats["stage2_in"], feats["stage1_out"])
    torch.testing.assert_close(feats["pool"], feats["stage3_out"].mean(dim=(2, 3)))


def test_teacher_and_student_share_stage_channels_but_not_depth():
    teacher = build_model("resnet", input_shape=(1, 28, 28), blocks_per_stage=(3, 3, 3))
    student = build_model("resnet", input_shape=(1, 28, 28), blocks_per_stage=(1, 1, 1))
    x = torch.rand(2, 1, 28, 28)
    ft, fs = teacher.forward_with_features(x)[1], student.forward_with_features(x)[1]
    assert {k: v.shape for k, v in ft.items()} == {k: v.shape for k, v in fs.items()}
    assert len(teacher.stage1) == 3 and len(student.stage1) == 1
    assert count_parameters(teacher) > 3 * count_parameters(student)


def block_params(c_in, c_out, downsample):
    p = 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out  # two 3x3 convs (no bias) + BN
    return p + (c_in * c_out + 2 * c_out if downsample else 0)  # 1x1 projection shortcut + BN


def test_parameter_count_by_hand():
    model = build_model("resnet", input_shape=(3, 12, 12), num_classes=4, blocks_per_stage=(2, 1), channels=(8, 16))
    stem = 9 * 3 * 8 + 2 * 8
    expected = stem + 2 * block_params(8, 8, False) + block_params(8, 16, True) + 16 * 4 + 4
    assert count_parameters(model) == expected
    assert model.feature_names == ("stage1_in", "stage1_out", "stage2_in", "stage2_out", "pool")
    assert model(torch.rand(5, 3, 12, 12)).shape == (5, 4)


def test_odd_sizes_round_up():
    model = build_model("resnet", input_shape=(1, 7, 9), blocks_per_stage=(1, 1, 1, 1), channels=(4, 4, 4, 4))
    feats = model.forward_with_features(torch.rand(1, 1, 7, 9))[1]
    assert feats["stage4_out"].shape == (1, 4, 1, 2)
    assert [s[1:] for s in model.stage_shapes()] == [(7, 9), (4, 5), (2, 3), (1, 2)]


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="one entry per stage"):
        build_model("resnet", blocks_per_stage=(1, 1), channels=(16, 32, 64))
    with pytest.raises(ValueError, match="positive"):
        build_model("resnet", blocks_per_stage=(1, 0, 1))
    with pytest.raises(TypeError, match="sequence"):
        build_model("resnet", channels=16)
    with pytest.raises(ValueError, match="expects input"):
        build_model("resnet", input_shape=(1, 8, 8))(torch.rand(2, 1, 28, 28))
