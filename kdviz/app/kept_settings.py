"""Page settings that survive page switches: one plain session dict holds every setting's latest value.

Streamlit deletes a widget's state at the end of any run that does not draw the widget, and the
browser forgets a page's widget values when it leaves the page; ``page_state`` and
``keep_settings`` keep each setting in ``KEPT_KEY`` and write it back under the widget's key
whenever the widget (on the server or in the browser) no longer holds it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException


def _seed(key: str, value: Any) -> None:
    """``st.session_state[key] = value`` unless the widget is already drawn in this run."""
    try:
        st.session_state[key] = value
    except StreamlitAPIException:  # drawn already in this run: it shows the live value
        pass


KEPT_KEY = "kdviz_kept_settings"  # {widget key: its latest value}: every page's settings seen so far


def page_state(defaults: Mapping[str, Any]) -> Any:
    """This session's settings with a page's ``defaults`` filled in where unset, kept for the whole
    session (``st.session_state``). Call it at the top of the page and, for widgets drawn inside a
    fragment, at the top of the fragment too: before the widgets are drawn.

    Streamlit deletes a widget's state at the end of any run that does not draw the widget (another
    page, a fragment rerun that hides it, even a timed refresh of an unrelated fragment), and a value
    written under the key before the widget was first drawn lingers and shows again later: a stale
    slider beside a chart drawn from the current value. So each setting's latest value is kept in one
    plain session dict (``KEPT_KEY``, which Streamlit never deletes), taken from the widget while the
    widget holds one, and written back under the widget's key whenever it does not."""
    state = st.session_state
    kept = state.setdefault(KEPT_KEY, {})
    for key, value in defaults.items():
        kept.setdefault(key, value)
    keep_settings(defaults)
    return state


def keep_settings(keys: Iterable[str] | None = None) -> None:
    """Sync each kept setting (``keys``, or every key any page has passed to ``page_state``) with its
    widget: the widget's value when it holds one, else the kept value written back under its key. A
    value the server holds but the browser did not send with this run is written back too: back from
    one other page, Streamlit still held the widget's value while the browser drew its default.
    ``app.py`` calls it before anything is drawn, so a value set in the last run of a page is kept
    before the run of another page deletes its widget."""
    kept = st.session_state.setdefault(KEPT_KEY, {})
    for key in list(kept if keys is None else keys):
        value = _widget_value(key)
        if value is _NOT_HELD:
            _seed(key, kept[key])
        else:
            kept[key] = value
            if not _sent_by_browser(key):  # held on the server only: write it back so the control shows it
                _seed(key, value)


_NOT_HELD = object()


def _sent_by_browser(key: str) -> bool:
    """Whether the browser sent ``key``'s widget value with this run (it shows that value now)."""
    try:
        from streamlit.runtime.state.session_state_proxy import get_session_state

        inner = get_session_state()._state
        if key in inner._new_session_state:
            return True  # set by code in this run (a callback): nothing to write back
        widget_id = inner._key_id_mapper.get_id_from_key(key, None)
        return widget_id is not None and widget_id in inner._new_widget_state.states
    except (AttributeError, ImportError, TypeError):  # another Streamlit's internals: trust the widget
        return True


def _widget_value(key: str) -> Any:
    """The value ``key``'s widget holds (set in this run, or drawn in a recent one), or ``_NOT_HELD``
    once Streamlit has deleted the widget's state (what is left under the key is then stale)."""
    try:
        from streamlit.runtime.state.session_state_proxy import get_session_state

        inner = get_session_state()._state
        if key in inner._new_session_state:
            return inner._new_session_state[key]
        widget_id = inner._key_id_mapper.get_id_from_key(key, None)
        if widget_id is None:
            return _NOT_HELD
        # A value written under the key before the widget was first drawn would come back onto the widget
        # when Streamlit compacts its state (a hidden option came back as its default): drop it.
        inner._old_state.pop(key, None)
        for source in (inner._new_widget_state, inner._old_state):
            try:
                return source[widget_id]
            except KeyError:
                continue
        return _NOT_HELD
    except (AttributeError, ImportError, TypeError):  # another Streamlit's internals: trust the key
        return st.session_state[key] if key in st.session_state else _NOT_HELD
