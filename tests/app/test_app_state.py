"""Page settings and run controls hold across pages and reruns (issue 14, bugs 2 and 4), in AppTest.

The whole lab (``app.py``) is run, so the settings survive exactly what they survive in the browser:
the runs of other pages, which Streamlit ends by deleting the state of every widget they did not draw.
"""
from __future__ import annotations

from _support.apptest import lab_app, ok, texts

TRAIN = "kdviz/app/pages/train_student.py"
MNIST = "/work/shared/data/mnist"
OTHERS = ("kdviz/app/pages/runs.py", "kdviz/app/pages/soft_targets.py")


def on_page(at, path: str):
    at.switch_page(path)
    return ok(at.run())


def test_train_settings_survive_visiting_two_other_pages():
    at = on_page(ok(lab_app().run()), TRAIN)
    at.number_input(key="tr_T").set_value(7.5)
    at.slider(key="tr_alpha").set_value(0.35)
    at.slider(key="tr_epochs").set_value(37)
    ok(at.run())
    for path in OTHERS:
        on_page(at, path)
        assert at.title[0].value != "Train a student"
    on_page(at, TRAIN)
    assert at.number_input(key="tr_T").value == 7.5
    assert at.slider(key="tr_alpha").value == 0.35
    assert at.slider(key="tr_epochs").value == 37
    # and they are still the page's settings after one more rerun on it
    ok(at.run())
    assert (at.number_input(key="tr_T").value, at.slider(key="tr_alpha").value) == (7.5, 0.35)


def ends_while_drawn(job):
    """``job`` (a finished run) looking "running" at the first look at its state and finished at every
    later one: a run that ends while the page is being drawn, at a fixed moment instead of 1 time in 6."""
    from kdviz.engine import Job

    looks = [0]

    class EndsWhileDrawn(type(job)):
        def status(self):
            looks[0] += 1
            status = Job.status(self)
            if looks[0] == 1:
                status.state = "running"
            return status

        @property
        def done(self):
            looks[0] += 1
            return looks[0] > 1 and Job.done.fget(self)

    job.__class__ = EndsWhileDrawn
    return job


def finished_pair(teacher, root, max_steps: int = 5):
    """A finished KD student and scratch student on digits (a few steps each), as the page's experiment."""
    from kdviz.engine import TrainConfig, start
    from kdviz.engine.experiment import Experiment
    from kdviz.present.distill_configs import KD_JOB, SCRATCH_JOB

    common = dict(dataset="digits", model="mlp", model_options={"hidden": [8]}, epochs=1, max_steps=max_steps,
                  runs_root=str(root))
    kd = start(TrainConfig(method="kd", teacher=str(teacher.path), **common))
    scratch = start(TrainConfig(method="ce", **common))
    assert [kd.wait(120).state, scratch.wait(120).state] == ["finished", "finished"]
    exp = Experiment(None, "KD beside scratch")
    exp.adopt(KD_JOB, kd)
    exp.adopt(SCRATCH_JOB, scratch)
    return exp


def test_a_run_ending_while_the_page_draws_leaves_start_and_stop_agreeing(teacher, lab_env):
    """Bug 4: the Start label, Pause/Stop and the live refresh come from one reading of the jobs, so a run
    that ends mid-rerun never leaves "Running…" beside a disabled Stop (nor a page that stops refreshing)."""
    exp = finished_pair(teacher, lab_env)
    ends_while_drawn(exp.job("KD student"))
    at = on_page(ok(lab_app().run()), TRAIN)
    at.session_state["kdviz_experiments"] = [exp]
    ok(at.run())
    start_button, stop_button = at.button(key="tr-start"), at.button(key="tr-stop")
    running = start_button.label.startswith("Running")
    assert running == (not stop_button.proto.disabled), (start_button.label, stop_button.proto.disabled)
    assert running == start_button.proto.disabled
    # the run has ended: the page (rerun by its live refresh if it said "Running…") offers Start again
    assert not running and at.button(key="tr-pause").proto.disabled


def test_after_switching_to_mnist_the_train_page_shows_no_digits_run(teacher, lab_env, monkeypatch):
    """Bug 7: a digits experiment and digits run folders are not shown as MNIST's; back on digits they
    are, labelled with their data set."""
    monkeypatch.setenv("KDVIZ_DATA", MNIST)
    exp = finished_pair(teacher, lab_env)
    at = on_page(ok(lab_app().run()), TRAIN)
    at.session_state["kdviz_experiments"] = [exp]
    ok(at.run())
    assert "KD student** (digits)" in texts(at)  # the digits page shows its run, labelled
    at.session_state["kdviz_dataset"], at.session_state["kdviz_data_root"] = "mnist", MNIST
    ok(at.run())
    shown = texts(at, errors=False)
    assert "(digits)" not in shown and "Press **Start**" in shown, shown  # MNIST's page: no digits run on it
    assert at.button(key="tr-start").label.startswith("Start")
    assert not [o for o in at.multiselect(key="tr_overlay").options if "digits" in o], at.multiselect(key="tr_overlay").options
    at.session_state["kdviz_dataset"] = "digits"
    ok(at.run())
    assert "KD student** (digits)" in texts(at)
    overlay = at.multiselect(key="tr_overlay").options
    assert overlay and all("digits" in option for option in overlay), overlay


def test_a_link_with_settings_reproduces_them_and_bad_ones_are_named():
    """Settings in the URL: ``?tr_T=..&tr_alpha=..&tr_epochs=..`` sets the controls; the page writes its
    settings back to the URL; a value out of range is ignored with a message naming it."""
    at = lab_app()
    at.query_params.update({"tr_T": "12.5", "tr_alpha": "0.25", "tr_epochs": "2500", "tr_seed": "7",
                            "tr_transfer": "500", "tr_pace": "False"})
    at = on_page(ok(at.run()), TRAIN)
    assert at.number_input(key="tr_T").value == 12.5 and at.slider(key="tr_alpha").value == 0.25
    assert at.number_input(key="tr_seed").value == 7
    assert at.selectbox(key="tr_transfer").value == 500 and at.toggle(key="tr_pace").value is False
    assert at.slider(key="tr_epochs").value == 400  # 2500 is out of range: the digits default stays
    assert any("tr_epochs=2500" in w.value and "outside" in w.value for w in at.warning), [w.value for w in at.warning]
    at.slider(key="tr_alpha").set_value(0.6)
    ok(at.run())
    assert at.query_params["tr_alpha"] in ("0.6", ["0.6"]) and at.query_params["tr_T"] in ("12.5", ["12.5"])
    assert "lab" in at.query_params  # the tab's own session, for a reload; never in the copied link
    link = next(c.value for c in at.code if "tr_alpha=0.6" in c.value)
    assert "tr_T=12.5" in link and "lab=" not in link


def test_the_train_page_opens_on_the_measured_defaults_and_follows_the_dataset(lab_env, monkeypatch):
    """The story's defaults (README): digits 100 labelled images, 400 epochs, paced; on MNIST the
    MNIST row, but a setting the user changed is kept; the started configs carry them."""
    from kdviz.present.distill_configs import distill_defaults

    monkeypatch.setenv("KDVIZ_DATA", MNIST)
    at = on_page(ok(lab_app().run()), TRAIN)
    d = distill_defaults("digits")
    assert (at.slider(key="tr_epochs").value, at.selectbox(key="tr_transfer").value) == (d.epochs, d.transfer_size)
    assert at.toggle(key="tr_pace").value is True and at.number_input(key="tr_lr").value == d.lr
    at.number_input(key="tr_T").set_value(6.0)
    ok(at.run())
    at.session_state["kdviz_dataset"], at.session_state["kdviz_data_root"] = "mnist", MNIST
    ok(at.run())
    m = distill_defaults("mnist")
    assert (at.slider(key="tr_epochs").value, at.selectbox(key="tr_transfer").value) == (m.epochs, m.transfer_size)
    assert at.number_input(key="tr_T").value == 6.0  # the user's own T stays

