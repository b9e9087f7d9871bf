"""The method registry: every run is recognised as its method, options are typed and checked in
start(), plug-ins load in a fresh process, and pages and widgets come from the specs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kdviz.engine import TrainConfig, hook_labels, start
from kdviz.methods import GENERIC_STUDENT, all_methods, get_method, method_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("config, name, label", [
    (dict(method="ce", hooks=[{"name": "prune", "sparsity": 0.37}]), "prune", "pruned to 37%"),
    (dict(method="ce", name="teacher-mlp-digits", hooks=[{"name": "max_norm"}]), "teacher", "teacher"),
    (dict(method="ce"), "scratch", "scratch"),
    (dict(method="ce", init_from="runs/x"), "fine_tune", "fine-tuned"),
    (dict(method="kd", teacher="runs/t", T=7.0), "kd", "KD T=7"),
    (dict(method="kd", teacher="runs/t", hooks=[{"name": "prune"}]), "prune", "pruned to 90%"),
    (dict(method="none", teacher="runs/t", hooks=[{"name": "fsp"}]), "fsp", "FSP stage 1"),
    (dict(method="ce", hooks=[{"name": "kmeans", "bits": 3}]), "kmeans", "k-means 3 bits"),
])
def test_method_of_recognises_each_kind_of_run(config, name, label):
    spec = method_of(TrainConfig(**config))
    assert spec.name == name and spec.run_label(TrainConfig(**config)) == label


def test_a_pruned_fine_tune_is_never_drawn_as_the_scratch_student():
    pruned = method_of(TrainConfig(method="ce", hooks=[{"name": "prune", "sparsity": 0.5}]))
    scratch = get_method("scratch")
    assert pruned.label != scratch.label and pruned.colour != scratch.colour


def test_a_run_no_spec_claims_is_a_generic_student():
    assert method_of(TrainConfig(method="none")) is GENERIC_STUDENT
    assert method_of(TrainConfig(method="ce"), is_teacher=True) is get_method("teacher")


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"No method 'distil' registered \(known: .*kd.*prune"):
        get_method("distil")


def test_start_rejects_a_misspelt_hook_option_before_writing_a_folder(tmp_path):
    for hooks, match in (([{"name": "prune", "sparsty": 0.5}], r"no option.*'sparsty'.*known: sparsity"),
                         ([{"name": "prnue"}], r"No training hook 'prnue' registered \(known: .*prune"),
                         ([{"name": "prune", "sparsity": "lots"}], r"option 'sparsity' must be float"),
                         ([{"name": "hints"}], r"needs the option\(s\) 'student_layer', 'teacher_layer'"),
                         ([{"name": "prune", "sparsity": 1.5}], r"\[0, 1\)")):
        with pytest.raises(ValueError, match=match):
            start(TrainConfig(runs_root=str(tmp_path), hooks=hooks))
    assert list(tmp_path.iterdir()) == []


def test_typed_options_are_read_from_the_hook_signature():
    options = get_method("prune").options()
    assert options["sparsity"].default == 0.9 and not options["sparsity"].required
    assert options["sparsity"].accepts(0.5) and options["sparsity"].accepts({"fc1": 0.5})
    assert not options["sparsity"].accepts("0.5") and not options["start_step"].accepts(1.5)
    assert get_method("hints").options()["student_layer"].required
    assert get_method("kd").options() == {}


def test_a_hook_used_twice_is_read_under_each_label():
    config = TrainConfig(method="ce", hooks=[{"name": "prune", "sparsity": 0.3}, {"name": "prune", "sparsity": 0.6}])
    assert hook_labels(config.hooks) == ["prune0", "prune1"]
    arrays = {}
    for label, s in (("prune0", 0.3), ("prune1", 0.6)):
        arrays.update({f"{label}/layers": np.array(["fc1"]), f"{label}/sparsity": np.array([s]),
                       f"{label}/target": np.array([s]), f"{label}/threshold": np.array([0.1]),
                       f"{label}/weights": np.array([100])})
    spec = get_method("prune")
    assert [spec.read_snapshot(arrays, config, which=k).sparsity[0] for k in (0, 1)] == [0.3, 0.6]
    with pytest.raises(ValueError, match="uses the 'prune' hook 2 time"):
        spec.read_snapshot(arrays, config, which=2)
    with pytest.raises(ValueError, match="no 'prune' hook"):
        spec.read_snapshot(arrays, TrainConfig(method="ce"))


def test_every_spec_is_complete():
    names = [spec.name for spec in all_methods()]
    assert len(names) == len(set(names))
    for spec in all_methods():
        assert spec.label and spec.summary and spec.colour.startswith("#")
        if spec.hook is not None:
            spec.options()  # the signature is readable


def test_a_fresh_process_finds_every_hook_without_importing_methods(tmp_path):
    """The CLI (and a resumed run) load the method plug-ins on the first lookup."""
    hook = json.dumps({"name": "prune", "sparsity": 0.5, "schedule": "one-shot"})
    cmd = [sys.executable, "-m", "kdviz", "train", "--dataset", "digits", "--model", "mlp", "--max-steps", "3",
           "--runs-root", str(tmp_path), "--hook", hook, "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stdout
    listed = subprocess.run([sys.executable, "-m", "kdviz", "hooks"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "prune(sparsity: float | Mapping[str, float] = 0.9" in listed.stdout
    bad = subprocess.run([*cmd[:-3], "--hook", json.dumps({"name": "prune", "sparsty": 0.5})],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "'sparsty'" in bad.stderr
