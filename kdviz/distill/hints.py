"""FitNets hints: Romero, Ballas, Kahou, Chassang, Gatta, Bengio, "FitNets: Hints for Thin Deep
Nets" (ICLR 2015), section 2.2, eq. (3):

    L_HT(W_Guided, W_r) = 1/2 || u_h(x; W_Hint) - r(v_g(x; W_Guided); W_r) ||^2

u_h is the teacher up to its hint layer, v_g the student up to its guided layer and r a learned
regressor that maps the guided layer's shape onto the hint layer's. As the paper asks, u_h and r
use the same non-linearity (our features are post-ReLU, so ReLU by default).

Regressor (section 2.2): for conv features with equal spatial sizes a 1x1 conv; for conv features
where the guided map is larger (N_g >= N_h) a convolution with kernel N_g - N_h + 1 (no padding),
which maps N_g x N_g onto N_h x N_h "with fewer parameters than a fully connected regressor"; a
guided map smaller than the hint map cannot be reached this way and is an error. When either side
is a fully connected (B, D) feature, a linear layer on the flattened guided feature, reshaped to the
hint's shape.

Reduction: the squared error is summed over all elements of one sample's hint and averaged over
the batch, then halved: ``0.5 * sum((u - r(v))**2) / B``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "none": nn.Identity}


class HintRegressor(nn.Module):
    """r(v_g; W_r): maps student features of shape ``student_shape`` (without batch) to
    ``teacher_shape``; both are (C, H, W) for conv features or (D,) for fully connected ones."""

    def __init__(self, student_shape: tuple[int, ...], teacher_shape: tuple[int, ...], activation: str = "relu") -> None:
        super().__init__()
        self.student_shape = tuple(int(s) for s in student_shape)
        self.teacher_shape = tuple(int(s) for s in teacher_shape)
        for which, shape in (("student", self.student_shape), ("teacher", self.teacher_shape)):
            if len(shape) not in (1, 3) or min(shape) < 1:
                raise ValueError(f"hints: {which} feature shape must be (C, H, W) or (D,), got {shape}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"hints: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        s, t = self.student_shape, self.teacher_shape
        if len(s) == 3 and len(t) == 3:
            kh, kw = s[1] - t[1] + 1, s[2] - t[2] + 1
            if kh < 1 or kw < 1:
                raise ValueError(
                    f"hints: the student's guided map {s[1]}x{s[2]} is smaller than the teacher's hint map "
                    f"{t[1]}x{t[2]}; a FitNets regressor can only shrink maps, so pick a deeper teacher layer "
                    "or an earlier student layer"
                )
            self.kind = "conv"
            self.map: nn.Module = nn.Conv2d(s[0], t[0], kernel_size=(kh, kw))
        else:
            self.kind = "linear"
            self.map = nn.Linear(math.prod(s), math.prod(t))
        self.activation = ACTIVATIONS[activation]()

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if tuple(v.shape[1:]) != self.student_shape:
            raise ValueError(f"hints: regressor expects student features (B, {self.student_shape}), got {tuple(v.shape)}")
        if self.kind == "linear":
            out = self.map(v.flatten(1)).view(v.shape[0], *self.teacher_shape)
        else:
            out = self.map(v)
        return self.activation(out)


def hint_loss(teacher_hint: torch.Tensor, regressed: torch.Tensor) -> torch.Tensor:
    """FitNets eq. (3): 0.5 * ||u_h - r(v_g)||^2 summed per sample, averaged over the batch.

    ``teacher_hint`` (the fixed teacher's hint features) is detached; ``regressed`` is the
    regressor's output on the student's guided features, of the same shape (B, ...) with B >= 1;
    a 1-D tensor or an empty batch is a ``ValueError``.
    """
    for which, x in (("teacher hint", teacher_hint), ("regressed student features", regressed)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"hints: {which} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"hints: {which} must be a batch (B, ...) with B >= 1, got shape {tuple(x.shape)} "
                             "(the mean over no samples is NaN)")
    if teacher_hint.shape != regressed.shape:
        raise ValueError(
            f"hints: teacher hint {tuple(teacher_hint.shape)} and regressed student features "
            f"{tuple(regressed.shape)} must have the same shape"
        )
    diff = teacher_hint.detach() - regressed
    return 0.5 * diff.pow(2).flatten(1).sum(dim=1).mean()
