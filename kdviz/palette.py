"""kdviz's colours, in one place below every layer: methods pick a run's colour here, figures draw with it.

Okabe & Ito's palette ("Color Universal Design", 2008) is safe for the common forms of colour
blindness. ``ROLE_COLORS`` names the colour of each kind of run or reference line; a method's
``MethodSpec.colour`` is one of these, so the same run keeps the same colour on every page, every
widget and every notebook (the figures receive it as data and never look a method up).
"""
from __future__ import annotations

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "grey": "#7F7F7F",
}

ROLE_COLORS: dict[str, str] = {
    "teacher": OKABE_ITO["blue"],
    "kd student": OKABE_ITO["vermillion"],
    "scratch student": OKABE_ITO["bluish green"],
    "student": OKABE_ITO["vermillion"],
    "fsp student": OKABE_ITO["reddish purple"],
    "pruned": OKABE_ITO["orange"],
    "quantized": OKABE_ITO["sky blue"],
    "baseline": OKABE_ITO["grey"],
}

# A cycle for series without a role (several layers, several runs).
SERIES: list[str] = [
    OKABE_ITO[k] for k in ("blue", "vermillion", "bluish green", "orange", "reddish purple", "sky blue", "yellow", "grey")
]
