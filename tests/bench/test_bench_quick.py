"""The CPU speed benches' ``--quick`` runs end to end and print every ratio the paired way: the median of
per-pair ratios with its IQR, wall and CPU time (``bench/_paired.py``), and the quoted ratio's value is
consistent with the per-side medians they print."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MNIST = Path(os.environ.get("KDVIZ_DATA") or "/work/shared/data/mnist")
RATIO = re.compile(r"^  (?P<name>[^:\n]+): ratio (?P<med>[\d.]+) \[IQR (?P<q1>[\d.]+)-(?P<q3>[\d.]+)\] wall, "
                   r"(?P<cmed>[\d.]+) \[IQR [\d.]+-[\d.]+\] CPU \((?P<n>\d+) pairs", re.MULTILINE)
needs_mnist = pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").is_file() and
                                 not (MNIST / "t10k-images-idx3-ubyte").is_file(), reason=f"no MNIST IDX files in {MNIST}")


def run_quick(script: str, *extra: str) -> str:
    out = subprocess.run([sys.executable, str(BENCH / script), "--quick", *extra], capture_output=True, text=True,
                         timeout=180, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def ratios(stdout: str) -> dict[str, re.Match]:
    found = {m["name"].strip(): m for m in RATIO.finditer(stdout)}
    for m in found.values():  # the median lies inside its IQR
        assert float(m["q1"]) <= float(m["med"]) <= float(m["q3"]), m.group(0)
    return found


def test_train_overhead_quick_prints_paired_ratios_with_verdicts():
    stdout = run_quick("train_overhead.py")
    found = ratios(stdout)
    assert {"engine kd / plain kd (cached)", "engine kd / plain ce"} <= set(found)
    assert all(found[k]["n"] == "3" for k in ("engine kd / plain kd (cached)", "engine kd / plain ce"))
    assert re.search(r"wall target <= 1\.05: (met|MISSED)", stdout)
    assert re.search(r"CPU  target <= 1\.1: (met|MISSED)", stdout)


@needs_mnist
def test_prune_slider_quick_pairs_every_move_with_the_plain_version():
    stdout = run_quick("prune_slider.py", "--root", str(MNIST))
    found = ratios(stdout)
    speedup = found["speed-up plain / kdviz per layer (x faster)"]
    assert speedup["n"] == "4"  # one pair per slider position, 4 positions in the quick run
    assert float(speedup["med"]) > 0 and float(speedup["cmed"]) > 0
    assert "accuracy at each position (identical in both)" in stdout


@needs_mnist
def test_quant_sliders_quick_pairs_every_move_with_a_plain_forward():
    stdout = run_quick("quant_sliders.py", "--root", str(MNIST))
    found = ratios(stdout)
    assert found["bits move (k-means, all inits) / plain eval"]["n"] == "9"  # 3 bit widths x 3 inits
    assert found["rank move (SVD) / plain eval"]["n"] == "3"


def test_load_speed_quick_reports_wall_and_cpu():
    stdout = run_quick("load_speed.py", str(MNIST))
    row = re.search(r"^digits\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s+<1\.0s\s+OK", stdout, re.MULTILINE)
    assert row, stdout
    assert float(row[1]) == float(row[3])  # --quick loads once: first and best are the same call
    assert "load average" in stdout


@needs_mnist
def test_vit_heads_quick_pairs_the_shrunk_model_with_the_dense_one():
    stdout = run_quick("vit_heads.py")
    found = ratios(stdout)
    shrunk = [name for name in found if name.startswith("6 heads removed / dense, batch")]
    assert len(shrunk) == 2, stdout  # batch 1 and batch 256
    assert all(float(found[name]["med"]) > 0 for name in shrunk)


@pytest.mark.slow  # Ray's start-up is most of it
def test_sweep_ray_quick_times_ray_beside_the_engine():
    pytest.importorskip("ray", reason="the sweep extra (pip install 'kdviz[sweep]') is not installed")
    stdout = run_quick("sweep_ray.py")
    engine = re.search(r"^engine, one after another:\s+([\d.]+) s", stdout, re.MULTILINE)
    ray = re.search(r"^Ray Tune \(.*\):\s+([\d.]+) s after ray.init", stdout, re.MULTILINE)
    ratio = re.search(r"^ratio Ray / engine: ([\d.]+);", stdout, re.MULTILINE)
    assert engine and ray and ratio, stdout
    ray_s, engine_s, half = float(ray[1]), float(engine[1]), 0.05  # both times print to 0.1 s
    assert (ray_s - half) / (engine_s + half) <= float(ratio[1]) <= (ray_s + half) / max(engine_s - half, 1e-3)


def test_vit_distill_quick_prints_the_seed_table(tmp_path):
    stdout = run_quick("vit_distill.py", "--runs", str(tmp_path / "runs"))
    assert "ViT distillation" in stdout and "| mean |" in stdout, stdout
    assert any((tmp_path / "runs").iterdir())  # the students ran through the engine
