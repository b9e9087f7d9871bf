"""The Diagnose section on the Train a student page (AppTest): after a short real KD run beside its
scratch student, the section appears under the charts with its warnings and charts."""
from __future__ import annotations

import numpy as np
import torch

from kdviz.app.diagnose_view import TITLE
from kdviz.data import load_dataset
from kdviz.engine.run_folder import load_checkpoint
from kdviz.models import build_model
from kdviz.present.distill_configs import KD_JOB, SCRATCH_JOB

from _support.apptest import charts, lab_app, ok, start_button, texts, values, wait_until

TRAIN = "kdviz/app/pages/train_student.py"
TEACHER_EPOCHS = 2


def test_the_diagnosis_appears_once_the_students_have_ended(teacher):
    at = ok(lab_app().run())
    at.switch_page(TRAIN).run()
    at.toggle(key="tr_pace").set_value(False).run()
    at.number_input(key="tr_T").set_value(0.3).run()
    at.slider(key="tr_epochs").set_value(2).run()
    assert TITLE not in [e.label for e in ok(at).expander]  # nothing to diagnose before a run
    start_button(at).click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    wait_until(at, lambda a: exp.done)
    ok(at.run())
    assert TITLE in [e.label for e in at.expander]
    shown = charts(at)
    assert {"diagnose-agreement", "diagnose-gain", "diagnose-dark-knowledge", "diagnose-reliability"} <= set(shown)
    assert "overconfident at T = 0.3" in texts(at) and "surface appears once" in texts(at)
    reliability = shown["diagnose-reliability"]["data"][0]
    assert values(reliability["customdata"]).sum() == len(load_dataset("digits").test_labels)
    # the gain bars: per-class accuracy of the two students' saved models, recomputed here
    data = load_dataset("digits")
    accs = []
    for name in (KD_JOB, SCRATCH_JOB):
        job = exp.job(name)
        state = load_checkpoint(job.path)
        model = build_model(job.config.model, input_shape=tuple(state["input_shape"]), num_classes=10,
                            **job.config.model_options)
        model.load_state_dict(state["model"])
        with torch.no_grad():
            predicted = model.eval()(data.test_images).argmax(dim=1).numpy()
        accs.append([np.mean(predicted[data.test_labels.numpy() == c] == c) for c in range(10)])
    np.testing.assert_allclose(values(shown["diagnose-gain"]["data"][0]["y"]), 100 * (np.array(accs[0]) - accs[1]),
                               atol=1e-9)
