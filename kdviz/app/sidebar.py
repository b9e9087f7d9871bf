"""The sidebar: which dataset, which teacher and student, and how charts download.

Every page reads the same choices through ``current_settings()``; the widgets keep their values in
``st.session_state`` under explicit keys, so switching pages keeps them. Model presets live in two
small tables (``TEACHERS``, ``STUDENTS``): adding a size is one line, no ``if/elif`` on names.

Your own data and model (issue 19): the dataset box also offers an image folder and a CSV of pixels
(``DATA_SOURCES`` says what path each needs), and the teacher box offers every finished run imported
from a ``.safetensors`` file on the "Your model" page for the chosen dataset (``imported_teachers``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import streamlit as st

from ..data import DatasetBundle, load_dataset
from ..data.csv_pixels import DESCRIPTOR_KEYS as CSV_KEYS
from ..data.image_folder import DESCRIPTOR_KEYS as FOLDER_KEYS
from ..data.image_folder import read_descriptor
from ..engine import list_runs
from ..engine.run_folder import read_config
from ..models import build_model, count_parameters
from ..paths import confine, runs_root
from ..present.distill_configs import distill_defaults
from .charts import IMAGE_FORMAT_KEY, IMAGE_FORMATS
from .errors import user_errors


@dataclass(frozen=True)
class ModelChoice:
    """A registered model name and its options (``kdviz.models.build_model(name, **options)``)."""

    model: str
    options: dict = field(default_factory=dict)
    note: str = ""
    run: str | None = None  # an imported run's folder (Your model page): the teacher is that run, trained elsewhere


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
    "image-folder": "Your images (a folder)",
    "csv-pixels": "Your CSV of pixels",
}
DATASET_HELP = ("Digits ship with scikit-learn and work offline. MNIST and Fashion-MNIST load from a folder "
                "holding their four IDX files, or download once into ~/.cache/kdviz (or $KDVIZ_CACHE). Your own "
                "images (one subfolder per class) or a CSV of pixels: see the Your model page.")


@dataclass(frozen=True)
class DataSource:
    """What the path box asks for a dataset that reads files: its label, an example, whether it may
    download, and whether the path may be a file (a CSV, a JSON description) as well as a folder."""

    prompt: str
    placeholder: str
    downloads: bool = False
    file: bool = False


IDX_SOURCE = DataSource("Folder with the four IDX files", "/path/to/mnist", downloads=True)
DATA_SOURCES: dict[str, DataSource] = {
    "mnist": IDX_SOURCE,
    "fashion-mnist": IDX_SOURCE,
    "image-folder": DataSource("Image folder (one subfolder per class) or its JSON description", "/path/to/images",
                               file=True),
    "csv-pixels": DataSource("CSV file of pixels (or its JSON description)", "/path/to/pixels.csv", file=True),
}
DESCRIPTION_KEYS = CSV_KEYS | FOLDER_KEYS  # what a dataset's JSON description may hold
IMPORTED_PREFIX = "Imported: "  # teacher box labels of runs imported on the Your model page
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
        if self.teacher in TEACHERS:
            return TEACHERS[self.teacher]
        imported = imported_teachers(self.dataset, self.data_root)
        if self.teacher not in imported:
            raise ValueError(f"teacher {self.teacher!r} is not a preset, nor a run imported for {self.dataset} "
                             "(import it on the Your model page)")
        return imported[self.teacher]

    @property
    def student_model(self) -> ModelChoice:
        return STUDENTS[self.student]


@st.cache_resource(show_spinner="Loading the dataset...", max_entries=4)
def _load(name: str, root: str | None, download: bool) -> DatasetBundle:
    return load_dataset(name, root=root, download=download)


def load_bundle(settings: LabSettings) -> DatasetBundle:
    """The chosen dataset (cached per process). The path typed in the sidebar is untrusted: it
    must lie in an allowed root (``kdviz.paths.confine``), else a ``ValueError`` says so; messages
    name the expected files, never what the folder holds."""
    source = DATA_SOURCES.get(settings.dataset)
    if source is not None and not settings.data_root and not (settings.download and source.downloads):
        if source.downloads:
            raise ValueError(f"{DATASETS[settings.dataset]}: type the folder that holds its four IDX files "
                             "in the sidebar, or tick 'Download if missing'")
        raise ValueError(f"{DATASETS[settings.dataset]}: type the path in the sidebar ({source.prompt.lower()}), "
                         "or choose it on the Your model page")
    root = None
    if settings.data_root:
        root = confine(settings.data_root, "data folder" if source is None or not source.file else "data path")
        if source is not None and source.file and not (root.is_dir() or root.is_file()):
            raise ValueError(f"{settings.data_root!r} does not exist")
        if (source is None or not source.file) and not root.is_dir():
            raise ValueError(f"folder {settings.data_root!r} does not exist")
        if source is not None and source.file and root.suffix.lower() == ".json" and root.is_file():
            confine(read_descriptor(root, DESCRIPTION_KEYS)[0], "data path")  # the files it names, too
    return _load(settings.dataset, str(root) if root is not None else None, settings.download)


def current_settings() -> LabSettings:
    """The settings as the sidebar last left them (defaults before it is drawn)."""
    s = st.session_state
    dataset = s.get(KEYS["dataset"], "digits")
    root = (s.get(KEYS["root"]) or "").strip() or None
    return LabSettings(
        dataset=dataset,
        data_root=root if dataset != "digits" else None,
        download=bool(s.get(KEYS["download"], False)) and DATA_SOURCES.get(dataset, DataSource("", "")).downloads,
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
_ROOTS = "kdviz_sidebar_roots"  # {dataset: the path last typed for it}, so switching back finds it again


@lru_cache(maxsize=16)
def _imported(root: str, stamp: int, dataset: str, data_root: str | None) -> tuple[tuple[str, ModelChoice], ...]:
    found = []
    for row in list_runs(root):
        path = Path(row["path"])
        if row["state"] != "finished" or row["dataset"] != dataset or not (path / "imported.json").is_file():
            continue
        try:
            config = read_config(path)
        except (ValueError, TypeError, OSError):
            continue
        if config.data_root != data_root:
            continue
        accuracy = f", test accuracy {row['test_acc']:.1%}" if isinstance(row.get("test_acc"), float) else ""
        found.append((f"{IMPORTED_PREFIX}{path.name}",
                      ModelChoice(config.model, dict(config.model_options), f"imported weights{accuracy}", str(path))))
    return tuple(found)


def imported_teachers(dataset: str, data_root: str | None = None) -> dict[str, ModelChoice]:
    """``{label: ModelChoice}`` of the finished runs imported (Your model page) for ``dataset`` and
    ``data_root`` under the runs root, newest first; re-read whenever a run folder is added."""
    root = runs_root()
    try:
        stamp = root.stat().st_mtime_ns
    except OSError:
        return {}
    return dict(_imported(str(root), stamp, dataset, data_root))


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
    old_source, new_source = DATA_SOURCES.get(old), DATA_SOURCES.get(new)
    if new_source is not None and old_source is not new_source:  # another kind of path: the one typed for it
        roots = s.setdefault(_ROOTS, {})
        if old_source is not None:
            roots[old] = s.get(KEYS["root"], "")
        s[KEYS["root"]] = roots.get(new, os.environ.get("KDVIZ_DATA", "") if new_source.downloads else "")


def _shape_and_classes(settings: LabSettings) -> tuple[tuple[int, int, int], int]:
    """The image shape and class count the parameter counts are for (your data: read from it)."""
    if settings.dataset == "digits":
        return (1, 8, 8), 10
    if DATA_SOURCES.get(settings.dataset, IDX_SOURCE).downloads:
        return (1, 28, 28), 10
    try:
        bundle = load_bundle(settings)
    except (ValueError, OSError):
        return (1, 28, 28), 10
    return bundle.input_shape, bundle.num_classes


def render_sidebar() -> LabSettings:
    """Draw the sidebar's widgets and return the choices."""
    with st.sidebar:
        st.subheader("Data and models")
        st.selectbox("Dataset", list(DATASETS), format_func=DATASETS.get, key=KEYS["dataset"], help=DATASET_HELP,
                     on_change=_follow_dataset)
        source = DATA_SOURCES.get(st.session_state[KEYS["dataset"]])
        if source is not None:
            st.session_state.setdefault(KEYS["root"], os.environ.get("KDVIZ_DATA", "") if source.downloads else "")
            st.text_input(source.prompt, key=KEYS["root"], placeholder=source.placeholder)
            if source.downloads:
                st.checkbox("Download if missing", key=KEYS["download"],
                            help="Fetch the files into ~/.cache/kdviz (or $KDVIZ_CACHE); needs internet.")
        settings = current_settings()
        shape, classes = _shape_and_classes(settings)
        imported = imported_teachers(settings.dataset, settings.data_root)
        if st.session_state.get(KEYS["teacher"], LabSettings.teacher) not in {**TEACHERS, **imported}:
            st.session_state[KEYS["teacher"]] = LabSettings.teacher  # an import of another dataset: the default
        st.selectbox("Teacher", [*TEACHERS, *imported], key=KEYS["teacher"],
                     help="Presets train here in seconds to minutes; 'Imported' runs are weights you imported "
                          "on the Your model page for this dataset.")
        with user_errors("Teacher size"):
            st.caption(_params(current_settings().teacher_model, shape, classes))
        st.selectbox("Student", list(STUDENTS), key=KEYS["student"])
        with user_errors("Student size"):
            st.caption(_params(STUDENTS[st.session_state[KEYS["student"]]], shape, classes))
        st.divider()
        st.radio("Chart images (camera button)", IMAGE_FORMATS, format_func=str.upper, key=IMAGE_FORMAT_KEY,
                 horizontal=True, help="Each chart's toolbar saves it in this format; the CSV button gives its data.")
    return current_settings()
