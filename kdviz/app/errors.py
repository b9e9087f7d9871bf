"""Bad input becomes a clear message on the page, never a stack trace.

The core raises ``ValueError``/``TypeError`` naming the problem (a temperature of 0, a folder that
is not a run); here those become ``st.error`` boxes. Anything unexpected is logged with its
traceback on the server console and shown on the page as one plain sentence, so a reader never
sees Python internals and no run data is touched.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.errors import FragmentHandledException

from ..distill import check_temperature

LOG = logging.getLogger("kdviz.app")

# Errors that describe bad input (the core's contract) or an unreadable file.
USER_ERRORS = (ValueError, TypeError, KeyError, OSError)


@contextmanager
def user_errors(action: str, where=None) -> Iterator[None]:
    """Run a block; a bad-input error shows as ``"<action>: <message>"`` in ``where`` (default: page).

    Unexpected errors are logged (with traceback) and shown as one line naming their type.
    Streamlit's own control flow (``st.rerun``, ``st.stop``) derives from ``BaseException`` and
    passes through untouched.
    """
    target = where if where is not None else st
    try:
        yield
    except FragmentHandledException:  # Streamlit's own signal that a fragment already reported
        raise
    except USER_ERRORS as exc:
        target.error(f"**{action}:** {plain_message(exc)}", icon=":material/warning:")
    except Exception as exc:  # noqa: BLE001 - the last line of defence before a traceback
        LOG.exception("unexpected error while %s", action)
        target.error(f"**{action}:** something unexpected went wrong ({type(exc).__name__}: {exc}). "
                     "The details are in the server log; your runs on disk are untouched.", icon=":material/error:")


def plain_message(exc: BaseException) -> str:
    """The exception's message without Python decoration (quotes around KeyError messages)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text or type(exc).__name__


def parse_temperature(value: float | None) -> float:
    """A temperature typed by the user, checked: positive, finite and with a finite 1/T
    (``kdviz.distill.check_temperature``), else a ``ValueError`` that says why (softmax(z / T)
    divides by T, Hinton et al. 2015, eq. 1)."""
    if value is None:
        raise ValueError("type a temperature T, e.g. 4 (any positive number; 1 is the ordinary softmax)")
    try:
        T = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"temperature T must be a number, got {value!r}") from None
    if math.isnan(T) or math.isinf(T):
        raise ValueError(f"temperature T must be a finite number, got {value!r}")
    if T <= 0:
        raise ValueError(
            f"T = {T:g} is not allowed: soft targets are softmax(z / T), so T must be greater than 0 "
            "(try 0.1 for nearly one-hot targets, 1 for the ordinary softmax, 20 for very soft ones)"
        )
    return check_temperature(T)  # the core's rule: also refuses a T so small that 1/T overflows
