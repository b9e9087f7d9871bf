"""Fake-quantize a whole model's Linear and Conv layers: weights and input activations, QAT or LSQ.

Each chosen layer computes ``layer(Q_a(x))`` with the weight ``Q_w(w)``: the weight through a
``torch.nn.utils.parametrize`` parametrization (the latent float weight stays the trainable
parameter), the input through a forward pre-hook. Two kinds of quantizer:

* ``"minmax"`` (QAT, Jacob et al. 2018, sec. 3): weights from their own min/max (per channel by
  default, Krishnamoorthi 2018 sec. 2.2), activations from a moving average of batch ranges;
* ``"lsq"`` (Esser et al. 2020): one learned step per tensor, initialised as in sec. 2.1 from the
  weights and from a calibration batch of inputs, trained with the gradient scale of sec. 2.2;
  ``lsq_init`` starts it from min-max PTQ's step or the MSE-optimal step instead (LSQ+, ``lsq.py``).

As in both papers' experiments, the first and last layers may keep 8 bits (``first_last_bits``): the
first sees raw pixels, the last produces the logits. The quantizer modules are held here, not in
the model, so the model's own ``state_dict`` only gains the parametrization's ``original`` weight;
``QuantizedModel.state_dict`` carries the quantizers (steps, tracked ranges) for checkpoints.
Post-training quantization (``post_training_quantize``) is the same attachment with ranges set once
from calibration data and no training.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from .fake_quant import ActivationFakeQuantizer, WeightFakeQuantizer, check_quant_bits
from .kmeans import select_layers
from .lsq import LSQQuantizer, check_lsq_init

KINDS = ("minmax", "lsq")


class _WeightParametrization(nn.Module):
    """``weight = quantizer(latent weight)``; the quantizer is referenced, not registered, so the
    model's state_dict does not hold it."""

    def __init__(self, quantizer: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "_quantizer", quantizer)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return self._quantizer(original)


@dataclass
class QuantizedModel:
    """The quantized layers of one model: per layer its bits and its weight and input quantizers."""

    kind: str
    bits: dict[str, int]
    weight: dict[str, nn.Module]
    activation: dict[str, nn.Module]
    modules: dict[str, nn.Module]
    _handles: list = field(default_factory=list)

    @property
    def layers(self) -> list[str]:
        return list(self.modules)

    def step_parameters(self) -> list[nn.Parameter]:
        """LSQ's learned steps (weights' then activations'); none for min/max quantizers."""
        return [p for q in (*self.weight.values(), *self.activation.values()) for p in q.parameters()]

    def weight_step(self, layer: str) -> torch.Tensor:
        """The weight step size(s): LSQ's learned s, or the min/max scale S (one per channel)."""
        q, w = self.weight[layer], self.latent_weight(layer)
        return q.step.detach().reshape(-1) if self.kind == "lsq" else q.params(w).scale

    def activation_step(self, layer: str) -> float:
        q = self.activation[layer]
        return float(q.step.detach()) if self.kind == "lsq" else float(q.params().scale[0])

    def weight_grid(self, layer: str) -> torch.Tensor:
        """The representable weight values of ``layer`` (its first channel when per channel)."""
        q = self.weight[layer]
        return q.grid() if self.kind == "lsq" else q.params(self.latent_weight(layer)).grid(0)

    def latent_weight(self, layer: str) -> torch.Tensor:
        return self.modules[layer].parametrizations.weight.original.detach()

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {}
        for role, quantizers in (("weight", self.weight), ("activation", self.activation)):
            for layer, q in quantizers.items():
                state.update({f"{layer}.{role}.{k}": v.detach().cpu().clone() for k, v in q.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the quantizers; a missing or misshapen entry is a ``ValueError`` naming it."""
        for role, quantizers in (("weight", self.weight), ("activation", self.activation)):
            for layer, q in quantizers.items():
                own = {k: state.get(f"{layer}.{role}.{k}") for k in q.state_dict()}
                missing = [k for k, v in own.items() if v is None]
                if missing:
                    raise ValueError(f"checkpoint has no {role} quantizer state {missing} for layer {layer!r}")
                q.load_state_dict(own)

    def remove(self) -> None:
        """Detach every quantizer: the layers keep their latent float weights."""
        for h in self._handles:
            h.remove()
        for module in self.modules.values():
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


def layer_bits(names: list[str], bits: int, first_last_bits: int | None) -> dict[str, int]:
    """``bits`` for every layer, except the first and last at ``first_last_bits`` when it is set."""
    out = {n: check_quant_bits(bits) for n in names}
    if first_last_bits is not None and names:
        for n in (names[0], names[-1]):
            out[n] = check_quant_bits(first_last_bits)
    return out


def _input_hook(quantizer: nn.Module):
    def pre_hook(module: nn.Module, args: tuple) -> tuple:
        quantizer.train(module.training)  # observe ranges in training only, like the layer's own mode
        return (quantizer(args[0]), *args[1:])
    return pre_hook


def _calibration_inputs(model: nn.Module, modules: dict[str, nn.Module], images: torch.Tensor) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda mod, args, n=n: seen.__setitem__(n, args[0].detach()))
               for n, m in modules.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen


def attach_quantizers(model: nn.Module, kind: str, bits: int, calibration: torch.Tensor,
                      first_last_bits: int | None = 8, layers: list[str] | None = None, per_channel: bool | None = None,
                      momentum: float = 0.01, activations: bool = True, lsq_init: str = "paper") -> QuantizedModel:
    """Fake-quantize ``model``'s layers in place (see the module docstring); ``calibration`` images
    set the activation ranges (min/max) or initial steps (LSQ) from the float model's inputs.
    ``per_channel`` (weights): None takes each kind's usual choice, per channel for min/max
    (Krishnamoorthi 2018), one step per tensor for LSQ (Esser et al. 2020). ``lsq_init``: how LSQ's
    weight and input steps start (``lsq.LSQ_INITS``); min/max quantizers take only the default."""
    if kind not in KINDS:
        raise ValueError(f"unknown quantizer kind {kind!r} (known: {', '.join(KINDS)})")
    if check_lsq_init(lsq_init) != "paper" and kind != "lsq":
        raise ValueError(f"lsq_init {lsq_init!r} sets LSQ's first steps; the {kind!r} quantizer has no step to start")
    if per_channel is None:
        per_channel = kind == "minmax"
    modules = select_layers(model, layers)
    if not modules:
        raise ValueError("this model has no Linear or Conv layer to quantize")
    per_layer = layer_bits(list(modules), bits, first_last_bits)
    inputs = _calibration_inputs(model, modules, calibration) if activations else {}
    quantized = QuantizedModel(kind, per_layer, {}, {}, modules)
    for name, module in modules.items():
        b = per_layer[name]
        if kind == "lsq":
            wq: nn.Module = LSQQuantizer(b, signed=True, channels=module.weight.shape[0] if per_channel else 0,
                                         init=lsq_init)
            wq.initialise(module.weight.detach())
        else:
            wq = WeightFakeQuantizer(b, symmetric=True, per_channel=per_channel)
        parametrize.register_parametrization(module, "weight", _WeightParametrization(wq))
        quantized.weight[name] = wq.to(module.weight.device)
        if not activations:
            continue
        x = inputs[name]
        signed = bool(x.min() < 0)
        if kind == "lsq":
            aq: nn.Module = LSQQuantizer(b, signed=signed, per_example=True, init=lsq_init)
            aq.initialise(x)
        else:
            aq = ActivationFakeQuantizer(b, symmetric=signed, momentum=momentum)
            aq.train()
            aq.observe(x)
        quantized.activation[name] = aq.to(x.device)
        quantized._handles.append(module.register_forward_pre_hook(_input_hook(aq)))
    return quantized


def post_training_quantize(model: nn.Module, calibration: torch.Tensor, bits: int, first_last_bits: int | None = 8,
                           per_channel: bool = True) -> tuple[nn.Module, QuantizedModel]:
    """A fake-quantized copy of a trained ``model`` (PTQ): weight ranges from min/max per channel,
    activation ranges from the calibration images' min/max, nothing trained (Krishnamoorthi 2018, sec. 3.1)."""
    copied = copy.deepcopy(model).eval()
    return copied, attach_quantizers(copied, "minmax", bits, calibration, first_last_bits, per_channel=per_channel,
                                     momentum=1.0)
