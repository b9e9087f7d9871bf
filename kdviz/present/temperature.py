"""The temperature range and the log-spaced grid of every temperature control, in one place.

Soft targets are ``q_i = exp(z_i / T) / sum_j exp(z_j / T)`` (Hinton, Vinyals, Dean 2015, eq. 1).
Both UIs let the reader move T over ``[T_MIN, T_MAX]`` on a log scale: the Streamlit page through a
slider over ``TEMPERATURES`` (nice values, an E10-like series per decade, so it reads 1, 2, 4, 5,
10, 20 exactly), the Jupyter explorer through a log slider over the same bounds. An exact T typed
by hand may lie outside the grid; ``nearest_temperature`` puts the slider next to it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

T_MIN, T_MAX = 0.1, 100.0
# Mantissas of an E10-like series: one arrow-key press moves T by about a quarter of an octave.
MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


def _check_bounds(t_min: float, t_max: float) -> None:
    for name, value in (("t_min", t_min), ("t_max", t_max)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite temperature, got {value!r}")
    if t_min >= t_max:
        raise ValueError(f"t_min must be below t_max, got t_min = {t_min:g} and t_max = {t_max:g}")


def temperature_grid(t_min: float = T_MIN, t_max: float = T_MAX) -> tuple[float, ...]:
    """The slider's temperatures: every ``m * 10**k`` (``m`` in ``MANTISSAS``) in [t_min, t_max],
    with both bounds included, ascending."""
    _check_bounds(t_min, t_max)
    low, high = math.floor(math.log10(t_min)), math.ceil(math.log10(t_max))
    values = {round(m * 10.0**k, 6) for k in range(low, high + 1) for m in MANTISSAS}
    return tuple(sorted({v for v in values if t_min <= v <= t_max} | {float(t_min), float(t_max)}))


TEMPERATURES: tuple[float, ...] = temperature_grid()


def nearest_temperature(T: float, options: Sequence[float] = TEMPERATURES) -> float:
    """The option closest to ``T`` on a log scale (a T beyond the grid gets the nearest end)."""
    if not isinstance(T, (int, float)) or isinstance(T, bool) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"temperature must be a positive finite number, got {T!r}")
    opts = np.asarray(options, dtype=np.float64)
    if opts.size == 0 or np.any(opts <= 0):
        raise ValueError("the temperature options must be a non-empty list of positive numbers")
    return float(opts[np.argmin(np.abs(np.log(opts) - math.log(T)))])


def check_slider_temperature(T: float, t_min: float = T_MIN, t_max: float = T_MAX) -> float:
    """``T`` as a float if a slider over [t_min, t_max] can show it, else a ``ValueError`` naming the range."""
    _check_bounds(t_min, t_max)
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T):
        raise ValueError(f"T must be a finite number, got {T!r}")
    if not t_min <= T <= t_max:
        raise ValueError(f"T must be in [{t_min:g}, {t_max:g}] for the slider, got {T:g}")
    return float(T)


def format_temperature(T: float) -> str:
    """``4.0`` -> ``"4"``, ``0.12`` -> ``"0.12"``: how every control and title writes a temperature."""
    return f"{T:g}"


__all__ = ["T_MIN", "T_MAX", "MANTISSAS", "TEMPERATURES", "temperature_grid", "nearest_temperature",
           "check_slider_temperature", "format_temperature"]
