"""The sidebar follows the dataset: the student the Train-a-student defaults were measured with
(MLP 8 on digits, MLP 64-64 on MNIST), unless the user chose another (issue 14, the story)."""
from _support.apptest import lab_app, ok

from kdviz.app.sidebar import KEYS


def _select(at, key, value):
    (box,) = [b for b in at.sidebar.selectbox if b.key == key]
    box.select(value).run()
    return at


def test_switching_to_mnist_picks_the_student_that_wins_there_and_back(lab_env):
    at = ok(lab_app())
    at.run()
    assert at.session_state[KEYS["student"]] == "MLP 8 (tiny)"
    _select(at, KEYS["dataset"], "mnist")
    assert at.session_state[KEYS["student"]] == "MLP 64-64"
    _select(at, KEYS["dataset"], "digits")
    assert at.session_state[KEYS["student"]] == "MLP 8 (tiny)"


def test_a_student_the_user_chose_is_kept(lab_env):
    at = ok(lab_app())
    at.run()
    _select(at, KEYS["student"], "MLP 16")
    _select(at, KEYS["dataset"], "mnist")
    assert at.session_state[KEYS["student"]] == "MLP 16"
