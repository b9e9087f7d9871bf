"""The slider evaluator gives the same accuracies as evaluating modified models directly."""
import copy

import pytest
import torch
import torch.nn.functional as F

from kdviz.data import load_dataset
from kdviz.models import build_model
from kdviz.quant import SliderEvaluator, kmeans_quantize, low_rank_model, quantize_dequantize, xnor_binarize

torch.set_num_threads(1)


@pytest.fixture(scope="module", params=[128, 10_000], ids=["batches", "one-batch"])
def setup(request):
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.as_tensor(data.train_images), torch.as_tensor(data.train_labels)
    for _ in range(100):
        idx = torch.randint(0, len(x), (64,))
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    images, labels = torch.as_tensor(data.test_images), torch.as_tensor(data.test_labels)
    return model.eval(), images, labels, SliderEvaluator(model, images, labels, batch_size=request.param)


def _direct(model, images, labels, change):
    m = copy.deepcopy(model)
    with torch.no_grad():
        for name, fn in change.items():
            getattr(m, name).weight.copy_(fn(getattr(m, name).weight))
        return float((m(images).argmax(1) == labels).float().mean())


def test_baseline_and_methods_match_direct_evaluation(setup):
    model, images, labels, ev = setup
    before = copy.deepcopy(model.state_dict())
    assert ev.baseline() == pytest.approx(_direct(model, images, labels, {}))
    assert ev.baseline() > 0.85
    layers = ["fc1", "fc2", "fc3"]
    km = {n: (lambda w: kmeans_quantize(w, 2).weight()) for n in layers}
    assert ev.kmeans(2) == pytest.approx(_direct(model, images, labels, km))
    uni = {n: (lambda w: quantize_dequantize(w, 3, True, True)) for n in layers}
    assert ev.uniform(3, symmetric=True, per_channel=True) == pytest.approx(_direct(model, images, labels, uni))
    assert ev.binary("xnor") == pytest.approx(_direct(model, images, labels, {n: xnor_binarize for n in layers}))
    low = low_rank_model(model, {"fc1": 5, "fc2": 7})
    # one test image may flip where the cached projection rounds differently from the dense product
    assert ev.low_rank({"fc1": 5, "fc2": 7}) == pytest.approx(float((low(images).argmax(1) == labels).float().mean()),
                                                              abs=1.01 / len(labels))
    # after all that, the slider evaluator still gives the float accuracy, and the model is untouched
    assert ev.accuracy() == pytest.approx(ev.baseline())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_more_bits_or_rank_do_not_hurt_much_and_caches_fill(setup):
    _, _, _, ev = setup
    assert ev.kmeans(8) >= ev.baseline() - 0.01
    assert ev.low_rank({"fc1": 64}) == pytest.approx(ev.baseline(), abs=0.005)
    assert ("kmeans", 8, "linear", 0) in ev._results and "fc1" in ev._svd
    assert len(ev.kmeans_shared(8)) == 3


def test_bad_slider_inputs(setup):
    _, images, labels, ev = setup
    with pytest.raises(ValueError, match="rank must be in 1..10"):
        ev.low_rank({"fc3": 11})
    with pytest.raises(ValueError, match="bits"):
        ev.kmeans(17)
    with pytest.raises(ValueError, match="unknown layer"):
        ev.low_rank({"fc9": 1})
    with pytest.raises(ValueError, match="as many labels"):
        SliderEvaluator(setup[0], images, labels[:-1])


def test_fixed_input_layer_is_found_and_exact():
    torch.manual_seed(3)
    model = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10).eval()
    images = torch.rand(50, 1, 8, 8)
    images[:, :, 0, :] = 0  # a row of pixels that is zero in every image
    ev = SliderEvaluator(model, images, torch.zeros(50, dtype=torch.long))
    assert list(ev._fixed) == ["fc1"] and int(ev._fixed["fc1"].keep.sum()) == 56
    x = images.reshape(50, -1)
    with torch.no_grad():
        torch.testing.assert_close(ev._fixed["fc1"](ev.images.reshape(50, -1)), model.fc1(x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ev._fixed["fc1"](x.clone() + 1), model.fc1(x + 1))  # another input: plain layer
        u, s, vh = torch.linalg.svd(model.fc1.weight.double(), full_matrices=False)
        w_r = ((u[:, :6] * s[:6]) @ vh[:6]).float()
        torch.testing.assert_close(ev._rank_output("fc1", 6), x @ w_r.T + model.fc1.bias, atol=1e-5, rtol=1e-4)
    conv = SliderEvaluator(build_model("lenet5", input_shape=(1, 8, 8)).eval(), images, torch.zeros(50, dtype=torch.long))
    assert conv._fixed == {}  # a conv net's first Linear sees pooled features, not the images
