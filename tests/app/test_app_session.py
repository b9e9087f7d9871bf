"""Per-session job ownership (the watchdog that stops a closed tab's jobs) and the app's error
messages (never a traceback).
"""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


class FakeJob:
    def __init__(self):
        self.stopped = 0

    def stop(self):
        self.stopped += 1


def make_watchdog(active: dict, now: list):
    from kdviz.app.session import SessionWatchdog

    return SessionWatchdog(grace_s=10, heartbeat_timeout_s=100, interval_s=3600,
                           is_active=lambda sid: active.get(sid), clock=lambda: now[0])


def test_watchdog_stops_the_jobs_of_a_closed_tab_after_the_grace_period():
    active, now = {"a": True, "b": True}, [0.0]
    dog = make_watchdog(active, now)
    ja, jb = FakeJob(), FakeJob()
    dog.add_job("a", ja), dog.add_job("b", jb)
    active["a"] = False  # tab a closed: its websocket is gone
    now[0] = 5.0
    assert dog.check() == [] and ja.stopped == 0  # within the grace period (it may reconnect)
    now[0] = 16.0
    assert dog.check() == ["a"] and ja.stopped == 1 and jb.stopped == 0
    now[0] = 1000.0  # b is connected: no heartbeat needed
    assert dog.check() == [] and jb.stopped == 0 and dog.jobs("b") == [jb]


def test_watchdog_reconnect_within_grace_keeps_jobs_and_heartbeat_is_the_fallback():
    active, now = {"a": True}, [0.0]
    dog = make_watchdog(active, now)
    ja, jc = FakeJob(), FakeJob()
    dog.add_job("a", ja)
    active["a"] = False
    now[0] = 5.0
    dog.check()
    active["a"] = True  # reconnected
    now[0] = 30.0
    assert dog.check() == [] and ja.stopped == 0
    dog.add_job("c", jc)  # no runtime answer for c: the heartbeat decides
    now[0] = 120.0
    dog.touch("c")
    now[0] = 200.0
    assert dog.check() == [] and jc.stopped == 0
    now[0] = 221.0
    assert dog.check() == ["c"] and jc.stopped == 1


def test_user_errors_show_a_message_never_a_traceback():
    def script():
        import streamlit as st

        from kdviz.app.errors import parse_temperature, user_errors

        with user_errors("Temperature"):
            parse_temperature(float("nan"))
        with user_errors("Reading"):
            raise RuntimeError("disk on fire")
        st.write("page continues")

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert "Temperature:" in at.error[0].value and "finite" in at.error[0].value
    assert "RuntimeError: disk on fire" in at.error[1].value and "untouched" in at.error[1].value
    assert at.markdown[-1].value == "page continues"


def test_the_app_puts_runs_in_the_one_runs_root(monkeypatch, tmp_path):
    from kdviz import paths
    from kdviz.app import session as app_session

    monkeypatch.delenv("KDVIZ_RUNS", raising=False)
    assert app_session.runs_root() == str(paths.runs_root()) and app_session.runs_root() != "runs"
    monkeypatch.setenv("KDVIZ_RUNS", str(tmp_path / "elsewhere"))
    assert app_session.runs_root() == str(tmp_path / "elsewhere") == str(paths.runs_root())
