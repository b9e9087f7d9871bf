"""Issue 13, "the cases that already behave": untrusted files in every loader that reads a user's files.

A run folder, a teacher, a pruned model or a reference file may come from anyone (a shared runs
folder, a download, a colleague's USB stick). Each case plants a malicious or malformed file where
kdviz will read it and asserts the outcome: a clear error that names the file and the problem (never
torch's or numpy's advice to load it unsafely), no code executed (a pickle whose ``__reduce__``
would create a marker file leaves no marker), nothing in the run folder rewritten, and no memory
blown up by a member that only *claims* to be huge.

Loaders covered: ``engine.load_checkpoint`` (file and run folder), ``teacher_cache.load_trained_model``
and ``load_teacher``, ``resume.plan_resume`` and ``kdviz resume`` (checkpoint and reference file), a
student started with a malicious ``teacher`` or ``init_from``, ``find_finished_run`` (the teacher
cache), ``prune.load_pruned``, ``run_folder.load_npz`` and ``RunReader`` (snapshots and reference).
The defects this catalogue found in ``load_npz`` (numpy's unsafe advice, raw bytes for a non-array
member, ``BadZipFile`` and ``MemoryError`` escaping the reader) are fixed; their cases now pass.
"""
from __future__ import annotations

import io
import os
import pickle
import resource
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format
import pytest
import torch

from _support.jobs import finished_job
from kdviz.engine import TrainConfig, find_finished_run, load_checkpoint, open_run, start
from kdviz.engine.resume import plan_resume
from kdviz.engine.run_folder import checkpoint_file, load_npz
from kdviz.engine.teacher_cache import load_teacher, load_trained_model
from kdviz.models import build_model
from kdviz.models.checkpoint_io import read_state
from kdviz.prune.masks import load_pruned, save_pruned
from kdviz.prune.magnitude import magnitude_masks

MAX_CONCURRENT = 1
HIDDEN = [8]
ENV = {**os.environ, "KDVIZ_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


# -- payloads: each would leave a marker file if any loader unpickled it ---------------------------

class OpensMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class RunsShell(OpensMarker):
    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class ExecsCode(OpensMarker):
    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


PAYLOADS = {"open": OpensMarker, "os.system": RunsShell, "exec": ExecsCode}


def _payloads_work(marker: Path) -> None:
    """Control: unpickled without protection, every payload does create the marker."""
    for make in PAYLOADS.values():
        pickle.loads(pickle.dumps(make(marker)))
        assert marker.exists(), make.__name__
        marker.unlink()


def write_checkpoint(path: Path, state: dict, payload: object, fmt: str) -> None:
    """``state`` with ``payload`` hidden among the model's tensors, saved as a torch zip checkpoint,
    torch's legacy (pre-1.6) format or a bare pickle. Planted as a run's ``last.pt``, it replaces the
    run's ``last.safetensors``: a run folder of an older kdviz, whose torch.save checkpoint is the one read."""
    state = {**state, "model": {**state["model"], "fc1.evil": payload}}
    if path.name == "last.pt":
        (path.parent / "last.safetensors").unlink(missing_ok=True)
    if fmt == "zip":
        torch.save(state, path)
    elif fmt == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(state, protocol=2))


def npz_with_declared_shape(path: Path, member: str, shape: tuple[int, ...]) -> None:
    """An .npz whose member's header claims ``shape`` (float64) but holds 64 bytes."""
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, header.getvalue() + b"\0" * 64)


def folder_bytes(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name != "writer.lock"}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, manager):
    """One tiny finished run (MLP, 1 epoch of digits, 6 snapshots): the template every case copies."""
    root = tmp_path_factory.mktemp("clean")
    cfg = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": HIDDEN}, epochs=1, snapshot_every=5,
                      runs_root=str(root), name="clean")
    return Path(finished_job(cfg, manager).path)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    _payloads_work(path)
    yield path
    assert not path.exists(), "a loader executed code from an untrusted file"


@pytest.fixture
def run_copy(clean_run, tmp_path):
    """A copy of the clean run to plant files in (its writer lock dropped: no process owns it)."""
    copy = tmp_path / "runs" / clean_run.name
    shutil.copytree(clean_run, copy)
    (copy / "writer.lock").unlink(missing_ok=True)
    return copy


def _state(run: Path) -> dict:
    return read_state(checkpoint_file(run))


def _mlp():
    return build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=HIDDEN)


def assert_refused(excinfo, path: Path) -> None:
    text = str(excinfo.value)
    assert str(path) in text and "not a plain-tensor checkpoint and was not loaded" in text, text
    assert "weights_only" not in text and "\x1b" not in text, text  # never torch's advice to load it unsafely


# -- checkpoints ---------------------------------------------------------------------------------

CHECKPOINT_LOADERS = {
    "load_checkpoint(file)": lambda run: load_checkpoint(run / "checkpoints" / "last.pt"),
    "load_checkpoint(run folder)": lambda run: load_checkpoint(run),
    "load_trained_model": lambda run: load_trained_model(run),
    "load_teacher": lambda run: load_teacher(run),
    "plan_resume": lambda run: plan_resume(run, epochs=3),
}


@pytest.mark.parametrize("fmt", ["zip", "legacy", "raw-pickle"])
@pytest.mark.parametrize("loader", list(CHECKPOINT_LOADERS))
def test_checkpoint_loaders_refuse_malicious_pickles(run_copy, marker, loader, fmt):
    ckpt = run_copy / "checkpoints" / "last.pt"
    payload = list(PAYLOADS.values())[len(loader) % len(PAYLOADS)](marker)
    write_checkpoint(ckpt, _state(run_copy), payload, fmt)
    before = folder_bytes(run_copy)
    with pytest.raises(ValueError) as excinfo:
        CHECKPOINT_LOADERS[loader](run_copy)
    assert_refused(excinfo, ckpt)
    assert folder_bytes(run_copy) == before  # a refused load (or resume) rewrites nothing


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_load_pruned_refuses_malicious_pickles(tmp_path, marker, payload):
    model = _mlp()
    good = save_pruned(model, magnitude_masks(model, 0.5), tmp_path / "pruned.pt")
    saved = read_state(good)
    evil = tmp_path / "evil.pt"
    torch.save({**saved, "extra": PAYLOADS[payload](marker)}, evil)
    with pytest.raises(ValueError) as excinfo:
        load_pruned(_mlp(), evil)
    assert_refused(excinfo, evil)


@pytest.mark.parametrize("field", ["teacher", "init_from"])
def test_student_of_a_malicious_run_fails_with_a_clear_message(run_copy, marker, manager, tmp_path, field):
    ckpt = run_copy / "checkpoints" / "last.pt"
    write_checkpoint(ckpt, _state(run_copy), OpensMarker(marker), "zip")
    before = folder_bytes(run_copy)
    extra = {"method": "kd", "teacher": str(run_copy)} if field == "teacher" else {"init_from": str(run_copy)}
    job = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": HIDDEN}, epochs=1,
                            runs_root=str(tmp_path / "students"), **extra), manager)
    status = job.wait(120)
    assert status.state == "failed"
    assert f"checkpoint {ckpt}: this file is not a plain-tensor checkpoint and was not loaded" in status.message
    assert folder_bytes(run_copy) == before


def test_teacher_cache_passes_over_a_malicious_run(run_copy, marker):
    write_checkpoint(run_copy / "checkpoints" / "last.pt", _state(run_copy), RunsShell(marker), "legacy")
    cfg = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": HIDDEN}, epochs=1, name="clean")
    assert find_finished_run(cfg, run_copy.parent) is None  # the same config, but it is never loaded


def test_cli_resume_of_a_malicious_checkpoint_prints_one_clear_line(run_copy, marker):
    ckpt = run_copy / "checkpoints" / "last.pt"
    write_checkpoint(ckpt, _state(run_copy), ExecsCode(marker), "zip")
    before = folder_bytes(run_copy)
    out = subprocess.run([sys.executable, "-m", "kdviz", "resume", str(run_copy), "--epochs", "3"],
                         capture_output=True, text=True, timeout=120, env=ENV, cwd=run_copy.parent)
    assert out.returncode == 2, out.stderr
    assert "not a plain-tensor checkpoint and was not loaded" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr and "weights_only" not in out.stderr
    assert folder_bytes(run_copy) == before


# -- .npz snapshots and reference files ----------------------------------------------------------

@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_load_npz_refuses_object_arrays(tmp_path, marker, payload):
    path = tmp_path / "snapshot.npz"
    np.savez(path, probe_logits=np.zeros(3), evil=np.array([PAYLOADS[payload](marker)], dtype=object))
    with pytest.raises(ValueError, match="'evil.npy' holds Python objects"):
        load_npz(path)
    assert not marker.exists()


def test_load_npz_of_a_pickle_names_the_file_without_unsafe_advice(tmp_path, marker):
    path = tmp_path / "reference.npz"
    path.write_bytes(pickle.dumps({"probe_images": OpensMarker(marker)}))
    with pytest.raises(ValueError) as excinfo:
        load_npz(path)
    assert str(path) in str(excinfo.value) and "allow_pickle" not in str(excinfo.value)


def test_load_npz_refuses_a_member_that_is_not_an_array(tmp_path, marker):
    path = tmp_path / "snapshot.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("probe_logits.npy", pickle.dumps(OpensMarker(marker)))
    with pytest.raises(ValueError, match="probe_logits"):
        load_npz(path)


def test_load_npz_of_a_pickle_runs_nothing(tmp_path, marker):
    path = tmp_path / "reference.npz"
    path.write_bytes(pickle.dumps({"probe_images": OpensMarker(marker)}))
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        load_npz(path)
    assert not marker.exists()


def _snapshot_files(run: Path) -> list[Path]:
    return sorted((run / "snapshots").glob("0*.npz"))


PLANTS = {
    "object array": lambda path, marker: np.savez(path, evil=np.array([OpensMarker(marker)], dtype=object)),
    "bare pickle": lambda path, marker: path.write_bytes(pickle.dumps({"evil": RunsShell(marker)})),
    "truncated": lambda path, marker: path.write_bytes(path.read_bytes()[:100]),
    "claims 1 GiB": lambda path, marker: npz_with_declared_shape(path, "probe_logits.npy", (2**27,)),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_run_reader_skips_a_bad_snapshot_and_keeps_the_rest(run_copy, marker, plant):
    clean = open_run(run_copy)
    steps = [s.step for s in clean.snapshots_since(0)[0]]
    records = len(clean.metrics())
    bad = _snapshot_files(run_copy)[2]
    PLANTS[plant](bad, marker)
    rss = peak_rss_mb()
    with pytest.warns(RuntimeWarning, match="skipping snapshot entry"):
        reader = open_run(run_copy)
        kept = [s.step for s in reader.snapshots_since(0)[0]]
    assert kept == steps[:2] + steps[3:]  # only the planted one is missing
    assert len(reader.metrics()) == records  # every metric record still there
    assert peak_rss_mb() - rss < 200  # the 1 GiB claim was never materialised


@pytest.mark.parametrize("plant", ["object array", "bare pickle", "truncated"])
def test_run_reader_ignores_a_malicious_reference_file(run_copy, marker, plant):
    PLANTS[plant](run_copy / "snapshots" / "reference.npz", marker)
    with pytest.warns(RuntimeWarning, match="reference.npz: cannot read reference arrays"):
        reader = open_run(run_copy)
        assert reader.reference() == {}
        assert len(reader.snapshots_since(0)[0]) == len(_snapshot_files(run_copy))


@pytest.mark.parametrize("plant", ["object array", "bare pickle", "claims 1 GiB"])
def test_resume_refuses_a_malicious_reference_file_and_writes_nothing(run_copy, marker, plant):
    ref = run_copy / "snapshots" / "reference.npz"
    PLANTS[plant](ref, marker)
    before = folder_bytes(run_copy)
    with pytest.raises(ValueError, match=f"reference file {ref} cannot be read"):
        plan_resume(run_copy, epochs=3)
    assert folder_bytes(run_copy) == before


HUGE = (2**40,)  # 8 TiB of float64, claimed by a 200-byte member


def test_load_npz_of_a_member_claiming_8_tib_fails_fast_without_allocating(tmp_path):
    path = tmp_path / "snapshot.npz"
    npz_with_declared_shape(path, "probe_logits.npy", HUGE)
    rss = peak_rss_mb()
    with pytest.raises((ValueError, MemoryError), match=r"8\.00 TiB|probe_logits"):
        load_npz(path)
    assert peak_rss_mb() - rss < 200


def test_resume_refuses_a_reference_file_claiming_8_tib(run_copy):
    ref = run_copy / "snapshots" / "reference.npz"
    npz_with_declared_shape(ref, "probe_images.npy", HUGE)
    with pytest.raises(ValueError, match=r"cannot be read \(ValueError\)"):
        plan_resume(run_copy, epochs=3)


def test_run_reader_skips_a_snapshot_claiming_8_tib(run_copy):
    npz_with_declared_shape(_snapshot_files(run_copy)[1], "probe_logits.npy", HUGE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = open_run(run_copy)
        assert len(reader.snapshots_since(0)[0]) == len(_snapshot_files(run_copy)) - 1
