"""Movement pruning: keep the weights that move away from zero while fine-tuning, not the large ones.

Sanh, Wolf, Rush, "Movement Pruning: Adaptive Sparsity by Fine-Tuning" (NeurIPS 2020), section 3.
Each weight W_ij gets an importance score S_ij. The layer computes a = (W ⊙ M) x with a mask
M = Top_v(S) ("hard" movement: the v % of largest scores are kept) or M = 1(sigmoid(S) > tau)
("soft" movement, with a penalty lambda * sum sigmoid(S) that pushes scores down). M is not
differentiable, so the paper uses the straight-through estimator (Bengio et al. 2013): the gradient
of the loss reaches S as if M were the identity,

    dL/dS_ij = dL/da_i * x_j * W_ij = (dL/dW'_ij) * W_ij,          W' = W ⊙ M the weight actually used

and with plain gradient descent of rate alpha_S the scores after T steps are (section 3, the
equation below "Movement pruning")

    S_ij^(T) = -alpha_S * sum_{t < T} (dL/dW'_ij)^(t) * W_ij^(t).

A weight moving away from zero (W > 0 while dL/dW < 0, or W < 0 while dL/dW > 0) gains score; one
shrinking towards zero loses it, however large it still is. Magnitude pruning keeps large |W|;
movement keeps what fine-tuning grows. The score accumulates for pruned weights too (the gradient
with respect to W' exists where M = 0), so a pruned weight can come back; its own value W does not
change while it is pruned (dL/dW_ij = dL/da_i * M_ij * x_j = 0).

``MovementPruner`` keeps, per pruned layer, the dense weights W (``latent``), the scores S and the
mask M, and writes W ⊙ M into the model; ``accumulate`` applies the score update above from the
model's ``.grad`` (which *is* dL/dW', the gradient with respect to the weight the forward used). The
score step is plain SGD with rate ``score_lr`` so the equation holds exactly; the paper trains S
with the optimiser of W (Adam), which changes the scale of S but not the idea.

Rounding: hard movement prunes exactly ``floor(s * n + 0.5)`` weights of each layer, as
``kdviz.prune.magnitude`` does, so the two are compared at the same count; Hugging Face's
``TopKBinarizer`` (huggingface/block_movement_pruning) keeps ``int(v * n)`` instead (one weight
more pruned at some n). Soft movement keeps at least ``int(0.005 n) + 1`` weights per layer, the rule
of that repository's ``ThresholdBinarizer``, so a layer is never emptied.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ..registry import Registry
from .magnitude import check_sparsity, mask_from_order, num_to_prune
from .masks import PruningMasks, prunable_weights

MODES: Registry = Registry("movement-pruning mode")
MODES.register("hard")("hard")
MODES.register("soft")("soft")


def score_update(scores: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, score_lr: float,
                 penalty: float = 0.0) -> torch.Tensor:
    """One step of the movement score: S - alpha_S * (dL/dW' * W + lambda * sigmoid'(S)).

    ``grad`` is dL/dW' (the gradient with respect to the masked weight the forward used), ``weight``
    the dense W before this step. ``penalty`` lambda > 0 adds the gradient of soft movement's
    regulariser lambda * sum sigmoid(S) (Sanh et al. 2020, section 3, "soft movement"). Same shapes in and out."""
    step = grad.to(scores.dtype) * weight.to(scores.dtype)
    if penalty:
        sig = torch.sigmoid(scores)
        step = step + penalty * sig * (1.0 - sig)
    return scores - score_lr * step


def top_v_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Hard movement's M = Top_v(S): prune the ``floor(s * n + 0.5)`` lowest scores (ties: the earlier
    flat index is pruned first), keep the rest. Bool, same shape as ``scores``."""
    sparsity = check_sparsity(sparsity)
    flat = scores.detach().flatten().to(torch.float64)
    order = torch.argsort(flat, stable=True)
    return mask_from_order(order, num_to_prune(flat.numel(), sparsity), scores.shape)


def min_kept(n: int) -> int:
    """Soft movement never keeps fewer than ``int(0.005 n) + 1`` of a layer's n weights."""
    return int(0.005 * n) + 1


def threshold_mask(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Soft movement's M = 1(sigmoid(S) > tau), ``threshold`` tau in [0, 1); when fewer than
    ``min_kept(n)`` pass, the ``min_kept(n)`` highest scores are kept instead."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"the soft-movement threshold on sigmoid(score) must be in [0, 1), got {threshold!r}")
    keep = torch.sigmoid(scores.detach()) > float(threshold)
    n = scores.numel()
    if int(keep.sum()) < min_kept(n):
        keep = top_v_mask(scores, (n - min_kept(n)) / n)
    return keep


class MovementPruner:
    """Scores, dense weights and masks of the pruned layers of one model (Sanh et al. 2020, section 3).

    >>> pruner = MovementPruner(model)            # scores 0, everything kept
    >>> loss.backward(); optimizer.step()
    >>> pruner.accumulate(model, score_lr=0.01)   # S -= alpha_S * grad * W; W takes the optimiser's step where kept
    >>> pruner.remask(sparsity=0.5); pruner.apply(model)   # hard: top 50 % by score; writes W ⊙ M
    """

    def __init__(self, model: nn.Module, names: Iterable[str] | None = None, mode: str = "hard") -> None:
        self.mode = MODES.get(mode)
        params = prunable_weights(model, names)
        self.names = list(params)
        self.latent = {n: p.detach().clone() for n, p in params.items()}
        self.scores = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
        self.masks = PruningMasks.dense(model, self.names)

    def accumulate(self, model: nn.Module, score_lr: float, penalty: float = 0.0) -> None:
        """After an optimiser step: add this step's movement to the scores (from the model's ``.grad``,
        taken at the weights before the step, which are ``latent``), then take the optimiser's new
        value of each *kept* weight into ``latent`` (a pruned weight keeps its value: dL/dW = 0 there)."""
        params = prunable_weights(model, self.names)
        with torch.no_grad():
            for n, p in params.items():
                if p.grad is not None:
                    self.scores[n] = score_update(self.scores[n], self.latent[n], p.grad, score_lr, penalty)
                keep = self.masks[n]
                self.latent[n] = torch.where(keep, p.detach(), self.latent[n])

    def remask(self, sparsity: float | None = None, threshold: float | None = None) -> PruningMasks:
        """New masks from the scores: hard mode by ``sparsity`` (Top_v), soft mode by ``threshold``."""
        if self.mode == "hard":
            if sparsity is None:
                raise ValueError("hard movement pruning needs a sparsity (the share of weights pruned)")
            self.masks = PruningMasks({n: top_v_mask(self.scores[n], sparsity) for n in self.names})
        else:
            if threshold is None:
                raise ValueError("soft movement pruning needs a threshold tau on sigmoid(score)")
            self.masks = PruningMasks({n: threshold_mask(self.scores[n], threshold) for n in self.names})
        return self.masks

    def apply(self, model: nn.Module) -> None:
        """Write W ⊙ M into the model's weights, in place."""
        params = prunable_weights(model, self.names)
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(self.latent[n] * self.masks[n])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only: ``latent/<name>``, ``score/<name>``, ``mask/<name>`` (``weights_only`` safe)."""
        state = {f"latent/{n}": t.clone() for n, t in self.latent.items()}
        state.update({f"score/{n}": t.clone() for n, t in self.scores.items()})
        state.update({f"mask/{n}": m.clone() for n, m in self.masks.items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``state_dict`` saved; a missing or misshapen entry is a ``ValueError`` naming it."""
        for n in self.names:
            for kind, store in (("latent", self.latent), ("score", self.scores)):
                key = f"{kind}/{n}"
                if key not in state or tuple(state[key].shape) != tuple(store[n].shape):
                    raise ValueError(f"movement-pruning state lacks {key!r} of shape {tuple(store[n].shape)}")
                store[n] = state[key].to(store[n].dtype).clone()
        self.masks = PruningMasks({n: state[f"mask/{n}"].bool().clone() for n in self.names})


def magnitude_agreement(abs_weight: np.ndarray, kept_by_movement: np.ndarray) -> float:
    """Share of the weights movement keeps that magnitude pruning at the same count would keep too
    (1.0: the same mask; at sparsity s, random masks agree on about 1 - s)."""
    flat_w = np.asarray(abs_weight, dtype=np.float64).ravel()
    kept = np.asarray(kept_by_movement, dtype=bool).ravel()
    k = int(kept.sum())
    if k == 0:
        return 0.0
    by_magnitude = np.zeros_like(kept)
    by_magnitude[np.argsort(-flat_w, kind="stable")[:k]] = True
    return float((by_magnitude & kept).sum() / k)
