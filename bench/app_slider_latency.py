"""Server compute after a temperature slider move on the soft-targets page (issue 4: < 50 ms).

A slider move reruns only the page's explorer fragment, whose work is
``kdviz.app.temperature.TemperatureView.figures(T)`` (the probability bars and the entropy-vs-T
curve of ``kdviz.figures.soft_targets``, built once per sample, with T's numbers replaced) plus
what ``st.plotly_chart`` does with each figure (``to_dict`` and ``plotly.io.to_json``). This script
times exactly that, for every slider value, against a baseline measured in the same run: a bare
PyTorch softmax of the same logits and a one-trace plotly bar figure, passed through the same
``to_dict`` and ``to_json``. For context it also times building both figures from scratch with the
figure functions, and (``--apptest``) a whole AppTest rerun after a slider move.

    python bench/app_slider_latency.py [--repeats 5] [--apptest]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdviz import build_model, load_dataset  # noqa: E402
from kdviz.app.temperature import TEMPERATURES, TemperatureView, temperature_figures  # noqa: E402

TARGET_MS = 50.0


def teacher_logits(epochs: int = 3) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Test-set logits of a small MLP trained for a few epochs on digits (plain PyTorch, seeded)."""
    torch.manual_seed(0)
    data = load_dataset("digits")
    model = build_model("mlp", input_shape=data.input_shape, num_classes=10, hidden=(256, 256))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(epochs):
        perm = torch.randperm(len(data.train_labels))
        for i in range(0, len(perm), 64):
            idx = perm[i : i + 64]
            loss = torch.nn.functional.cross_entropy(model(data.train_images[idx]), data.train_labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return model(data.test_images).double(), data.class_names


def time_ms(fn, repeats: int) -> float:
    """Median milliseconds of ``fn()`` over every slider value, ``repeats`` passes."""
    times = []
    for _ in range(repeats):
        for T in TEMPERATURES:
            t0 = time.perf_counter()
            fn(T)
            times.append(1000.0 * (time.perf_counter() - t0))
    return statistics.median(times)


def apptest_rerun_ms(repeats: int) -> float:
    """Median ms of a whole AppTest rerun after a slider move (teacher trained with 2 epochs)."""
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("KDVIZ_RUNS", tempfile.mkdtemp(prefix="kdviz-bench-"))
    os.environ.setdefault("KDVIZ_TEACHER_EPOCHS", "2")
    from kdviz.app.sidebar import LabSettings
    from kdviz.app.teacher import teacher_job

    teacher_job(LabSettings()).wait(300)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    times = []
    for T in list(TEMPERATURES[::3]) * repeats:
        t0 = time.perf_counter()
        at.select_slider[0].set_value(T).run()
        times.append(1000.0 * (time.perf_counter() - t0))
        if at.exception:
            raise RuntimeError(at.exception[0].message)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--apptest", action="store_true", help="also time a whole AppTest rerun")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logits, names = teacher_logits()
    z = logits[0].tolist()
    zt = logits[0]

    view = TemperatureView(z, names)

    def page_compute(T: float) -> None:
        for fig in view.figures(T):
            pio.to_json(fig.to_dict(), validate=False)

    def from_scratch(T: float) -> None:
        for fig in temperature_figures(z, T, names):
            pio.to_json(fig.to_dict(), validate=False)

    def baseline(T: float) -> None:
        probs = torch.softmax(zt / T, dim=-1).numpy()
        pio.to_json(go.Figure(go.Bar(x=list(names), y=probs)).to_dict(), validate=False)

    page_compute(4.0), baseline(4.0), from_scratch(4.0)  # warm up imports and plotly's validators
    page = time_ms(page_compute, args.repeats)
    base = time_ms(baseline, args.repeats)
    scratch = time_ms(from_scratch, 1)
    print(f"slider move, page compute (bars + entropy curve + JSON): {page:.1f} ms median over "
          f"{len(TEMPERATURES) * args.repeats} moves (target < {TARGET_MS:.0f} ms: {'PASS' if page < TARGET_MS else 'FAIL'})")
    print(f"baseline, bare torch softmax + one-bar plotly figure + JSON:  {base:.1f} ms")
    print(f"ratio page / baseline: {page / base:.2f}x")
    print(f"(building both figures from scratch with the figure functions instead: {scratch:.1f} ms)")
    print(f"machine: {len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.1f}")
    if args.apptest:
        print(f"whole AppTest rerun after a slider move (all charts, sidebar; no browser): {apptest_rerun_ms(2):.0f} ms median")


if __name__ == "__main__":
    main()
