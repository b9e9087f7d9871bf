"""Reading a Streamlit page in ``AppTest``: exceptions, texts, plotly charts and their arrays, and a
harness that runs pages the way ``app.py`` does."""
from __future__ import annotations

import base64
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
ENV_KEYS = ("KDVIZ_RUNS", "KDVIZ_TEACHER_EPOCHS", "KDVIZ_MAX_JOBS")
HARNESS = '''
import os
import sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, {repo!r})
import streamlit as st
from kdviz.app import session
from kdviz.app.components import keep_settings
from kdviz.app.errors import user_errors
from kdviz.app.sidebar import render_sidebar
st.set_page_config(page_title="kdviz lab", layout="wide")
page = st.navigation([{pages}])
session.attach()
keep_settings()
render_sidebar()
session.touch()
with user_errors(page.title):
    page.run()
'''


def harness(*pages: tuple[str | Path, str]) -> str:
    """A script running ``pages`` ((path, title) pairs) as ``app.py`` does: ``st.navigation``, the shared
    sidebar, the kept page settings, the session heartbeat and ``user_errors`` around the page."""
    listed = ", ".join(f"st.Page({str(path)!r}, title={title!r})" for path, title in pages)
    return HARNESS.format(repo=str(REPO), pages=listed)


@contextmanager
def lab_environment(root: Path, teacher_epochs: int) -> Iterator[Path]:
    """Run folders under ``root``, a ``teacher_epochs``-epoch teacher/baseline, no job limit; on exit every
    job of every session is stopped and the environment restored."""
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(KDVIZ_RUNS=str(root), KDVIZ_TEACHER_EPOCHS=str(teacher_epochs))
    os.environ.pop("KDVIZ_MAX_JOBS", None)
    try:
        yield root
    finally:
        from kdviz.app import session

        for manager in list(session._MANAGERS.values()):
            manager.stop_all(wait=True, timeout=30)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def lab_app(timeout: float = 90) -> AppTest:
    """The whole lab (``app.py``: navigation, sidebar, every page) in ``AppTest``."""
    return AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)


def ok(at: AppTest) -> AppTest:
    """``at``, asserted free of exceptions."""
    assert not at.exception, [e.message for e in at.exception]
    return at


def ok_without_errors(at: AppTest) -> AppTest:
    """``at``, asserted free of exceptions and of ``st.error`` messages."""
    ok(at)
    assert not at.error, [e.value for e in at.error]
    return at


def texts(at: AppTest, errors: bool = True) -> str:
    """The page's markdown, captions and info boxes, and its error boxes unless ``errors=False``."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    return "\n".join(parts + ([e.value for e in at.error] if errors else []))


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly specs on the page by chart key (``chart-<key>``)."""
    return {c.proto.id.split("-chart-", 1)[1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def values(a) -> np.ndarray:
    """A plotly JSON array: a list (``None`` read as NaN), or {"dtype", "bdata"[, "shape"]} (base64) as
    plotly 6+ writes numpy arrays."""
    if isinstance(a, dict):
        raw = np.frombuffer(base64.b64decode(a["bdata"]), dtype=np.dtype(a["dtype"]))
        shape = a.get("shape")
        if isinstance(shape, str):
            shape = tuple(int(n) for n in shape.split(","))
        return raw.reshape(shape) if shape else raw
    return np.asarray(a, dtype=float)


def metric(at: AppTest, label: str) -> str:
    """The value of the first ``st.metric`` labelled ``label``."""
    return next(m.value for m in at.metric if m.label == label)


def start_button(at: AppTest):
    """The page's Start button (labelled "Running…" while its runs train)."""
    return next(b for b in at.button if b.label.startswith(("Start", "Running")))


def wait_until(at: AppTest, predicate, timeout: float = 90.0, pause: float = 0.5) -> AppTest:
    """Rerun the page every ``pause`` seconds (as its timer does) until ``predicate(at)``; the page's texts
    in the message when ``timeout`` seconds pass first."""
    end = time.monotonic() + timeout
    while not predicate(at):
        assert time.monotonic() < end, texts(at)
        time.sleep(pause)
        ok(at.run())
    return at


def stops_player(at: AppTest, key: str | None = None) -> dict:
    """The arguments a page gave its browser-side slider (``kdviz.app.stops_player``): ``spec`` (every
    stop's charts, metrics, note and table), ``index`` (the stop it stands at) and ``rev``. ``key``:
    the player's widget key, on a page with more than one (the instance's id ends with ``-<key>``)."""
    found = [e for e in at.get("component_instance") if "stops_player" in e.proto.component_name
             and (key is None or e.proto.id.endswith(f"-{key}"))]
    assert len(found) == 1, f"{len(found)} stops players on the page" + (f" with key {key!r}" if key else "")
    return json.loads(found[0].proto.json_args)


def player_stop(at: AppTest, key: str | None = None) -> tuple[str, dict, dict]:
    """(the readout label the slider stands at, that stop's frame, the charts by slot key): what the
    browser draws before any move."""
    args = stops_player(at, key)
    spec, i = args["spec"], args["index"]
    frame = spec["frames"][i]
    return spec["labels"][i], frame, {slot["key"]: chart for slot, chart in zip(spec["slots"], frame["charts"])}


def player_metric(frame: dict, label: str) -> str:
    """The value of the player's metric ``label`` in one stop's frame."""
    return next(m["value"] for m in frame["metrics"] if m["label"] == label)
