"""Import trained weights from a ``.safetensors`` file as a finished kdviz run.

A model trained elsewhere becomes a run folder like any other (``engine.run_folder``): its
``config.json`` names the architecture (a zoo model and its options, or ``"spec"`` with a JSON
layer list), ``checkpoints/`` holds the weights, ``metrics.jsonl`` one evaluation on the chosen
dataset and ``status.json`` says "finished". Every page then offers it where it offers a finished
run: as a teacher, a baseline to prune or quantize, a run to compare.

Why safetensors and never a pickle: a ``torch.save`` file can run code when loaded; a
``.safetensors`` file holds only named tensors (https://github.com/huggingface/safetensors), so a
file from anywhere can be opened. A file that is a pickle is refused with the line that converts it.

The names and shapes are checked against the model before anything is written: a mismatch is a
``ValueError`` listing the missing, unexpected and wrongly shaped tensors. A ``module.`` prefix
(``nn.DataParallel``) is stripped; BatchNorm's ``num_batches_tracked`` may be absent.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..engine import TrainConfig
from ..engine.evaluation import accuracy_and_loss, predict_logits
from ..engine.run_folder import RunFolder, atomic_write_json
from ..engine.setup import dataset_for
from ..models import INIT_LOCK, build_model

SHOWN = 8  # names listed per kind of mismatch before "and N more"
OPTIONAL_KEYS = ("num_batches_tracked",)
PICKLE_ADVICE = ("kdviz never loads pickles (they can run code). Save the weights as safetensors instead: "
                 "from safetensors.torch import save_file; save_file(model.state_dict(), 'weights.safetensors')")


@dataclass(frozen=True)
class ImportedRun:
    """What an import wrote: the run folder and its evaluation on the dataset's test set."""

    path: Path
    test_acc: float
    test_loss: float
    tensors: int


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file; a missing, pickled or corrupt file is a ``ValueError``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        raise ValueError(f"{path.name} is a torch.save / pickle file, not safetensors. {PICKLE_ADVICE}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path.name} is not a readable .safetensors file ({' '.join(str(exc).split())[:200]})") from None
    if not tensors:
        raise ValueError(f"{path.name} holds no tensors")
    return tensors


def _listed(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "scalar"


def match_state(model: nn.Module, tensors: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """``tensors`` as ``model``'s state dict (dtypes converted), or a ``ValueError`` listing every mismatch."""
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    expected = model.state_dict()
    missing = [f"{k} ({_shape(v)})" for k, v in expected.items() if k not in tensors and not k.endswith(OPTIONAL_KEYS)]
    unexpected = [f"{k} ({_shape(v)})" for k, v in tensors.items() if k not in expected]
    wrong = [f"{k} (file {_shape(tensors[k])}, model {_shape(v)})" for k, v in expected.items()
             if k in tensors and tensors[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f"{label}: {_listed(items)}" for label, items in
                 (("missing from the file", missing), ("not in the model", unexpected), ("wrong shape", wrong)) if items]
        raise ValueError(f"the weights do not fit {what}: " + "; ".join(parts)
                         + ". Check the architecture and its options (or the JSON spec) match the model that was saved.")
    state = {k: tensors[k].to(v.dtype) if k in tensors else v for k, v in expected.items()}
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"the weights hold NaN or infinite values in {key}; they were not imported")
    return state


def import_weights(weights: str | os.PathLike, model: str, model_options: dict | None = None, dataset: str = "digits",
                   data_root: str | None = None, runs_root: str | os.PathLike | None = None, name: str | None = None,
                   config_fields: dict[str, Any] | None = None) -> ImportedRun:
    """Check ``weights`` against ``model`` (built for ``dataset``'s image shape and classes) and write a
    finished run folder: config, checkpoint, one evaluation, status. ``config_fields`` are further
    ``TrainConfig`` fields recorded in config.json (nothing is trained). Nothing is written when a
    check fails. Returns the folder and the test accuracy."""
    weights = Path(weights)
    fields = {"epochs": 1, **(config_fields or {})}
    if runs_root is not None:
        fields["runs_root"] = str(runs_root)
    config = TrainConfig(dataset=dataset, data_root=data_root, model=model, model_options=dict(model_options or {}),
                         method="ce", name=name or f"imported-{weights.stem}", **fields).validate()
    tensors = read_safetensors(weights)
    data = dataset_for(config)
    with INIT_LOCK, torch.random.fork_rng(devices=[]):
        net = build_model(model, input_shape=data.input_shape, num_classes=data.num_classes, **config.model_options)
    state = match_state(net, tensors, f"model {model!r} (options {config.model_options}) for {data.name} "
                                      f"({'x'.join(map(str, data.input_shape))} images, {data.num_classes} classes)")
    net.load_state_dict(state)
    device = torch.device("cpu")
    test_acc, test_loss = accuracy_and_loss(predict_logits(net, data.test_images, device), data.test_labels)
    count = min(len(data.train_labels), config.eval_train_samples)
    train_acc, train_loss = accuracy_and_loss(predict_logits(net, data.train_images[:count], device), data.train_labels[:count])
    return _write_run(config, net, data, weights, tensors, (train_acc, train_loss, test_acc, test_loss))


def _write_run(config: TrainConfig, net: nn.Module, data, weights: Path, tensors: dict, scores: tuple) -> ImportedRun:
    train_acc, train_loss, test_acc, test_loss = scores
    folder = RunFolder.create(config)
    try:
        folder.append_metric({"kind": "eval", "step": 0, "epoch": 0.0, "t": 0.0, "train_acc": train_acc,
                              "train_loss": train_loss, "test_acc": test_acc, "test_loss": test_loss, "seq": 1})
        folder.save_checkpoint({
            "model": net.state_dict(), "effective_model": None, "optimizer": {}, "hooks": {}, "step": 0, "epoch": 0.0,
            "elapsed_s": 0.0, "metric_seq": 1, "snapshot_version": 0, "input_shape": list(data.input_shape),
            "num_classes": data.num_classes,
        })
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        atomic_write_json(folder.path / "imported.json", {
            "source": weights.name, "sha256": digest, "tensors": len(tensors), "imported_at": time.time(),
            "test_acc": test_acc, "note": "weights imported from a .safetensors file; not trained by kdviz"})
        message = (f"imported from {weights.name} (not trained here): test accuracy {test_acc:.2%} "
                   f"on {data.name}, {len(data.test_labels):,} test images")
    except BaseException:
        folder.write_status({"state": "failed", "message": "the import stopped before it was written whole"})
        raise
    folder.write_status({"state": "finished", "message": message, "step": 0, "total_steps": 0, "epoch": 0,
                         "elapsed_s": 0.0, "eta_s": None, "queue_position": None, "test_acc": test_acc,
                         "traceback": "", "warning": "", "name": folder.path.name, "path": str(folder.path),
                         "updated": time.time()})
    return ImportedRun(folder.path, test_acc, test_loss, len(tensors))


def spec_options(spec: str | os.PathLike | list | dict) -> dict:
    """``model_options`` of the ``"spec"`` model for a JSON spec (file, text or list)."""
    from ..models.spec import read_spec

    return {"layers": json.loads(json.dumps(read_spec(spec)))}


__all__ = ["ImportedRun", "import_weights", "match_state", "read_safetensors", "spec_options"]
