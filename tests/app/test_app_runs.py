"""The Compare runs page through AppTest: reopening and overlaying run folders, each run labelled and
coloured by its method, unreadable folders refused with a message.
"""
from __future__ import annotations

from pathlib import Path

from kdviz.methods import get_method

from _support.apptest import charts, lab_app, ok

RUNS = "kdviz/app/pages/runs.py"


def test_runs_page_reopens_and_overlays_and_refuses_unreadable_folders(teacher, finished_runs, tmp_path):
    at = ok(lab_app().run())
    at.switch_page(RUNS).run()
    options = set(at.multiselect(key="cr_selected").options)
    assert {f"{Path(p).name} · {label}" for p, label in zip(finished_runs, ("KD student", "scratch student"))} <= options
    at.multiselect(key="cr_selected").set_value(finished_runs).run()
    spec = charts(ok(at))
    assert len(spec["compare-accuracy"]["data"]) == 2 and "final-accuracy" in spec and "compare-loss" in spec
    assert [t["line"]["color"] for t in spec["compare-accuracy"]["data"]] == [get_method("kd").colour,
                                                                             get_method("scratch").colour]
    bad = tmp_path / "broken-run"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    (bad / "metrics.jsonl").write_text('{"seq": 1}\n')
    before = {f.name: f.read_bytes() for f in bad.iterdir()}
    at.text_input(key="cr_path").input(str(bad)).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert any("Cannot open" in e.value and "not valid JSON" in e.value for e in ok(at).error)
    assert {f.name: f.read_bytes() for f in bad.iterdir()} == before  # nothing touched
    at.text_input(key="cr_path").input(str(tmp_path / "missing")).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert any("does not exist" in e.value for e in ok(at).error)
    at.text_input(key="cr_path").input(str(teacher.path)).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert str(teacher.path) in ok(at).multiselect(key="cr_selected").value


def test_compare_runs_labels_and_colours_a_pruned_cross_entropy_run_as_pruning(teacher, finished_runs, pruned_run):
    prune, scratch = get_method("prune"), get_method("scratch")
    path = str(pruned_run.path)
    at = ok(lab_app().run())
    at.switch_page(RUNS).run()
    assert f"{Path(path).name} · {prune.label}" in ok(at).multiselect(key="cr_selected").options
    at.multiselect(key="cr_selected").set_value([path, finished_runs[1]]).run()
    spec = charts(ok(at))
    pruned, plain = spec["compare-accuracy"]["data"]
    assert pruned["name"] == f"pruned to 50% · {Path(path).name[:15]}" == f"{prune.run_label(pruned_run.config)} · {Path(path).name[:15]}"
    assert pruned["line"]["color"] == prune.colour != scratch.colour
    assert plain["name"].startswith("scratch · ") and plain["line"]["color"] == scratch.colour
    assert list(spec["final-accuracy"]["data"][0]["marker"]["color"]) == [prune.colour, scratch.colour]
    table = at.dataframe[0].value.set_index("name")
    assert table.loc[Path(path).name, "kind"] == prune.label and table.loc[Path(teacher.path).name, "kind"] == "teacher"
