"""Checkpoints on disk as safetensors: tensors in the file, everything else as JSON beside them.

A kdviz checkpoint is a nested state: ``{"model": state_dict, "optimizer": optimizer.state_dict(),
"hooks": {label: {...}}, "step": 7, ...}`` with dicts (string or integer keys, as an optimizer's
``state`` has), lists, tuples, numbers, strings, None and tensors. safetensors
(github.com/huggingface/safetensors) stores a flat ``{name: tensor}`` map plus string metadata and,
unlike a pickle, can hold no code: loading one never runs anything. So :func:`state_to_bytes`
flattens the state: each tensor goes in the file under its path (``"model/fc1.weight"``,
``"optimizer/state/0/momentum_buffer"``), and the structure, with every plain value, goes as JSON
in the metadata entry ``"kdviz.structure"``, each tensor replaced by ``{"tensor": name}``. Reading
rebuilds the same nested state (integer keys stay integers, tuples stay tuples).

safetensors refuses tensors that share memory (tied weights, a tensor and a view of it), because
the file would then hold two copies that load as unrelated tensors: each tensor after the first
of a shared storage is cloned before saving (loading into a model with tied weights ties them
again, since ``load_state_dict`` copies into the model's own parameters).

Files written by earlier kdviz versions are ``torch.save`` archives; :func:`read_state` still reads
them with ``torch.load(weights_only=True)`` (plain tensors and containers only, never a pickled
object), telling the two formats apart by their first bytes (a zip archive or a pickle, where a
safetensors file starts with its header length).
"""
from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

STRUCTURE_KEY = "kdviz.structure"
FORMAT_KEY = "kdviz.format"
FORMAT_NAME = "kdviz-state-1"
SAFETENSORS_SUFFIX = ".safetensors"


class CheckpointUnreadable(ValueError):
    """A checkpoint file that was not loaded. ``kind`` says why: ``"missing"``, ``"code"`` (a
    torch archive holding more than plain tensors: the weights-only loader refused it),
    ``"corrupt"`` (neither a readable safetensors file nor a torch archive) or ``"structure"``
    (a safetensors file whose kdviz metadata does not match its tensors). The message names the file."""

    def __init__(self, message: str, path: Path, kind: str) -> None:
        super().__init__(message)
        self.path, self.kind = path, kind


# ---- flattening -------------------------------------------------------------------------------
def _tensor_for_file(value: torch.Tensor, seen_storages: set[int]) -> torch.Tensor:
    """``value`` as safetensors can store it: detached, on the CPU, contiguous, strided, and a copy
    when an earlier tensor of this checkpoint shares its memory."""
    if value.layout != torch.strided or value.is_quantized:
        raise TypeError(f"a {value.layout} {'quantized ' if value.is_quantized else ''}tensor cannot be stored; "
                        "convert it to a dense tensor first")
    tensor = value.detach().cpu().contiguous()
    if tensor.numel() == 0:
        return tensor
    storage = tensor.untyped_storage().data_ptr()
    if storage in seen_storages:
        return tensor.clone()
    seen_storages.add(storage)
    return tensor


def flatten_state(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], Any]:
    """``(tensors, structure)``: every tensor of ``state`` by its ``/``-joined path, and a JSON-able
    structure in which dicts are ``{"dict": [[key, value], ...]}``, lists ``{"list": [...]}``,
    tuples ``{"tuple": [...]}`` and tensors ``{"tensor": name}``. A value of any other type is a
    ``TypeError`` naming its path."""
    tensors: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()

    def encode(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            name, n = path or "tensor", 1
            while name in tensors:  # a key holding "/" could repeat another path: keep both
                n += 1
                name = f"{path}#{n}"
            try:
                tensors[name] = _tensor_for_file(value, seen_storages)
            except TypeError as exc:
                raise TypeError(f"checkpoint entry {path!r}: {exc}") from None
            return {"tensor": name}
        if isinstance(value, Mapping):
            items = []
            for key, item in value.items():
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise TypeError(f"checkpoint entry {path!r} has a key {key!r} of type {type(key).__name__}; "
                                    "only string and integer keys are stored")
                items.append([key, encode(item, f"{path}/{key}" if path else str(key))])
            return {"dict": items}
        if isinstance(value, (list, tuple)):
            kind = "tuple" if isinstance(value, tuple) else "list"
            return {kind: [encode(item, f"{path}/{i}") for i, item in enumerate(value)]}
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"checkpoint entry {path!r} holds a {type(value).__name__}; only tensors, dicts, lists, "
                        "tuples, numbers, strings and None are stored")

    return tensors, encode(state, "")


def unflatten_state(tensors: Mapping[str, torch.Tensor], structure: Any) -> Any:
    """The nested state :func:`flatten_state` flattened; a ``KeyError`` or ``ValueError`` when the
    structure names a tensor the file lacks or has a node of no known kind."""

    def decode(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            raise ValueError(f"structure node with keys {sorted(node)[:4]} is not a dict, list, tuple or tensor")
        (kind, body), = node.items()
        if kind == "tensor":
            return tensors[body]
        if kind == "dict":
            return {key: decode(item) for key, item in body}
        if kind == "list":
            return [decode(item) for item in body]
        if kind == "tuple":
            return tuple(decode(item) for item in body)
        raise ValueError(f"structure node of unknown kind {kind!r}")

    return decode(structure)


# ---- bytes and files --------------------------------------------------------------------------
def state_to_bytes(state: Mapping[str, Any]) -> bytes:
    """The safetensors file of ``state`` (see the module docstring), as bytes."""
    tensors, structure = flatten_state(state)
    metadata = {FORMAT_KEY: FORMAT_NAME, STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"))}
    return safetensors.torch.save(tensors, metadata=metadata)


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file: its first 8 bytes are the little-endian length
    of a JSON header, which holds it (safetensors' format, README "Format")."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size].decode("utf-8"))
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise ValueError("the __metadata__ entry is not a map")
    return metadata


def state_from_bytes(data: bytes, where: str | os.PathLike = "<bytes>") -> Any:
    """The state in safetensors bytes: the nested state for a kdviz file, the plain
    ``{name: tensor}`` map for any other safetensors file. ``CheckpointUnreadable`` when corrupt."""
    path = Path(where)
    try:
        tensors = safetensors.torch.load(data)
        metadata = _safetensors_metadata(data)
    except (safetensors.SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise CheckpointUnreadable(f"{path} is corrupt or truncated (not a safetensors or torch checkpoint file: "
                                   f"{' '.join(str(exc).split())[:120]}) and was not loaded", path, "corrupt") from None
    if STRUCTURE_KEY not in metadata:
        return tensors
    try:
        return unflatten_state(tensors, json.loads(metadata[STRUCTURE_KEY]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointUnreadable(f"{path}: its kdviz structure does not match the tensors it holds ({exc}); "
                                   "it was not loaded", path, "structure") from None


def atomic_write(path: str | os.PathLike, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``: a reader
    or a killed process never sees half a file; ``fsync`` also survives a power cut."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_state(path: str | os.PathLike, state: Mapping[str, Any], fsync: bool = True) -> Path:
    """Save ``state`` as a safetensors file at ``path``, atomically."""
    return atomic_write(path, state_to_bytes(state), fsync=fsync)


def is_torch_archive(data: bytes) -> bool:
    """True for what ``torch.save`` writes (a zip archive, ``PK``, or before torch 1.6 a raw pickle,
    ``\\x80``) and not a safetensors file (whose 8-byte header length is followed by ``{``)."""
    size = int.from_bytes(data[:8], "little")
    if data[8:9] == b"{" and 2 <= size <= len(data) - 8:
        return False
    return data[:4] == b"PK\x03\x04" or data[:1] == b"\x80"


def _torch_load(data: bytes, path: Path, map_location: Any) -> Any:
    """An old ``torch.save`` checkpoint, loaded weights-only (plain tensors and containers)."""
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False (running the file's code): never repeat it
        buffer = io.BytesIO(data)
        if data[:1] == b"\x80" or zipfile.is_zipfile(buffer):
            raise CheckpointUnreadable(f"{path} is not a plain-tensor checkpoint and was not loaded", path, "code") from None
        raise CheckpointUnreadable(f"{path} is corrupt (not a torch checkpoint file) and was not loaded", path, "corrupt") from None
    except Exception:  # noqa: BLE001 - torch raises several types for truncated or foreign archives
        raise CheckpointUnreadable(f"{path} is corrupt or truncated and was not loaded", path, "corrupt") from None


def _to_device(value: Any, device: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def read_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """A checkpoint file's state, its tensors on ``map_location``: a safetensors file (kdviz's
    nested state, or a plain tensor map), or an old ``torch.save`` file loaded weights-only. A
    missing, corrupt or code-holding file is a :class:`CheckpointUnreadable` naming it; nothing in
    the file runs."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise CheckpointUnreadable(f"{path} does not exist", path, "missing") from None
    if is_torch_archive(data):
        return _torch_load(data, path, map_location)
    return _to_device(state_from_bytes(data, path), torch.device(map_location))
