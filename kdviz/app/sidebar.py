"""The sidebar: which dataset, which teacher and student, and how charts download.

Every page reads the same choices through ``current_settings()``; the widgets keep their values in
``st.session_state`` under explicit keys, so switching pages keeps them. Model presets live in two
small tables (``TEACHERS``, ``STUDENTS``): adding a size is one line, no ``if/elif`` on names.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import streamlit as st

from ..data import DatasetBundle, load_dataset
from ..models import build_model, count_parameters
from ..paths import confine
from ..present.distill_configs import distill_defaults
from .charts import IMAGE_FORMAT_KEY, IMAGE_FORMATS
from .errors import user_errors


@dataclass(frozen=True)
class ModelChoice:
    """A registered model name and its options (``kdviz.models.build_model(name, **options)``)."""

    model: str
    options: dict = field(default_factory=dict)
    note: str = ""


# Hinton, Vinyals, Dean 2015, section 3: a 1200-1200 dropout teacher and an 800-800 student on MNIST.
TEACHERS: dict[str, ModelChoice] = {
    "MLP 256-256, dropout": ModelChoice("mlp", {"hidden": [256, 256], "dropout": 0.3}, "trains in seconds on digits"),
    "MLP 1200-1200, dropout (Hinton)": ModelChoice("mlp", {"hidden": [1200, 1200], "dropout": 0.5}, "the paper's teacher"),
    "Small CNN, dropout": ModelChoice("cnn", {"channels": [32, 64], "hidden": 256, "dropout": 0.5}, "strongest; slower"),
}
STUDENTS: dict[str, ModelChoice] = {
    "MLP 8 (tiny)": ModelChoice("mlp", {"hidden": [8]}, "so small that soft targets matter"),
    "MLP 16": ModelChoice("mlp", {"hidden": [16]}),
    "MLP 64-64": ModelChoice("mlp", {"hidden": [64, 64]}),
    "MLP 800-800 (Hinton)": ModelChoice("mlp", {"hidden": [800, 800]}, "the paper's student"),
}
# Labels short enough for the sidebar's select box (about 30 characters show; a longer label was cut
# off mid-word); where the 28x28 sets come from is the box's help and the folder box below it.
DATASETS: dict[str, str] = {
    "digits": "Digits 8x8 (bundled, offline)",
    "mnist": "MNIST 28x28",
    "fashion-mnist": "Fashion-MNIST 28x28",
}
DATASET_HELP = ("Digits ship with scikit-learn and work offline. MNIST and Fashion-MNIST load from a folder "
                "holding their four IDX files, or download once into ~/.cache/kdviz (or $KDVIZ_CACHE).")
KEYS = {"dataset": "kdviz_dataset", "root": "kdviz_data_root", "download": "kdviz_download",
        "teacher": "kdviz_teacher", "student": "kdviz_student"}


@dataclass(frozen=True)
class LabSettings:
    """The sidebar's choices."""

    dataset: str = "digits"
    data_root: str | None = None
    download: bool = False
    teacher: str = next(iter(TEACHERS))
    student: str = next(iter(STUDENTS))
    image_format: str = "png"

    @property
    def teacher_model(self) -> ModelChoice:
        return TEACHERS[self.teacher]

    @property
    def student_model(self) -> ModelChoice:
        return STUDENTS[self.student]


@st.cache_resource(show_spinner="Loading the dataset...", max_entries=4)
def _load(name: str, root: str | None, download: bool) -> DatasetBundle:
    return load_dataset(name, root=root, download=download)


def load_bundle(settings: LabSettings) -> DatasetBundle:
    """The chosen dataset (cached per process). The folder typed in the sidebar is untrusted: it
    must lie in an allowed root (``kdviz.paths.confine``), else a ``ValueError`` says so; messages
    name the expected files, never what the folder holds."""
    if settings.dataset != "digits" and not settings.data_root and not settings.download:
        raise ValueError(f"{DATASETS[settings.dataset]}: type the folder that holds its four IDX files "
                         "in the sidebar, or tick 'Download if missing'")
    root = None
    if settings.data_root:
        root = confine(settings.data_root, "data folder")
        if not root.is_dir():
            raise ValueError(f"folder {settings.data_root!r} does not exist")
    return _load(settings.dataset, str(root) if root is not None else None, settings.download)


def current_settings() -> LabSettings:
    """The settings as the sidebar last left them (defaults before it is drawn)."""
    s = st.session_state
    dataset = s.get(KEYS["dataset"], "digits")
    root = (s.get(KEYS["root"]) or "").strip() or None
    return LabSettings(
        dataset=dataset,
        data_root=root if dataset != "digits" else None,
        download=bool(s.get(KEYS["download"], False)) and dataset != "digits",
        teacher=s.get(KEYS["teacher"], LabSettings.teacher),
        student=s.get(KEYS["student"], LabSettings.student),
        image_format=s.get(IMAGE_FORMAT_KEY, "png"),
    )


@st.cache_data(show_spinner=False, max_entries=32)
def _param_count(model: str, options_json: str, shape: tuple[int, int, int], classes: int) -> int:
    return count_parameters(build_model(model, input_shape=shape, num_classes=classes, **json.loads(options_json)))


def _params(choice: ModelChoice, shape: tuple[int, int, int], classes: int) -> str:
    n = _param_count(choice.model, json.dumps(choice.options, sort_keys=True), shape, classes)
    return f"{n:,} parameters" + (f" · {choice.note}" if choice.note else "")


_LAST_DATASET = "kdviz_sidebar_last_dataset"


def default_student(dataset: str) -> str:
    """The student preset the Train-a-student defaults were measured with on ``dataset``
    (``distill_defaults``): MLP 8 on digits, MLP 64-64 on the 28x28 sets, where 8 units lose."""
    d = distill_defaults(dataset)
    for name, choice in STUDENTS.items():
        if choice.model == d.student_model and choice.options == dict(d.student_options):
            return name
    return next(iter(STUDENTS))


def _follow_dataset() -> None:
    """On a dataset switch, move the student to the new dataset's default, unless the user chose
    another student than the old dataset's default (their choice is kept)."""
    s = st.session_state
    old, new = s.get(_LAST_DATASET, "digits"), s[KEYS["dataset"]]
    if s.get(KEYS["student"], default_student(old)) == default_student(old):
        s[KEYS["student"]] = default_student(new)
    s[_LAST_DATASET] = new


def render_sidebar() -> LabSettings:
    """Draw the sidebar's widgets and return the choices."""
    with st.sidebar:
        st.subheader("Data and models")
        st.selectbox("Dataset", list(DATASETS), format_func=DATASETS.get, key=KEYS["dataset"], help=DATASET_HELP,
                     on_change=_follow_dataset)
        if st.session_state[KEYS["dataset"]] != "digits":
            st.session_state.setdefault(KEYS["root"], os.environ.get("KDVIZ_DATA", ""))
            st.text_input("Folder with the four IDX files", key=KEYS["root"], placeholder="/path/to/mnist")
            st.checkbox("Download if missing", key=KEYS["download"],
                        help="Fetch the files into ~/.cache/kdviz (or $KDVIZ_CACHE); needs internet.")
        settings = current_settings()
        shape, classes = ((1, 8, 8), 10) if settings.dataset == "digits" else ((1, 28, 28), 10)
        st.selectbox("Teacher", list(TEACHERS), key=KEYS["teacher"])
        with user_errors("Teacher size"):
            st.caption(_params(TEACHERS[st.session_state[KEYS["teacher"]]], shape, classes))
        st.selectbox("Student", list(STUDENTS), key=KEYS["student"])
        with user_errors("Student size"):
            st.caption(_params(STUDENTS[st.session_state[KEYS["student"]]], shape, classes))
        st.divider()
        st.radio("Chart images (camera button)", IMAGE_FORMATS, format_func=str.upper, key=IMAGE_FORMAT_KEY,
                 horizontal=True, help="Each chart's toolbar saves it in this format; the CSV button gives its data.")
    return current_settings()
