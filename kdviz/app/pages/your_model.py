"""Your model: import ``.safetensors`` weights (a kdviz architecture or a JSON spec) and your own data.

Data: an image folder (one subfolder per class) or a CSV of pixels, chosen by path (confined to the
allowed roots, ``kdviz.paths.confine``); "Use this dataset" sets the sidebar's dataset, so every page
then trains, prunes and quantizes on it. Model: weights are checked against the architecture and
written as a finished run (``kdviz.importer.import_weights``), evaluated on the sidebar's dataset;
the sidebar's teacher box then offers it, so every page that needs a teacher uses it. The run's
config records the lab's teacher settings, so the pages' teacher look-up finds it as that teacher.
"""
from __future__ import annotations

import json

import streamlit as st

from kdviz import paths
from kdviz.app import session
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.sidebar import DATA_SOURCES, DATASETS, IMPORTED_PREFIX, KEYS, current_settings, imported_teachers
from kdviz.app.teacher import TEACHER_LR, teacher_epochs
from kdviz.importer import import_weights, spec_options
from kdviz.importer.sources import describe_dataset, save_upload
from kdviz.models import list_models
from kdviz.models.wrapped import registered_wrapped

K = {"kind": "ym_kind", "path": "ym_path", "height": "ym_height", "width": "ym_width", "channels": "ym_channels",
     "shape": "ym_shape", "label": "ym_label", "data_note": "ym_data_note", "arch": "ym_arch", "model": "ym_model",
     "options": "ym_options", "spec": "ym_spec", "upload": "ym_upload", "weights_path": "ym_weights_path",
     "imported": "ym_imported", "teacher_note": "ym_teacher_note"}
USER_DATA = [name for name in DATA_SOURCES if not DATA_SOURCES[name].downloads]
EXAMPLE_SPEC = json.dumps([{"conv": 16, "kernel": 3}, {"pool": 2}, {"conv": 32, "kernel": 3}, {"pool": 2},
                           {"linear": 64}, {"dropout": 0.2}])
ARCHS = ("A kdviz model", "A JSON spec (layer list)")
state = st.session_state


def data_options(kind: str) -> dict:
    """The options of the data description the widgets ask for (None: left to the loader)."""
    if kind == "image-folder":
        h, w = int(state.get(K["height"]) or 0), int(state.get(K["width"]) or 0)
        channels = {"as the files are": None, "grey": 1, "colour": 3}[state.get(K["channels"], "as the files are")]
        return {"size": [h, w] if h and w else None, "channels": channels}
    raw = (state.get(K["shape"]) or "").strip()
    try:
        shape = [int(v) for v in raw.replace("x", ",").split(",")] if raw else None
    except ValueError:
        raise ValueError(f"shape {raw!r}: type C, H, W as whole numbers, e.g. 1, 28, 28 (or leave it empty)") from None
    label = (state.get(K["label"]) or "label").strip()
    return {"shape": shape, "label_column": None if label == "label" else label}


def use_dataset() -> None:
    """The button's callback (before the rerun, so it may set the sidebar's widgets)."""
    kind = state[K["kind"]]
    try:
        path = paths.confine(state.get(K["path"]) or "", "data path")
        root = describe_dataset(kind, path, data_options(kind))
    except (ValueError, OSError) as exc:
        state[K["data_note"]] = ("error", plain_message(exc))
        return
    state[KEYS["dataset"]], state[KEYS["root"]] = kind, root
    state["kdviz_sidebar_last_dataset"] = kind
    state[K["data_note"]] = ("ok", f"Every page now uses {DATASETS[kind].lower()} from `{path}`.")


def use_as_teacher(label: str) -> None:
    state[KEYS["teacher"]] = label
    state[K["teacher_note"]] = label


def architecture() -> tuple[str, dict]:
    """(model name, model_options) from the widgets; a ``ValueError`` names a bad JSON."""
    if state.get(K["arch"], ARCHS[0]) == ARCHS[1]:
        return "spec", spec_options(state.get(K["spec"]) or "")
    try:
        options = json.loads(state.get(K["options"]) or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"the options are not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(options, dict):
        raise ValueError("the options must be a JSON object, e.g. {\"hidden\": [64, 64]}")
    return state[K["model"]], options


def weights_file():
    upload = state.get(K["upload"])
    if upload is not None:
        return save_upload(upload.name, upload.getvalue())
    typed = (state.get(K["weights_path"]) or "").strip()
    if not typed:
        raise ValueError("upload a .safetensors file or type the path of one")
    return paths.confine(typed, "weights file")


def import_now(settings) -> None:
    model, options = architecture()
    run = import_weights(weights_file(), model, options, dataset=settings.dataset, data_root=settings.data_root,
                         runs_root=session.runs_root(),
                         config_fields={"epochs": teacher_epochs(settings.dataset), "lr": TEACHER_LR})
    state[K["imported"]] = (str(run.path), run.test_acc, run.tensors)


st.title("Your model and data")
st.caption("Bring a model trained elsewhere (its weights as a .safetensors file) and your own images: every page "
           "then distils, prunes and quantizes them like the lab's own.")
settings = current_settings()

st.subheader("1. Your data")
st.radio("Data", USER_DATA, format_func=DATASETS.get, key=K["kind"], horizontal=True)
kind = state[K["kind"]]
st.text_input(DATA_SOURCES[kind].prompt, key=K["path"], placeholder=DATA_SOURCES[kind].placeholder,
              help="Only folders under the allowed roots open: " + ", ".join(map(str, paths.allowed_roots())))
if kind == "image-folder":
    left, middle, right = st.columns(3)
    left.number_input("Resize to height (0: keep)", 0, 1024, 0, key=K["height"])
    middle.number_input("width (0: keep)", 0, 1024, 0, key=K["width"])
    right.selectbox("Channels", ["as the files are", "grey", "colour"], key=K["channels"])
else:
    left, right = st.columns(2)
    left.text_input("Shape C, H, W (empty: a square image)", key=K["shape"], placeholder="1, 28, 28")
    right.text_input("Label column", key=K["label"], placeholder="label")
st.button("Use this dataset", on_click=use_dataset, type="primary", icon=":material/dataset:")
note = state.get(K["data_note"])
if note:
    (st.success if note[0] == "ok" else st.error)(note[1])
st.caption(f"The sidebar's dataset now: **{DATASETS.get(settings.dataset, settings.dataset)}**"
           + (f" from `{settings.data_root}`" if settings.data_root else ""))

st.subheader("2. Your model's weights")
st.radio("Architecture", ARCHS, key=K["arch"], horizontal=True)
if state[K["arch"]] == ARCHS[0]:
    zoo = [name for name in list_models() if name != "spec" and name not in registered_wrapped()]
    left, right = st.columns([1, 2])
    left.selectbox("Model", zoo, key=K["model"], index=zoo.index("lenet5") if "lenet5" in zoo else 0)
    right.text_input("Its options (JSON)", key=K["options"], value="{}", help='e.g. {"hidden": [64, 64]} for mlp')
else:
    st.text_area("Layers (JSON)", key=K["spec"], value=EXAMPLE_SPEC, height=90,
                 help='conv {"conv": C, "kernel": 3}, pool {"pool": 2}, dense {"linear": N}, {"dropout": p}; '
                      "the classifier is added for the dataset's classes")
st.file_uploader("Weights (.safetensors, never a pickle)", type=["safetensors"], key=K["upload"])
st.text_input("...or the path of a .safetensors file", key=K["weights_path"])
if st.button("Import and evaluate", type="primary", icon=":material/upload:"):
    with user_errors("Import"), st.spinner("Checking the weights and evaluating them..."):
        import_now(settings)
done = state.get(K["imported"])
if done:
    path, accuracy, tensors = done
    label = IMPORTED_PREFIX + path.rsplit("/", 1)[-1]
    st.success(f"Imported {tensors} tensors: test accuracy **{accuracy:.2%}** on "
               f"{DATASETS.get(settings.dataset, settings.dataset)}. Run folder: `{path}`.")
    st.button("Use it as the sidebar's teacher", on_click=use_as_teacher, args=(label,), icon=":material/school:")
if state.get(K["teacher_note"]):
    st.info(f"The teacher is now **{state[K['teacher_note']]}**: every page that distils from a teacher uses it.")

st.subheader("Imported for this dataset")
imported = imported_teachers(settings.dataset, settings.data_root)
if imported:
    st.dataframe([{"run": label.removeprefix(IMPORTED_PREFIX), "model": choice.model, "note": choice.note}
                  for label, choice in imported.items()], hide_index=True)
else:
    st.caption("Nothing imported for this dataset yet.")

with st.expander("In Jupyter: wrap any nn.Module"):
    st.code("import kdviz\nmodel = kdviz.wrap(my_net, input_shape=(1, 28, 28))   # features, prunable layers\n"
            "kdviz.widgets.PruningExplorer(model, dataset)            # every widget takes it", language="python")
