"""The deployable forms of one trained model whose CPU speed ``kdviz.deploy.latency`` measures.

* **dense**: the model as trained (float32).
* **shrunk**: filter / neuron pruning made physical (``kdviz.prune.structured.prune_structured``, Li et
  al. ICLR 2017, section 3.1): a smaller dense model of the same class. Its source is the dense model
  with the removed units zeroed, which it reproduces exactly (module docstring there).
* **sparse**: unstructured magnitude pruning (Han et al. 2015) stored as torch sparse CSR: each
  ``nn.Linear`` becomes ``SparseCSRLinear`` (``weight.to_sparse_csr()``, y = (W x^T)^T + b by
  ``torch.sparse.mm``). Convolutions stay dense (torch has no sparse convolution on CPU). Its source is
  the dense model with the same magnitude masks applied.
* **int8 static**: torch.ao static quantization in FX graph mode (``prepare_fx`` / ``convert_fx``, the
  engine's default qconfig: per-channel int8 weights, uint8 activations whose ranges are observed on
  calibration images): convolutions and Linear layers both run as quantized kernels. Its source is
  the dense model.
* **int8**: torch.ao dynamic quantization (``quantize_dynamic``: int8 weights per tensor, activations
  quantized on the fly per batch) of every ``nn.Linear`` on the x86 / fbgemm engine; convolutions stay
  float. Its source is the dense model (predictions agree within a tolerance, not exactly).

* **codebook** (only for a weight-shared model, e.g. a k-means run: Han, Mao, Dally ICLR 2016, section 3):
  each shared layer stored as b-bit indices into its table of distinct values (b = ceil(log2 of their
  count)), the other tensors as float32. On this CPU it runs as dense float32: the indices are decoded
  into an ordinary weight matrix when loaded (torch has no kernel that computes from a codebook), so
  it saves bytes, not time. Its source is the dense model, which it reproduces exactly.

Semi-structured 2:4 kernels (``torch.sparse.to_sparse_semi_structured``) exist only for CUDA in torch
2.x: ``semi_structured_on_cpu()`` tries one and returns torch's own message, which the report shows.
"""
from __future__ import annotations

import copy
import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..prune.magnitude import check_sparsity, layerwise_magnitude_masks
from ..prune.masks import prunable_weights
from ..prune.structured import layout_of, prune_structured, zero_removed_units

INT8_ENGINES = ("x86", "fbgemm")


class SparseCSRLinear(nn.Module):
    """A Linear layer whose weight is a torch sparse CSR matrix: y = (W_csr @ x^T)^T + b."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the report says what it measured
            warnings.simplefilter("ignore", UserWarning)
            self.weight_csr = linear.weight.detach().to_sparse_csr()
        self.bias = None if linear.bias is None else linear.bias.detach().clone()
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        out = torch.sparse.mm(self.weight_csr, flat.t()).t()
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def stored_bytes(self) -> int:
        w = self.weight_csr
        parts = [w.values(), w.col_indices(), w.crow_indices()] + ([self.bias] if self.bias is not None else [])
        return sum(t.numel() * t.element_size() for t in parts)


def _replace_linears(model: nn.Module, build) -> nn.Module:
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Linear):
            setattr(model, name, build(child))
        else:
            _replace_linears(child, build)
    return model


def to_sparse_csr_model(masked: nn.Module) -> nn.Module:
    """A copy of ``masked`` (weights already zero where pruned) with every Linear as ``SparseCSRLinear``."""
    return _replace_linears(copy.deepcopy(masked).eval(), SparseCSRLinear)


def int8_engine() -> str:
    """The quantized engine used for int8: x86 if torch has it here, else fbgemm; a ``RuntimeError`` otherwise."""
    supported = torch.backends.quantized.supported_engines
    for engine in INT8_ENGINES:
        if engine in supported:
            return engine
    raise RuntimeError(f"no x86/fbgemm quantized engine in this torch (supported: {supported})")


def to_int8_model(model: nn.Module) -> nn.Module:
    """torch.ao dynamic int8 quantization of every Linear (weights int8 per tensor, activations per batch)."""
    torch.backends.quantized.engine = int8_engine()
    with warnings.catch_warnings():  # torch 2.13 marks torch.ao quantization deprecated; it still runs
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def shared_weights(model: nn.Module, max_bits: int = 8) -> dict[str, int]:
    """Bits of a codebook index per weight-shared prunable weight of ``model``: those whose non-zero
    entries take at most 2^``max_bits`` distinct values, each used twice or more on average (a
    k-means run: 2^b centroids; a trained or pruned float layer has about as many values as weights).
    b = ceil(log2(number of distinct values, zero included)), at least 1. Empty: nothing is shared."""
    out = {}
    for name, weight in prunable_weights(model).items():
        values = weight.detach().flatten()
        nonzero = values[values != 0]
        distinct_nonzero = int(torch.unique(nonzero).numel())
        if nonzero.numel() == 0 or distinct_nonzero > 2 ** max_bits or 2 * distinct_nonzero > nonzero.numel():
            continue
        distinct = int(torch.unique(values).numel())
        out[name] = max(1, math.ceil(math.log2(distinct)))
    return out


class CodebookModel(nn.Module):
    """A weight-shared model as it is stored and loaded: per shared weight (by parameter name), integer
    indices (``indices[name]``) into a codebook of its distinct values (``codebooks[name]``), decoded
    once into a dense float32 copy of the model (``decoded``) that every forward runs. ``stored_bytes``:
    the indices packed at ``bits[name]`` bits each, the codebooks and every other tensor as float32."""

    def __init__(self, model: nn.Module, bits: Mapping[str, int]) -> None:
        super().__init__()
        self.bits = dict(bits)
        self.decoded = copy.deepcopy(model).eval()
        self.indices, self.codebooks = {}, {}
        params = dict(self.decoded.named_parameters())
        with torch.no_grad():
            for name in self.bits:
                codebook, index = torch.unique(params[name].detach(), return_inverse=True)
                self.codebooks[name], self.indices[name] = codebook, index.to(torch.int32)
                params[name].copy_(codebook[self.indices[name].long()])  # decoding: exactly the shared weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoded(x)

    def stored_bytes(self) -> int:
        rest = sum(t.numel() * t.element_size() for n, t in self.decoded.state_dict().items() if n not in self.bits)
        packed = sum(math.ceil(self.indices[n].numel() * b / 8) for n, b in self.bits.items())
        return rest + packed + sum(c.numel() * c.element_size() for c in self.codebooks.values())


def stored_bytes(model: nn.Module) -> int:
    """Bytes of what the model holds: CSR parts for sparse layers, packed indices and codebooks for a
    ``CodebookModel``, ``torch.save`` of the rest (packed int8 weights with their scales for quantized layers)."""
    if isinstance(model, CodebookModel):
        return model.stored_bytes()
    sparse = [m for m in model.modules() if isinstance(m, SparseCSRLinear)]
    if sparse:
        dense_rest = sum(p.numel() * p.element_size() for n, p in model.state_dict().items()
                         if not any(n.startswith(f"{k}.") for k, m in model.named_modules() if isinstance(m, SparseCSRLinear)))
        return dense_rest + sum(m.stored_bytes() for m in sparse)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def semi_structured_on_cpu() -> str | None:
    """None when torch runs a 2:4 semi-structured sparse matmul on CPU here; else torch's reason."""
    try:
        from torch.sparse import to_sparse_semi_structured

        weight = torch.tensor([[1.0, 0.0, 2.0, 0.0] * 16] * 64)
        torch.mm(to_sparse_semi_structured(weight), torch.ones(64, 8))
    except Exception as exc:  # noqa: BLE001 - any failure means "not on this CPU"; its text is the answer
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return None


@dataclass
class DeployForm:
    """One form: its model, the model its predictions are checked against, and how exactly."""

    name: str
    model: nn.Module
    source: nn.Module
    note: str


def to_static_int8_model(model: nn.Module, calibration: torch.Tensor, batch: int = 64) -> nn.Module:
    """torch.ao static int8 quantization in FX graph mode (x86/fbgemm default qconfig: per-channel int8
    weights, uint8 activations with ranges observed on ``calibration`` images): convolutions and
    Linear layers both run as quantized kernels. A model FX cannot trace is a ``RuntimeError``."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = int8_engine()
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():  # deprecation notices of torch.ao in torch 2.13; it still runs
        warnings.simplefilter("ignore")
        try:
            prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping(engine), (calibration[:1],))
        except Exception as exc:  # noqa: BLE001 - FX tracing fails in many ways; the reason is shown
            raise RuntimeError(f"FX graph mode cannot trace {type(model).__name__}: {str(exc).splitlines()[0][:160]}") from None
        with torch.inference_mode():
            for start in range(0, calibration.shape[0], batch):
                prepared(calibration[start:start + batch])
        return convert_fx(prepared)


def _shrunk(dense: nn.Module, shrink: float, skipped: dict[str, str]) -> list[DeployForm]:
    try:
        layout_of(dense)
    except ValueError as exc:
        skipped["shrunk"] = str(exc)
        return []
    pruned = prune_structured(dense, shrink)
    twin = zero_removed_units(copy.deepcopy(dense), pruned.kept)
    return [DeployForm("shrunk", pruned.model.eval(), twin, f"{shrink:.0%} of filters/neurons removed (L1)")]


def _static(dense: nn.Module, calibration: torch.Tensor | None, skipped: dict[str, str]) -> list[DeployForm]:
    if calibration is None:
        skipped["int8 static"] = "no calibration images given"
        return []
    try:
        quantized = to_static_int8_model(dense, calibration)
    except RuntimeError as exc:
        skipped["int8 static"] = str(exc)
        return []
    return [DeployForm("int8 static", quantized, dense,
                       f"static int8 conv and Linear ({int8_engine()}, FX, {calibration.shape[0]} calibration images)")]


def deploy_forms(model: nn.Module, sparsity: float | Mapping[str, float] = 0.9, shrink: float = 0.5,
                 calibration: torch.Tensor | None = None, skipped: dict[str, str] | None = None) -> list[DeployForm]:
    """Dense, shrunk (``shrink`` of each prunable layer's units removed), sparse CSR at magnitude
    ``sparsity`` (one float for every layer, or a dict by parameter name, ``{"fc1.weight": 0.92}``),
    dynamic int8, static int8 calibrated on ``calibration`` images, and, for a weight-shared model
    (``shared_weights``), its codebook form. A form that cannot be built
    here (a model class without a structured layout, a model FX cannot trace, no calibration images)
    is left out and its reason written into ``skipped`` (by form name). A model that was pruned
    already keeps its own zeros as the sparse form's mask when given its own per-layer sparsity."""
    if isinstance(sparsity, Mapping):
        sparsity = {str(k): check_sparsity(v, f"sparsity of {k!r}") for k, v in sparsity.items()}
        shown = f"{sum(sparsity.values()) / max(1, len(sparsity)):.0%} (mean over layers)"
    else:
        sparsity = check_sparsity(sparsity)
        shown = f"{sparsity:.0%}"
    shrink = check_sparsity(shrink, "shrink (units removed)")
    skipped = {} if skipped is None else skipped
    dense = copy.deepcopy(model).eval()
    forms = [DeployForm("dense", dense, dense, "float32 as trained"), *_shrunk(dense, shrink, skipped)]
    masked = copy.deepcopy(dense)
    layerwise_magnitude_masks(masked, sparsity).apply(masked)
    forms.append(DeployForm("sparse", to_sparse_csr_model(masked), masked,
                            f"{shown} of weights pruned, Linear layers as CSR (conv stays dense)"))
    forms.append(DeployForm("int8", to_int8_model(dense), dense,
                            f"dynamic int8 Linear ({int8_engine()} engine; conv stays float)"))
    return forms + _static(dense, calibration, skipped) + _codebook(dense)


def _codebook(dense: nn.Module) -> list[DeployForm]:
    bits = shared_weights(dense)
    if not bits:
        return []
    shown = ", ".join(f"{n.removesuffix('.weight')} {b}" for n, b in bits.items())
    return [DeployForm("codebook", CodebookModel(dense, bits), dense,
                       f"weights as indices into a codebook (bits per layer: {shown}), decoded to dense float32 "
                       "when loaded: it runs as the dense form does")]
