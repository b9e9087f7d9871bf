"""Mixed precision from sensitivity: per-layer bit widths under a size budget.

HAWQ (Dong et al. 2019, ICCV) orders layers by a Hessian-based sensitivity and gives the sensitive
ones more bits; HAWQ-V3 (Yao et al. 2021, ICML, sec. 3.3, eq. 11) states the choice as an integer
program over (layer, bits):

    minimise  sum_i Omega_i(b_i)   subject to   sum_i size_i(b_i) <= budget,

one bit width b_i per layer. We keep that program and replace the Hessian estimate Omega by what the
per-layer sweep measured (``layer_noise.sensitivity_sweep``, issue 17 item 3): the accuracy drop of
layer i quantized alone at b bits, plus a small tie-break lambda * 10^(-SQNR/10) (the output's
noise-to-signal ratio), so that among options that all lose nothing measurable the quieter one wins.
Summing per-layer drops assumes they add up (HAWQ's own assumption of independent perturbations);
the chosen configuration is therefore always *measured* afterwards, never reported from the sum.

The program is a multiple-choice knapsack; with a handful of layers and bit widths it is solved
exactly by dynamic programming over Pareto sets (keep, after each layer, only the (size, cost) pairs
that no other pair beats on both), not by a greedy rule.

Size counts weights as ``quant.explore``'s uniform quantizer does: ``bits`` per weight plus a float32
scale (and, asymmetric, a 32-bit zero point) per tensor or output channel; biases stay float.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .layer_noise import LayerNoise, PTQEvaluator
from .ranges import RangeSpec

NOISE_WEIGHT = 0.01  # lambda: one unit of noise-to-signal ratio costs as much as one point of accuracy / 100


@dataclass(frozen=True)
class MixedPrecision:
    """A bit width per layer, its weight storage in bits, the measured accuracy, and the drop the
    per-layer sweep predicted (the sum of the chosen options' drops)."""

    bits: dict[str, int]
    size_bits: int
    accuracy: float
    predicted_drop: float

    @property
    def size_bytes(self) -> float:
        return self.size_bits / 8

    def average_bits(self, n_weights: Mapping[str, int]) -> float:
        """Weight bits per weight, ignoring scales: sum_i b_i n_i / sum_i n_i."""
        total = sum(n_weights[n] for n in self.bits)
        return sum(b * n_weights[n] for n, b in self.bits.items()) / total


def layer_size_bits(ev: PTQEvaluator, layer: str, bits: int, spec: RangeSpec) -> int:
    """Stored bits of one layer's weight at ``bits``: bits * n + 32 per scale (and zero point)."""
    scales = ev.original[layer].shape[0] if spec.per_channel else 1
    return int(bits) * ev.n_weights(layer) + 32 * scales * (1 if spec.symmetric else 2)


def option_cost(noise: LayerNoise, noise_weight: float = NOISE_WEIGHT) -> float:
    """Omega_i(b): the measured accuracy drop (never below 0) plus lambda * 10^(-SQNR / 10)."""
    ratio = 0.0 if noise.sqnr_db == float("inf") else 10.0 ** (-noise.sqnr_db / 10.0)
    return max(noise.drop, 0.0) + noise_weight * ratio


def choose_bits(costs: Mapping[str, Mapping[int, float]], sizes: Mapping[str, Mapping[int, int]],
                budget: float) -> dict[str, int]:
    """The bit width per layer of least total cost with total size <= ``budget`` (exact: dynamic
    programming over Pareto sets of (size, cost, choice)). ``ValueError`` when even the smallest
    option of every layer exceeds the budget."""
    if set(costs) != set(sizes):
        raise ValueError(f"costs and sizes name different layers: {sorted(costs)} vs {sorted(sizes)}")
    frontier: list[tuple[int, float, tuple[int, ...]]] = [(0, 0.0, ())]
    for layer in costs:
        options = sorted(costs[layer])
        if not options or set(options) != set(sizes[layer]):
            raise ValueError(f"layer {layer!r} needs the same bit widths in costs and sizes")
        grown = [(s + sizes[layer][b], c + costs[layer][b], chosen + (b,))
                 for s, c, chosen in frontier for b in options if s + sizes[layer][b] <= budget]
        frontier = _pareto(grown)
        if not frontier:
            smallest = sum(min(sizes[n].values()) for n in costs)
            raise ValueError(f"a budget of {budget:,.0f} bits is below the smallest configuration ({smallest:,} bits)")
    size, cost, chosen = min(frontier, key=lambda t: (t[1], t[0], [-b for b in t[2]]))
    return dict(zip(costs, chosen))


def _pareto(points: list[tuple[int, float, tuple[int, ...]]]) -> list[tuple[int, float, tuple[int, ...]]]:
    """The points no other point beats in both size and cost (smaller size first, ties by cost)."""
    kept, best_cost = [], float("inf")
    for point in sorted(points, key=lambda t: (t[0], t[1])):
        if point[1] < best_cost:
            kept.append(point)
            best_cost = point[1]
    return kept


def sweep_tables(ev: PTQEvaluator, sweep: Mapping[str, Mapping[int, LayerNoise]], spec: RangeSpec,
                 noise_weight: float = NOISE_WEIGHT) -> tuple[dict, dict]:
    """(costs, sizes) per layer and bit width from a sensitivity sweep."""
    costs = {n: {b: option_cost(noise, noise_weight) for b, noise in by_bits.items()} for n, by_bits in sweep.items()}
    sizes = {n: {b: layer_size_bits(ev, n, b, spec) for b in by_bits} for n, by_bits in sweep.items()}
    return costs, sizes


def mixed_precision(ev: PTQEvaluator, sweep: Mapping[str, Mapping[int, LayerNoise]], budget_bits: float,
                    spec: RangeSpec = RangeSpec(), noise_weight: float = NOISE_WEIGHT) -> MixedPrecision:
    """Bit widths chosen from ``sweep`` under ``budget_bits`` of weight storage, then measured."""
    costs, sizes = sweep_tables(ev, sweep, spec, noise_weight)
    bits = choose_bits(costs, sizes, budget_bits)
    size = sum(sizes[n][b] for n, b in bits.items())
    predicted = sum(max(sweep[n][b].drop, 0.0) for n, b in bits.items())
    return MixedPrecision(bits, size, ev.accuracy(bits, spec), predicted)


def uniform_config(ev: PTQEvaluator, bits: int, spec: RangeSpec = RangeSpec()) -> MixedPrecision:
    """Every layer at ``bits``, measured, in the same form as a mixed choice."""
    chosen = {n: int(bits) for n in ev.names}
    size = sum(layer_size_bits(ev, n, bits, spec) for n in ev.names)
    return MixedPrecision(chosen, size, ev.accuracy(chosen, spec), float("nan"))


@dataclass(frozen=True)
class EqualSize:
    """Uniform ``bits`` everywhere beside the mixed choice whose budget is the uniform model's size."""

    uniform_bits: int
    uniform: MixedPrecision
    mixed: MixedPrecision

    @property
    def gain(self) -> float:
        """Accuracy of mixed minus uniform (fraction)."""
        return self.mixed.accuracy - self.uniform.accuracy


def mixed_vs_uniform(ev: PTQEvaluator, sweep: Mapping[str, Mapping[int, LayerNoise]],
                     uniform_bits: Iterable[int] = (2, 3, 4), spec: RangeSpec = RangeSpec(),
                     noise_weight: float = NOISE_WEIGHT) -> list[EqualSize]:
    """For each uniform width: the uniform model and the mixed choice at the same (or smaller) size."""
    rows = []
    for b in uniform_bits:
        uniform = uniform_config(ev, b, spec)
        rows.append(EqualSize(int(b), uniform, mixed_precision(ev, sweep, uniform.size_bits, spec, noise_weight)))
    return rows


def size_curve(ev: PTQEvaluator, sweep: Mapping[str, Mapping[int, LayerNoise]], budgets: Iterable[float],
               spec: RangeSpec = RangeSpec(), noise_weight: float = NOISE_WEIGHT) -> list[MixedPrecision]:
    """Mixed choices at each budget (bits); budgets below the smallest configuration are skipped."""
    _, sizes = sweep_tables(ev, sweep, spec, noise_weight)
    smallest = sum(min(s.values()) for s in sizes.values())
    return [mixed_precision(ev, sweep, budget, spec, noise_weight) for budget in budgets if budget >= smallest]


__all__ = ["EqualSize", "MixedPrecision", "NOISE_WEIGHT", "choose_bits", "layer_size_bits", "mixed_precision",
           "mixed_vs_uniform", "option_cost", "size_curve", "sweep_tables", "uniform_config"]
