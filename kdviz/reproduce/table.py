"""A reproduction's table as plain text: paper beside ours (mean +- std over seeds), every seed's
value, training time. The CLI prints it; the README quotes it."""
from __future__ import annotations

from .base import Row

RUNNING = "..."  # a row whose runs have not all ended yet


def format_number(value: float | None, digits: int = 2) -> str:
    """``146`` for whole numbers, else at most ``digits`` decimals (``1.64``, ``8.2``); ``-`` for None."""
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def ours(row: Row) -> str:
    """``"72.3 +- 4.1"``, or the one value, or ``-`` before the first run has ended."""
    if not row.values:
        return "-"
    text = format_number(row.mean) + (f" +- {format_number(row.std)}" if row.std is not None else "")
    return text + (f" ({len(row.values)}/{row.expected})" if len(row.values) < row.expected else "")


def per_seed(row: Row) -> str:
    """``"s0 71, s1 75, s2 70"``."""
    return ", ".join(f"s{seed} {format_number(value)}" for seed, value in zip(row.seeds, row.values)) or RUNNING


def training_time(row: Row) -> str:
    """Mean training seconds per run of the row."""
    return f"{sum(row.train_s) / len(row.train_s):.0f} s" if row.train_s else "-"


def table_lines(rows: list[Row]) -> list[str]:
    """The table as aligned text lines (a header, then one line per row)."""
    header = ("row", "unit", "paper", "ours (mean +- std)", "per seed", "train time/run")
    cells = [header] + [(r.label, r.unit, format_number(r.paper), ours(r), per_seed(r), training_time(r)) for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]


def markdown_lines(rows: list[Row]) -> list[str]:
    """The same table as Markdown (what the README quotes): row, unit, paper, ours, per seed, time."""
    header = ("row", "unit", "paper", "ours (mean ± std)", "per seed", "train time/run")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = (r.label, r.unit, format_number(r.paper), ours(r).replace("+-", "±"), per_seed(r), training_time(r))
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    return lines
