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

# Paul Tol's "muted" scheme (Tol 2021, "Colour Schemes", SRON/EPS/TN/09-002, fig. 4): also safe for
# colour-blind readers; its tones are darker and softer than Okabe & Ito's, so a method drawn in one
# is told apart from the eight above when both are on one chart.
TOL_MUTED = {
    "indigo": "#332288",
    "cyan": "#88CCEE",
    "teal": "#44AA99",
    "green": "#117733",
    "olive": "#999933",
    "sand": "#DDCC77",
    "rose": "#CC6677",
    "wine": "#882255",
    "purple": "#AA4499",
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
    # methods added after the first eight colours were taken: one tone each from Tol's muted scheme
    "lsq": TOL_MUTED["wine"],
    "n:m sparse": TOL_MUTED["teal"],
    "movement": TOL_MUTED["indigo"],
    "relational": TOL_MUTED["cyan"],
    "specialist": TOL_MUTED["purple"],
    "logit matching": TOL_MUTED["olive"],
    "transformer student": TOL_MUTED["rose"],
    "head-pruned": TOL_MUTED["sand"],
    "sweep": TOL_MUTED["green"],
}

# A cycle for series without a role (several layers, several runs).
SERIES: list[str] = [
    OKABE_ITO[k] for k in ("blue", "vermillion", "bluish green", "orange", "reddish purple", "sky blue", "yellow", "grey")
]
