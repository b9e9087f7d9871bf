"""The "Lottery tickets & N:M" page through AppTest, with real (tiny) runs on digits: non-default rounds
and prune fraction reach the started search, each round starts from its finished predecessor, the
charts follow the run folders; a bad N:M pattern is refused with the reason and nothing starts.

Expected values are read back from the run folders (config.json, metrics.jsonl), never from the page.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

import kdviz.methods.lottery  # noqa: F401  (registers the page's spec until kdviz.methods imports it)
from _support.apptest import charts, harness, ok, texts, values, wait_until
from _support.run_files import metric_lines

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "lottery.py"
HARNESS = harness((PAGE, "Lottery tickets & N:M"))
TEACHER_EPOCHS = 1


def test_the_page_is_in_the_navigation_from_the_spec():
    from kdviz.app.navigation import lab_pages

    pages = {p.title: p for p in lab_pages()}
    assert Path(pages["Lottery tickets & N:M"].path) == PAGE


def test_ticket_search_with_chosen_rounds_starts_and_charts_follow_the_runs(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert at.title[0].value == "Lottery tickets & N:M sparsity" and "press **Start**" in texts(at)
    at.slider(key="lt_rounds").set_value(2).run()
    at.slider(key="lt_fraction").set_value(0.4).run()
    at.slider(key="lt_epochs").set_value(2).run()
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    assert [name for name, _ in exp.plan.names()] == ["dense", "ticket 1", "re-init 1", "ticket 2", "re-init 2"]
    wait_until(at, lambda a: exp.done, timeout=120, pause=0.3)
    final = charts(ok(at.run()))
    folders = {n: Path(j.path) for n, j in exp.jobs.items()}
    configs = {n: json.loads((f / "config.json").read_text()) for n, f in folders.items()}
    assert configs["dense"]["init_from"] is None and configs["ticket 2"]["init_from"] == str(folders["ticket 1"])
    assert configs["re-init 2"]["hooks"][0]["reinit"] is True and configs["ticket 2"]["hooks"][0]["prune_fraction"] == 0.4
    assert [c["epochs"] for c in configs.values()] == [2] * 5
    ticket = final["lt-accuracy"]["data"][0]
    finals = [metric_lines(folders[f"ticket {r}"], "eval")[-1] for r in (1, 2)]
    np.testing.assert_allclose(values(ticket["y"]), [100 * f["test_acc"] for f in finals], rtol=1e-6)
    np.testing.assert_allclose(values(ticket["x"]), [100 * (1 - f["lottery/sparsity"]) for f in finals], rtol=1e-6)
    overlap_names = {t["name"] for t in final["lt-overlap"]["data"]}
    assert overlap_names == set(folders)
    assert "ticket" in texts(at) and "re-initialisation" in texts(at)


def test_a_pattern_with_n_not_below_m_is_refused(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    at.segmented_control(key="lt_view").set_value("N:M sparsity").run()
    at.selectbox(key="lt_n").set_value(4).run()
    at.selectbox(key="lt_m").set_value(4).run()
    before = len(at.session_state["kdviz_experiments"]) if "kdviz_experiments" in at.session_state else 0
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    assert "1 <= N < M" in texts(ok(at))
    after = len(at.session_state["kdviz_experiments"]) if "kdviz_experiments" in at.session_state else 0
    assert after == before
