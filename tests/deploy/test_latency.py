"""The deployable forms (dense, shrunk, sparse CSR, int8) give their source's predictions, hold what
they claim (widths, CSR sparsity, int8 modules), and the latency report has its shape. No timing is
asserted: only that quartiles are ordered and every form was timed the same number of times."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.deploy.formats import (
    CodebookModel, SparseCSRLinear, deploy_forms, int8_engine, shared_weights, stored_bytes,
)
from kdviz.deploy.latency import fixed_threads, latency_report, peak_working_bytes
from kdviz.models import build_model


def trained(name, digits, steps=60, **options):
    torch.manual_seed(1)
    model = build_model(name, input_shape=digits.input_shape, num_classes=10, **options)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(digits.train_labels), (64,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(digits.train_images[idx]), digits.train_labels[idx]).backward()
        opt.step()
    return model.eval()


def test_mlp_forms_match_their_sources_and_hold_what_they_claim(digits, one_thread):
    model = trained("mlp", digits, hidden=(64, 32))
    report = latency_report(model, digits.test_images[:100], sparsity=0.8, shrink=0.25, batches=(1, 16), runs=4, warmup=1)
    assert [f.name for f in report.forms] == ["dense", "shrunk", "sparse", "int8", "int8 static"] and not report.notes
    for name in ("dense", "shrunk", "sparse"):
        form = report.form(name)
        assert form.agreement == 1.0 and form.max_logit_diff < 1e-4, name
    for name in ("int8", "int8 static"):
        assert report.form(name).agreement >= 0.95 and 0 < report.form(name).max_logit_diff < 0.5, name
    forms = {f.name: f for f in deploy_forms(model, sparsity=0.8, shrink=0.25, calibration=digits.test_images[:64])}
    assert forms["shrunk"].model.hidden == (48, 24)  # 64 - floor(0.25 * 64 + 0.5), 32 - 8
    csr = [m for m in forms["sparse"].model.modules() if isinstance(m, SparseCSRLinear)]
    assert len(csr) == 3
    for layer in csr:
        n = layer.in_features * layer.out_features
        assert layer.weight_csr.values().numel() == n - math.floor(0.8 * n + 0.5)
    int8 = [m for m in forms["int8"].model.modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__]
    assert len(int8) == 3 and int8_engine() in ("x86", "fbgemm")
    assert report.form("sparse").model_bytes == stored_bytes(forms["sparse"].model) < report.form("dense").model_bytes
    for form in report.forms:
        assert set(form.timings) == {1, 16}
        for t in form.timings.values():
            assert t.runs == 4 and 0 < t.q1_ms <= t.median_ms <= t.q3_ms
    assert report.ratio("dense", 16) == 1.0 and report.threads == 1
    assert report.semi_structured is None or "cuda" in report.semi_structured.lower() or report.semi_structured


def test_conv_forms_shrink_filters_and_keep_predictions(digits, one_thread):
    model = trained("lenet5", digits, steps=30)
    forms = {f.name: f for f in deploy_forms(model, sparsity=0.5, shrink=0.5)}
    assert forms["shrunk"].model.conv1.out_channels == model.conv1.out_channels // 2
    x = digits.test_images[:50]
    with torch.inference_mode():
        for name in ("shrunk", "sparse"):
            torch.testing.assert_close(forms[name].model(x), forms[name].source(x), atol=1e-4, rtol=1e-4)
        assert isinstance(forms["sparse"].model.conv1, nn.Conv2d)  # convolutions stay dense


def test_peak_working_memory_counts_the_two_live_activations():
    # Linear(784, 300) -> ReLU -> Linear(300, 100) at batch 256: the first output (256 x 300 floats)
    # is alive while ReLU writes its own, so the peak is 2 * 256 * 300 * 4 bytes.
    model = nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100)).eval()
    assert peak_working_bytes(model, torch.randn(256, 784)) == 2 * 256 * 300 * 4


def test_forms_that_cannot_be_built_are_left_out_with_the_reason(one_thread):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    skipped = {}
    forms = deploy_forms(model, sparsity=0.5, skipped=skipped)
    assert [f.name for f in forms] == ["dense", "sparse", "int8"]
    assert "structured-pruning layout" in skipped["shrunk"] and "calibration" in skipped["int8 static"]
    report = latency_report(model, torch.randn(8, 16), batches=(1, 4), runs=3, warmup=0)
    assert [f.name for f in report.forms] == ["dense", "sparse", "int8", "int8 static"]
    assert len(report.notes) == 1 and report.notes[0].startswith("shrunk left out: ")


def test_bad_settings_are_named():
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="threads"):
        with fixed_threads(0):
            pass
    with fixed_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match="runs >= 3"):
        latency_report(model, torch.randn(3, 4), runs=1)
    with pytest.raises(ValueError, match="shrink"):
        deploy_forms(model, shrink=1.5)


def test_static_int8_quantizes_the_convolutions_too(digits, one_thread):
    model = trained("lenet5", digits, steps=30)
    forms = {f.name: f for f in deploy_forms(model, calibration=digits.test_images[:128])}
    kinds = {type(m).__module__ for m in forms["int8 static"].model.modules()}
    assert any("quantized" in k and "intrinsic" in k for k in kinds)  # fused quantized ConvReLU2d
    assert stored_bytes(forms["int8 static"].model) < stored_bytes(forms["dense"].model) / 2


def test_codebook_form_only_for_shared_weights_and_its_bytes_are_indices_plus_codebooks(digits, one_thread):
    model = trained("mlp", digits, steps=20, hidden=(40,))
    assert shared_weights(model) == {}  # trained floats: as many values as weights
    with torch.no_grad():
        model.fc1.weight[model.fc1.weight.abs() < model.fc1.weight.abs().median()] = 0  # pruned: still all distinct
    assert shared_weights(model) == {}
    assert "codebook" not in [f.name for f in deploy_forms(model, sparsity=0.5)]
    with torch.no_grad():  # share 5 values in fc1 (3 bits with zero: 6 values) and 2 in fc2 (1 bit)
        w = model.fc1.weight
        w.copy_(torch.tensor([-0.2, -0.1, 0.1, 0.2, 0.3])[torch.arange(w.numel()) % 5].reshape(w.shape) * (w != 0))
        model.fc2.weight.copy_(torch.where(model.fc2.weight > 0, 0.05, -0.05))
    assert shared_weights(model) == {"fc1.weight": 3, "fc2.weight": 1}
    forms = {f.name: f for f in deploy_forms(model, sparsity=0.5)}
    book = forms["codebook"].model
    assert isinstance(book, CodebookModel) and "dense float32" in forms["codebook"].note
    assert torch.equal(book.decoded.fc1.weight, model.fc1.weight) and torch.equal(book.decoded.fc2.weight, model.fc2.weight)
    x = digits.test_images[:30]
    assert torch.equal(book(x), model(x))  # decoded: computes exactly as the dense model
    n1, n2 = model.fc1.weight.numel(), model.fc2.weight.numel()
    want = math.ceil(n1 * 3 / 8) + 6 * 4 + math.ceil(n2 * 1 / 8) + 2 * 4 + (model.fc1.bias.numel() + model.fc2.bias.numel()) * 4
    assert stored_bytes(book) == want


PROFILE_IN_A_THREAD = """
import threading, torch
from kdviz.deploy.latency import peak_working_bytes, prime_profiler
prime_profiler()
thread = threading.Thread(target=lambda: print(peak_working_bytes(torch.nn.Linear(4, 4), torch.ones(8, 4))))
thread.start()
thread.join()
"""


def test_priming_the_profiler_keeps_a_measuring_thread_quiet(tmp_path):
    """Kineto's first use outside the main thread prints "External init callback must run in same thread as
    registerClient" (into a notebook's output, under a SpeedMeter); primed on the main thread, it does not.
    A fresh process: in this one the profiler may have started already."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "profile_in_a_thread.py"
    script.write_text(PROFILE_IN_A_THREAD)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-1500:]
    assert int(out.stdout.split()[-1]) > 0  # the thread measured
    assert "registerClient" not in out.stderr, out.stderr[-500:]
