"""Layer-wise transformer distillation: TinyBERT (Jiao et al., "TinyBERT: Distilling BERT for Natural
Language Understanding", Findings of EMNLP 2020, section 3.1, eqs. 7-11), and attention rollout
(Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020, section 3) to draw it.

Four granularities, each a function here; the hook (``kdviz.methods.vit_distill``) weights and sums them
(eq. 11: L_model = sum_m lambda_m L_layer(S_m, T_g(m))):

* **attention** (eq. 7): ``L_attn = 1/h sum_i MSE(A_i^S, A_i^T)`` over the h heads of a mapped layer
  pair, each MSE averaged over the batch and the N x N entries. TinyBERT fits the *unnormalised*
  scores ``A = Q K^T / sqrt(d_k)`` (section 3.1: faster convergence than the softmax); ``"probs"``
  fits the softmax rows instead (what the pictures show; bounded, so its size does not depend on d_k).
* **hidden states** (eq. 8): ``L_hidn = MSE(H^S W_h, H^T)``, one learned W_h (d_S x d_T, no bias, as in
  the equation) shared by every layer pair, as TinyBERT's code shares its ``fit_dense``.
* **embedding** (eq. 9): ``L_embd = MSE(E^S W_e, E^T)`` with its own W_e (the code reuses ``fit_dense``;
  we follow the equation).
* **prediction** (eq. 10): TinyBERT's ``CE(z^T / t, z^S / t)``; we use kdviz's Hinton loss
  ``t^2 KL(p_T || p_S)`` (``kd_loss.soft_target_loss``), whose gradient is t^2 times eq. 10's
  (the KL differs from the cross-entropy by the teacher's entropy, a constant).

Layer mapping ``g`` (section 3.1, "Problem Formulation"; section 4.5 compares them): student layer
m (1..M) learns from teacher layer g(m) (1..N). ``"uniform"``: g(m) = floor(m N / M) (TinyBERT's
``layers_per_block`` when M divides N; the last layers always pair); ``"top"``: g(m) = m + N - M;
``"bottom"``: g(m) = m; ``"last"``: only (M, N); or an explicit list: one teacher layer per student
layer (``[2, 4]``) or ``[student, teacher]`` pairs (``[[2, 4]]``), 1-based.

Heads (``match_heads``): TinyBERT's students have as many heads as the teacher. Ours may have
fewer: ``"group_mean"`` (default) averages the teacher's heads in consecutive groups of H_T / H_S,
so student head j learns the mean of teacher heads j g .. (j + 1) g - 1 (a mean of softmax rows is
still a distribution); it needs H_S to divide H_T and is TinyBERT's per-head loss when they are
equal. ``"mean"`` compares the head-averaged maps of both sides (any head counts); ``"equal"``
refuses unequal counts. The token count N must match on both sides (same patch grid).

Conventions of the peers, checked in ``tests/distill/test_transformer_peers.py``: TinyBERT's code
(task_distill.py) zeroes scores <= -100 (its padding mask) before the MSE, which no unmasked image
token reaches; its ``soft_cross_entropy`` takes ``.mean()`` over batch *and* classes (1/K of the
per-sample cross-entropy). TextBrewer's ``att_mse_loss`` zeroes every score <= -0.001, so it agrees
with eq. 7 on probabilities but not on scores, which are often negative; its ``att_mse_sum_loss``
sums heads before the MSE, H^2 times our ``"mean"`` matching when the head counts agree.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .kd_loss import soft_target_loss

ATTENTION_KINDS = ("probs", "scores")
HEAD_MATCHINGS = ("group_mean", "mean", "equal")
LAYER_MAPPINGS = ("uniform", "top", "bottom", "last")
LayerMap = str | Sequence[int] | Sequence[Sequence[int]]


def layer_pairs(student_layers: int, teacher_layers: int, mapping: LayerMap = "uniform") -> list[tuple[int, int]]:
    """The pairs (m, g(m)) of student layer m and teacher layer g(m), 1-based (module docstring)."""
    m_s, n_t = int(student_layers), int(teacher_layers)
    if m_s < 1 or n_t < 1:
        raise ValueError(f"layer mapping needs at least one layer on each side, got student {m_s}, teacher {n_t}")
    if isinstance(mapping, str):
        if mapping not in LAYER_MAPPINGS:
            raise ValueError(f"layer mapping {mapping!r} is not one of {', '.join(LAYER_MAPPINGS)} (or a list)")
        if mapping != "last" and m_s > n_t:
            raise ValueError(f"mapping {mapping!r} needs the student ({m_s} layers) to be no deeper than the teacher "
                             f"({n_t}); list the pairs explicitly")
        rule = {"uniform": lambda m: m * n_t // m_s, "top": lambda m: m + n_t - m_s, "bottom": lambda m: m}
        return [(m_s, n_t)] if mapping == "last" else [(m, rule[mapping](m)) for m in range(1, m_s + 1)]
    return _explicit_pairs(m_s, n_t, mapping)


def _explicit_pairs(m_s: int, n_t: int, mapping: Sequence) -> list[tuple[int, int]]:
    if not isinstance(mapping, (list, tuple)) or not mapping:
        raise ValueError(f"an explicit layer mapping is a non-empty list, got {mapping!r}")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in mapping):
        if len(mapping) != m_s:
            raise ValueError(f"a list of teacher layers needs one entry per student layer ({m_s}), got {list(mapping)}")
        pairs = [(m + 1, int(t)) for m, t in enumerate(mapping)]
    elif all(isinstance(p, (list, tuple)) and len(p) == 2 for p in mapping):
        pairs = [(int(s), int(t)) for s, t in mapping]
    else:
        raise ValueError(f"an explicit layer mapping lists teacher layers ([2, 4]) or [student, teacher] pairs "
                         f"([[2, 4]]), got {mapping!r}")
    for s, t in pairs:
        if not (1 <= s <= m_s and 1 <= t <= n_t):
            raise ValueError(f"layer pair ({s}, {t}) is out of range: student layers are 1..{m_s}, teacher 1..{n_t}")
    if len({s for s, _ in pairs}) != len(pairs):
        raise ValueError(f"each student layer may appear once in the mapping, got {pairs}")
    return pairs


def match_heads(student: torch.Tensor, teacher: torch.Tensor,
                matching: str = "group_mean") -> tuple[torch.Tensor, torch.Tensor]:
    """Student and teacher attention (B, H, N, N) brought to the same heads (module docstring)."""
    if matching not in HEAD_MATCHINGS:
        raise ValueError(f"head matching {matching!r} is not one of {', '.join(HEAD_MATCHINGS)}")
    if student.ndim != 4 or teacher.ndim != 4:
        raise ValueError(f"attention maps are (batch, heads, tokens, tokens), got {tuple(student.shape)} and "
                         f"{tuple(teacher.shape)}")
    (b, h_s, n, _), (b_t, h_t, n_t, _) = student.shape, teacher.shape
    if (b, n) != (b_t, n_t):
        raise ValueError(f"student and teacher attention must cover the same images and tokens: student "
                         f"{tuple(student.shape)}, teacher {tuple(teacher.shape)} (use the same patch grid)")
    if matching == "mean":
        return student.mean(dim=1, keepdim=True), teacher.mean(dim=1, keepdim=True)
    if h_s == h_t:
        return student, teacher
    if matching == "equal" or h_t % h_s:
        why = "'equal' needs equal head counts" if matching == "equal" else \
            "'group_mean' needs the student's heads to divide the teacher's"
        raise ValueError(f"the student has {h_s} heads and the teacher {h_t}: {why}; use head_matching='mean' "
                         f"(compare head-averaged maps) or change the head counts")
    return student, teacher.reshape(b, h_s, h_t // h_s, n, n).mean(dim=2)


def attention_pair_losses(student_atts: Sequence[torch.Tensor], teacher_atts: Sequence[torch.Tensor],
                          pairs: Sequence[tuple[int, int]], matching: str = "group_mean") -> torch.Tensor:
    """Eq. 7 per layer pair, (P,): 1/h sum_i MSE(A_i^S, A_i^T) = the mean squared difference over
    batch, matched heads and the N x N entries. ``*_atts[l]`` is layer l + 1's (B, H, N, N)."""
    losses = []
    for s, t in pairs:
        student, teacher = match_heads(student_atts[s - 1], teacher_atts[t - 1].detach(), matching)
        losses.append(F.mse_loss(student, teacher))
    return torch.stack(losses)


def projected_mse(student: torch.Tensor, teacher: torch.Tensor, projection: nn.Module) -> torch.Tensor:
    """Eqs. 8-9: MSE(X^S W, X^T) for (B, N, d_S) student and (B, N, d_T) teacher states."""
    projected = projection(student)
    if projected.shape != teacher.shape:
        raise ValueError(f"projected student states {tuple(projected.shape)} and teacher states "
                         f"{tuple(teacher.shape)} differ (same patch grid and a d_S x d_T projection needed)")
    return F.mse_loss(projected, teacher.detach())


def hidden_pair_losses(student_hidden: Sequence[torch.Tensor], teacher_hidden: Sequence[torch.Tensor],
                       pairs: Sequence[tuple[int, int]], projection: nn.Module) -> torch.Tensor:
    """Eq. 8 per layer pair, (P,). ``*_hidden[0]`` is the embedding, ``[l]`` block l's output."""
    return torch.stack([projected_mse(student_hidden[s], teacher_hidden[t], projection) for s, t in pairs])


def embedding_loss(student_embedding: torch.Tensor, teacher_embedding: torch.Tensor, projection: nn.Module) -> torch.Tensor:
    """Eq. 9: MSE(E^S W_e, E^T)."""
    return projected_mse(student_embedding, teacher_embedding, projection)


def prediction_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """Eq. 10 in kdviz's form: T^2 KL(softmax(z^T / T) || softmax(z^S / T)), batch mean (Hinton et al.)."""
    return soft_target_loss(student_logits, teacher_logits, T)


class Projections(nn.Module):
    """The learned maps of eqs. 8-9: ``hidden`` (W_h) and ``embedding`` (W_e), d_S -> d_T, no bias."""

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        if int(student_dim) < 1 or int(teacher_dim) < 1:
            raise ValueError(f"projection widths must be positive, got {student_dim} -> {teacher_dim}")
        self.hidden = nn.Linear(int(student_dim), int(teacher_dim), bias=False)
        self.embedding = nn.Linear(int(student_dim), int(teacher_dim), bias=False)


def attention_rollout(attentions: Sequence[torch.Tensor], residual: float = 0.5) -> torch.Tensor:
    """Abnar & Zuidema 2020, eq. 1: A~_l = residual I + (1 - residual) mean_heads(A_l), rows renormalised,
    rolled out as A~_L ... A~_1; (B, N, N). Row 0 is how much the class token draws from each token.
    (jacobgil/vit-explain divides by ``a.sum(dim=-1)`` without keepdim, the same when rows sum to 1.)"""
    if not attentions:
        raise ValueError("attention rollout needs the attention of at least one layer")
    if not 0.0 <= float(residual) <= 1.0:
        raise ValueError(f"the residual share must be in [0, 1], got {residual}")
    b, _, n, _ = attentions[0].shape
    eye = torch.eye(n, dtype=attentions[0].dtype, device=attentions[0].device)
    result = eye.expand(b, n, n)
    for layer in attentions:
        fused = float(residual) * eye + (1.0 - float(residual)) * layer.mean(dim=1)
        result = (fused / fused.sum(dim=-1, keepdim=True)) @ result
    return result


def class_token_map(attention: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Row 0 (the class token) over the patches, (..., N, N) -> (..., rows, cols): what it attends to."""
    rows, cols = int(grid[0]), int(grid[1])
    if attention.shape[-1] != 1 + rows * cols:
        raise ValueError(f"attention over {attention.shape[-1]} tokens does not fit a {rows}x{cols} patch grid "
                         f"plus the class token")
    return attention[..., 0, 1:].reshape(*attention.shape[:-2], rows, cols)
