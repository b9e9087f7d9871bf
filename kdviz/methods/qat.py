"""The ``"qat"`` and ``"lsq"`` training hooks and methods: training with fake-quantized weights and
activations (``kdviz.quant.qat_model``), usually fine-tuning a trained float model (``init_from``).

* ``"qat"``: Jacob et al. 2018 (eq. 1-2, sec. 3): weights quantized with ranges from their own
  min/max (per channel by default), input activations with a moving-average range, rounding passed
  straight through (Bengio et al. 2013).
  ``{"name": "qat", "bits": 4, "first_last_bits": 8, "per_channel": true, "momentum": 0.01}``
* ``"lsq"``: Esser et al. 2020 (LSQ): one learned step size per weight tensor and per layer input,
  initialised to 2<|v|>/sqrt(Q_P), trained with the gradient scale g = 1/sqrt(N Q_P).
  ``{"name": "lsq", "bits": 2, "first_last_bits": 8, "per_channel": false, "init": "paper"}`` (the paper's
  one step per weight tensor; ``per_channel``: one learned step per output channel, each with its own N
  in g; ``init``: the first steps, ``"paper"`` 2<|v|>/sqrt(Q_P), ``"minmax"`` min-max PTQ's scale, so
  LSQ starts from the PTQ model, or ``"mse"`` the step of least quantization error, as LSQ+ (Bhalgat
  et al. 2020) advises: ``kdviz.quant.lsq``)

The first and last layers keep ``first_last_bits`` (8, as in both papers' experiments; ``null``: the
same ``bits`` everywhere). The activation ranges or steps are set at setup from ``calibration`` training
images passed through the float model, so the first evaluation is already the quantized model's.
LSQ's steps join the optimizer as one more parameter group (``extra_parameters``); the quantizers'
state travels in the hook's checkpoint (``state_dict``), so a resumed run continues with the same steps.

Metrics per evaluation (under the hook's label): ``w_step/<layer>`` (LSQ's s; QAT's mean scale over
channels) and ``a_step/<layer>``. Snapshot arrays: ``layers``, ``bits``, ``w_step``, ``a_step`` (one per
layer, in order), and per layer ``hist_counts/<layer>``, ``hist_edges/<layer>`` (the latent float
weights) and ``grid/<layer>`` (the representable values: the quantization grid the weights snap to; with QAT's
per-channel scales, the first output channel's grid).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..engine.hooks import HOOKS, TrainContext, TrainingHook, validate_hook_spec
from ..palette import OKABE_ITO, ROLE_COLORS
from ..quant.fake_quant import check_quant_bits
from ..quant.histograms import weight_histogram
from ..quant.lsq import LSQ_INITS
from ..quant.qat_model import QuantizedModel, attach_quantizers
from .base import MethodSpec, PageSpec, register_method, uses_hook

QAT_NAME, LSQ_NAME = "qat", "lsq"


def calibration_images(ctx: TrainContext, count: int) -> torch.Tensor:
    """The first ``count`` training images: they set activation ranges and LSQ's first steps (never test images)."""
    return torch.as_tensor(ctx.dataset.train_images[:count], dtype=torch.float32, device=ctx.device)


def _check_options(hook: str, bits, first_last_bits, calibration, bins, layers) -> None:
    try:
        check_quant_bits(bits)
        if first_last_bits is not None:
            check_quant_bits(first_last_bits)
    except ValueError as exc:
        raise ValueError(f"{hook}: {exc} (bits {bits!r}, first_last_bits {first_last_bits!r})") from None
    for name, value in (("calibration", calibration), ("bins", bins)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{hook}: {name} must be a positive whole number, got {value!r}")
    if layers is not None and (not layers or not all(isinstance(x, str) for x in layers)):
        raise ValueError(f"{hook}: layers must be a non-empty list of layer names or null (all), got {layers!r}")


class _QuantHook(TrainingHook):
    """What QAT and LSQ share: attach the quantizers at setup, report steps, histograms and grids."""

    kind = ""

    def __init__(self, bits: int, first_last_bits: int | None, layers: Sequence[str] | None, calibration: int,
                 bins: int) -> None:
        self.bits, self.first_last_bits = bits, first_last_bits
        self.layers = list(layers) if layers is not None else None
        self.calibration, self.bins = calibration, bins
        self.quantized: QuantizedModel | None = None
        self._pending: dict[str, torch.Tensor] | None = None

    def _attach(self, ctx: TrainContext) -> QuantizedModel:
        raise NotImplementedError

    def setup(self, ctx: TrainContext) -> None:
        self.quantized = self._attach(ctx)
        if self._pending:
            self.quantized.load_state_dict(self._pending)

    def _ready(self) -> QuantizedModel:
        if self.quantized is None:
            raise RuntimeError(f"{self.kind}: setup(ctx) must run before metrics or snapshots")
        return self.quantized

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        q = self._ready()
        out = {f"w_step/{n}": float(q.weight_step(n).mean()) for n in q.layers}
        out.update({f"a_step/{n}": q.activation_step(n) for n in q.activation})
        return out

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        q = self._ready()
        out: dict[str, np.ndarray] = {
            "layers": np.asarray(q.layers), "bits": np.asarray([q.bits[n] for n in q.layers], dtype=np.int64),
            "w_step": np.asarray([float(q.weight_step(n).mean()) for n in q.layers], dtype=np.float32),
            "a_step": np.asarray([q.activation_step(n) if n in q.activation else np.nan for n in q.layers],
                                 dtype=np.float32),
        }
        for n in q.layers:
            out[f"hist_counts/{n}"], out[f"hist_edges/{n}"] = weight_histogram(q.latent_weight(n).cpu().numpy(), self.bins)
            out[f"grid/{n}"] = q.weight_grid(n).cpu().numpy().astype(np.float32)
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.quantized.state_dict() if self.quantized is not None else {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._pending = dict(state)
        if self.quantized is not None and state:
            self.quantized.load_state_dict(state)


@HOOKS.register(QAT_NAME)
class QATHook(_QuantHook):
    """Quantization-aware training: min/max fake quantization of weights and inputs, straight-through."""

    kind = QAT_NAME

    def __init__(self, bits: int = 4, first_last_bits: int | None = 8, per_channel: bool = True,
                 momentum: float = 0.01, layers: list[str] | None = None, calibration: int = 256, bins: int = 60) -> None:
        _check_options(QAT_NAME, bits, first_last_bits, calibration, bins, layers)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 < momentum <= 1.0:
            raise ValueError(f"{QAT_NAME}: momentum (of the activation range's moving average) must be in (0, 1], "
                             f"got {momentum!r}")
        super().__init__(bits, first_last_bits, layers, calibration, bins)
        self.per_channel, self.momentum = bool(per_channel), float(momentum)

    def _attach(self, ctx: TrainContext) -> QuantizedModel:
        return attach_quantizers(ctx.model, "minmax", self.bits, calibration_images(ctx, self.calibration),
                                 self.first_last_bits, self.layers, per_channel=self.per_channel, momentum=self.momentum)


@HOOKS.register(LSQ_NAME)
class LSQHook(_QuantHook):
    """Learned step size quantization (Esser et al. 2020): the steps are trained with the weights."""

    kind = LSQ_NAME

    def __init__(self, bits: int = 2, first_last_bits: int | None = 8, per_channel: bool = False,
                 layers: list[str] | None = None, calibration: int = 256, bins: int = 60, init: str = "paper") -> None:
        _check_options(LSQ_NAME, bits, first_last_bits, calibration, bins, layers)
        if not isinstance(init, str) or init not in LSQ_INITS:
            raise ValueError(f"{LSQ_NAME}: init (the first step sizes) must be one of {', '.join(LSQ_INITS)}, "
                             f"got {init!r}")
        super().__init__(bits, first_last_bits, layers, calibration, bins)
        self.per_channel, self.init = bool(per_channel), init

    def _attach(self, ctx: TrainContext) -> QuantizedModel:
        return attach_quantizers(ctx.model, "lsq", self.bits, calibration_images(ctx, self.calibration),
                                 self.first_last_bits, self.layers, per_channel=self.per_channel, lsq_init=self.init)

    def extra_parameters(self) -> list[torch.nn.Parameter]:
        return self._ready().step_parameters()


@dataclass(frozen=True)
class QATSnapshot:
    """One snapshot of a ``qat`` or ``lsq`` hook: per layer its bits, weight step, input step, the
    histogram of its latent float weights and the grid of values they are quantized to."""

    layers: list[str]
    bits: dict[str, int]
    weight_step: dict[str, float]
    activation_step: dict[str, float]
    histograms: dict[str, tuple[np.ndarray, np.ndarray]]
    grids: dict[str, np.ndarray]

    def layer(self, name: str) -> str:
        if name not in self.layers:
            raise ValueError(f"layer {name!r} is not quantized in this run (quantized: {self.layers})")
        return name


def read_qat_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> QATSnapshot:
    """The typed reader of a ``qat``/``lsq`` hook's arrays stored under ``label``."""
    pre = f"{label}/" if label else ""
    if f"{pre}layers" not in arrays or f"{pre}w_step" not in arrays:
        raise ValueError(f"these snapshot arrays hold no quantization-aware training data under {pre!r} "
                         f"(was the {QAT_NAME!r} or {LSQ_NAME!r} hook in the run config?)")
    layers = [str(x) for x in np.asarray(arrays[f"{pre}layers"]).tolist()]
    per = {k: np.asarray(arrays[f"{pre}{k}"]) for k in ("bits", "w_step", "a_step")}
    return QATSnapshot(
        layers, {n: int(b) for n, b in zip(layers, per["bits"])}, {n: float(s) for n, s in zip(layers, per["w_step"])},
        {n: float(s) for n, s in zip(layers, per["a_step"])},
        {n: (np.asarray(arrays[f"{pre}hist_counts/{n}"]), np.asarray(arrays[f"{pre}hist_edges/{n}"])) for n in layers},
        {n: np.asarray(arrays[f"{pre}grid/{n}"]) for n in layers})


def step_size_series(records: Sequence[Mapping[str, float]], spec: MethodSpec, config, quantity: str = "w_step"
                     ) -> dict[str, tuple[list[int], list[float]]]:
    """Each layer's step size over the run, from its evaluation records: {layer: (steps, sizes)}.

    ``quantity`` is ``"w_step"`` (weights) or ``"a_step"`` (layer inputs)."""
    if quantity not in ("w_step", "a_step"):
        raise ValueError(f"quantity must be 'w_step' or 'a_step', got {quantity!r}")
    prefix = spec.metric_key(config, quantity) + "/"
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith(prefix) and value is not None:
                steps, sizes = series.setdefault(key[len(prefix):], ([], []))
                steps.append(int(record.get("step", 0)))
                sizes.append(float(value))
    return series


def qat_hook(kind: str, bits: int, **options) -> dict:
    """The config entry of the ``qat`` or ``lsq`` hook (``kind``), checked now: a bad option is a
    ``ValueError`` here, not when the run starts."""
    if kind not in (QAT_NAME, LSQ_NAME):
        raise ValueError(f"kind must be {QAT_NAME!r} or {LSQ_NAME!r}, got {kind!r}")
    entry = {"name": kind, "bits": bits, **options}
    validate_hook_spec(entry)
    return entry


def _bits_of(config, hook: str) -> int:
    entry = next((h for h in config.hooks if h.get("name") == hook), {})
    return int(entry.get("bits", 4 if hook == QAT_NAME else 2))


PAGE = PageSpec("qat", "Quantization-aware training", ":material/stairs:", order=45, section="Compression")

QAT = register_method(MethodSpec(
    name=QAT_NAME, label="QAT", colour=ROLE_COLORS["quantized"],
    summary="quantization-aware training: fake-quantized weights and activations with a straight-through "
            "estimator (Jacob et al. 2018, eq. 1-2)",
    hook=QATHook, claims=uses_hook(QAT_NAME), priority=40, reader=read_qat_snapshot,
    label_run=lambda config: f"QAT {_bits_of(config, QAT_NAME)} bits",
    pages=(PAGE,), widgets={"QATMonitor": "qat"},
))

LSQ = register_method(MethodSpec(
    name=LSQ_NAME, label="LSQ", colour=OKABE_ITO["reddish purple"],
    summary="learned step size quantization with gradient scale 1/sqrt(N Q_P) (Esser et al., ICLR 2020, eq. 3)",
    hook=LSQHook, claims=uses_hook(LSQ_NAME), priority=40, reader=read_qat_snapshot,
    label_run=lambda config: f"LSQ {_bits_of(config, LSQ_NAME)} bits",
))
