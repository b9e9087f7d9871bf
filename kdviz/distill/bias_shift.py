"""Per-class errors of a classifier whose output biases are shifted: Hinton et al.'s dark knowledge.

Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network", section 3: a student
distilled from a transfer set with every 3 removed has never been told that anything is a 3, yet
"most of the errors are on the 3s because the learned bias for the 3 class is too low"; raising
that bias by 3.5 makes it get 98.6 % of the test 3s right. The soft targets of the other digits
carried what a 3 looks like (their small "3" probabilities, the dark knowledge); only the class's
prior is missing.

Adding ``delta_c`` to the bias of output unit ``c`` of the final layer adds ``delta_c`` to logit
``c`` of every input, ``z'_c = z_c + delta_c`` (the softmax of eq. 1 is unchanged otherwise), so
the shift is measured on stored logits without touching the model. Everything here is plain
tensors: (N, K) logits, (N,) labels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def shift_vector(shift: Mapping[int, float], num_classes: int) -> torch.Tensor:
    """The (K,) vector added to every logit row: ``shift[c]`` at class ``c``, 0 elsewhere."""
    vector = torch.zeros(num_classes, dtype=torch.float64)
    for c, delta in shift.items():
        if not 0 <= int(c) < num_classes:
            raise ValueError(f"bias shift for class {c}: the classifier has classes 0..{num_classes - 1}")
        vector[int(c)] = float(delta)
    return vector


def shifted_predictions(logits: torch.Tensor, shift: Mapping[int, float]) -> torch.Tensor:
    """argmax_c (z_c + delta_c) per row of ``logits`` (N, K): the classes predicted once the
    final layer's biases are shifted by ``shift`` ({class: delta})."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {tuple(logits.shape)}")
    return (logits.double() + shift_vector(shift, logits.shape[1])).argmax(dim=1)


def per_class_errors(logits: torch.Tensor, labels: torch.Tensor, shift: Mapping[int, float] | None = None) -> torch.Tensor:
    """(K,) int64: how many inputs of each true class are misclassified after the bias shift
    (``shift`` {class: delta}, none by default). Their sum is the total error count."""
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"{logits.shape[0]} logit rows but labels of shape {tuple(labels.shape)}")
    wrong = shifted_predictions(logits, shift or {}) != labels
    return torch.bincount(labels[wrong], minlength=logits.shape[1])


def best_shift(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[int],
               grid: Sequence[float]) -> tuple[float, int]:
    """The shift in ``grid`` that, added to the bias of every class in ``classes`` alike, leaves the
    fewest errors in total (the first such, in grid order), and that number of errors: the paper's
    "biases ... reduced by 7.6 to optimize test performance" for the 7-and-8 transfer set."""
    if not len(grid):
        raise ValueError("best_shift needs at least one shift to try")
    totals = [int(per_class_errors(logits, labels, {c: float(d) for c in classes}).sum()) for d in grid]
    best = min(range(len(totals)), key=totals.__getitem__)
    return float(grid[best]), totals[best]
