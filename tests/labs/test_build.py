"""``labs/build.py``: the committed notebooks and README table are what the sources build, and
``--check`` catches every way they can go stale (edits, missing or orphan notebooks, a hand-edited
table, a shared cell that drifted). Everything that edits runs on a temporary copy of ``labs/``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _labs_build import LABS, load_build

build = load_build()


def run_build(labs_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the ``build.py`` inside ``labs_dir`` as a user would."""
    return subprocess.run([sys.executable, str(labs_dir / "build.py"), *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def labs_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "labs"
    shutil.copytree(LABS, copy, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "runs"))
    return copy


def check(labs_dir: Path, capsys) -> tuple[int, str]:
    """``build.py --check`` on ``labs_dir``, in process: (exit code, what it printed)."""
    code = build.main(["--check"], labs_dir=labs_dir)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_committed_labs_are_what_the_sources_build():
    result = run_build(LABS, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "", "--check must write nothing"


def test_every_lab_has_a_source_and_a_notebook_without_outputs():
    names = [p.stem for p in build.lab_sources(LABS)]
    assert names[:6] == ["01_soft_targets", "02_distill_a_student", "03_fsp", "04_pruning", "05_quantization",
                         "06_deep_compression"]
    for name in names:
        nb = json.loads((LABS / f"{name}.ipynb").read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code), name


def test_an_edit_to_a_source_makes_check_fail_until_rebuilt(labs_copy: Path):
    source = labs_copy / "src" / "03_fsp.py"
    text = source.read_text(encoding="utf-8")
    assert "# ## 1. The teacher: a deep ResNet" in text
    source.write_text(text.replace("# ## 1. The teacher: a deep ResNet", "# ## 1. The teacher: a very deep ResNet"))

    stale = run_build(labs_copy, "--check")
    assert stale.returncode == 1
    assert "03_fsp.ipynb" in stale.stderr and "01_soft_targets" not in stale.stderr
    assert "a very deep ResNet" not in (labs_copy / "03_fsp.ipynb").read_text(encoding="utf-8"), "--check wrote"

    assert run_build(labs_copy).returncode == 0
    assert "a very deep ResNet" in (labs_copy / "03_fsp.ipynb").read_text(encoding="utf-8")
    assert run_build(labs_copy, "--check").returncode == 0
    assert "a very deep ResNet" not in (LABS / "03_fsp.ipynb").read_text(encoding="utf-8"), "the real labs changed"


def test_check_names_missing_notebooks_and_notebooks_without_source(labs_copy: Path, capsys):
    (labs_copy / "02_distill_a_student.ipynb").unlink()
    shutil.copy(labs_copy / "04_pruning.ipynb", labs_copy / "09_old_lab.ipynb")
    (labs_copy / "05_quantization.ipynb").write_text("{}", encoding="utf-8")
    code, out = check(labs_copy, capsys)
    assert code == 1
    assert "02_distill_a_student.ipynb: missing" in out
    assert "09_old_lab.ipynb: has no source" in out
    assert "05_quantization.ipynb: differs" in out
    assert "04_pruning" not in out.replace("09_old_lab", "")


def test_a_new_source_is_built_and_listed_in_the_readme(labs_copy: Path, capsys):
    text = (labs_copy / "src" / "01_soft_targets.py").read_text(encoding="utf-8")
    assert "#     title: Soft targets\n" in text
    (labs_copy / "src" / "07_more_heat.py").write_text(text.replace("title: Soft targets", "title: More heat"))
    code, out = check(labs_copy, capsys)
    assert code == 1 and "07_more_heat.ipynb: missing" in out and "README.md" in out

    assert build.main([], labs_dir=labs_copy) == 0
    assert (labs_copy / "07_more_heat.ipynb").is_file()
    readme = (labs_copy / "README.md").read_text(encoding="utf-8")
    assert "| [07 · More heat](07_more_heat.ipynb) |" in readme
    order = [readme.index(s) for s in ("06_deep_compression.ipynb", "07_more_heat.ipynb", build.TABLE_END)]
    assert order == sorted(order)
    assert check(labs_copy, capsys)[0] == 0


def test_a_hand_edited_readme_table_is_stale(labs_copy: Path, capsys):
    readme = labs_copy / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("`TemperatureExplorer`", "`Thermometer`"))
    code, out = check(labs_copy, capsys)
    assert code == 1 and "README.md" in out and ".ipynb" not in out


def share_settings_cell(labs_dir: Path, labs: tuple[str, ...], name: str) -> None:
    """Mark the first code cell (the settings, the same in these labs) of ``labs`` as ``shared=name``."""
    for lab in labs:
        source = labs_dir / "src" / f"{lab}.py"
        text = source.read_text(encoding="utf-8")
        assert text.count("\n# %%\nfrom kdviz.present.labs import") == 1, lab
        source.write_text(text.replace("\n# %%\nfrom kdviz.present.labs import",
                                       f'\n# %% shared="{name}"\nfrom kdviz.present.labs import'))


def test_a_shared_cell_cannot_drift(labs_copy: Path, capsys):
    share_settings_cell(labs_copy, ("05_quantization", "06_deep_compression"), "lenet300-settings")
    assert build.main([], labs_dir=labs_copy) == 0, "identical shared cells build"
    source = labs_copy / "src" / "06_deep_compression.py"
    text = source.read_text(encoding="utf-8")
    assert 'LAB = lab_settings(dataset="digits")' in text
    source.write_text(text.replace('LAB = lab_settings(dataset="digits")', 'LAB = lab_settings(dataset="mnist")', 1))
    code, out = check(labs_copy, capsys)
    assert code == 1
    assert "shared cell 'lenet300-settings' differs between 05_quantization and 06_deep_compression" in out
    assert '+LAB = lab_settings(dataset="mnist")' in out
    assert build.main([], labs_dir=labs_copy) == 1, "a build must refuse a drifted shared cell"


def test_a_shared_cell_in_one_lab_only_is_a_typo(labs_copy: Path, capsys):
    share_settings_cell(labs_copy, ("01_soft_targets",), "settings")
    share_settings_cell(labs_copy, ("02_distill_a_student",), "settngs")
    code, out = check(labs_copy, capsys)
    assert code == 1 and "'settngs' is only in 02_distill_a_student" in out and "'settings' is only in 01" in out


@pytest.mark.parametrize("old, new, message", [
    ("#     title: Soft targets\n", "", "lacks ['title']"),
    ("#     - TemperatureExplorer\n", "#     - TemperatureExplorer\n#     - Thermometer\n",
     "widgets its code never uses: Thermometer"),
    ("#     paper: Hinton, Vinyals & Dean 2015, eq. 1", "#     paper: Hinton | Vinyals", "without '|'"),
], ids=["no title", "unused widget", "pipe in paper"])
def test_a_bad_header_is_named(labs_copy: Path, capsys, old: str, new: str, message: str):
    source = labs_copy / "src" / "01_soft_targets.py"
    text = source.read_text(encoding="utf-8")
    assert old in text
    source.write_text(text.replace(old, new))
    code, out = check(labs_copy, capsys)
    assert code == 1 and "01_soft_targets.py" in out and message in out


def test_a_source_must_be_named_like_a_lab(labs_copy: Path, capsys):
    shutil.copy(labs_copy / "src" / "01_soft_targets.py", labs_copy / "src" / "Soft-Targets.py")
    code, out = check(labs_copy, capsys)
    assert code == 1 and "NN_topic.py" in out and "Soft-Targets.py" in out


def test_jupyterlab_pairing_saves_a_notebook_edit_to_the_source(labs_copy: Path):
    """What JupyterLab does with jupytext installed: open the built notebook (newer than its source,
    as after a build), edit a cell, save; the edit lands in ``src/``, and the build then agrees."""
    jupytext = pytest.importorskip("jupytext")
    for notebook in labs_copy.glob("*.ipynb"):
        notebook.touch()
    source = labs_copy / "src" / "04_pruning.py"
    original = source.read_text(encoding="utf-8")
    manager = jupytext.TextFileContentsManager(root_dir=str(labs_copy))
    nb = manager.get("04_pruning.ipynb")["content"]
    assert [c.source for c in nb.cells] == [c.source for c in build.read_lab(source).notebook.cells]
    nb.cells[0].source = nb.cells[0].source.replace("most weights can go", "most weights can go (edited)")
    manager.save({"type": "notebook", "format": "json", "content": nb}, "04_pruning.ipynb")

    title = "# # Lab 4 · Pruning: most weights can go"
    assert title in original
    assert source.read_text(encoding="utf-8") == original.replace(title, f"{title} (edited)"), \
        "a save must change the edited line only (header and shared-cell marks kept)"
    assert run_build(labs_copy).returncode == 0
    assert run_build(labs_copy, "--check").returncode == 0
    assert "most weights can go (edited)" in (labs_copy / "04_pruning.ipynb").read_text(encoding="utf-8")


def test_every_lab_source_is_already_as_jupyterlab_would_save_it(labs_copy: Path):
    """Opening and saving a notebook unchanged in JupyterLab (jupytext pairing) leaves every source as
    it is: a header line longer than jupytext's YAML width would be re-wrapped by the first save, and a
    reader's first edit would then change lines they never touched."""
    jupytext = pytest.importorskip("jupytext")
    for notebook in labs_copy.glob("*.ipynb"):
        notebook.touch()
    manager = jupytext.TextFileContentsManager(root_dir=str(labs_copy))
    changed = []
    for notebook in sorted(labs_copy.glob("*.ipynb")):
        source = labs_copy / "src" / f"{notebook.stem}.py"
        before = source.read_text(encoding="utf-8")
        manager.save({"type": "notebook", "format": "json", "content": manager.get(notebook.name)["content"]},
                     notebook.name)
        if source.read_text(encoding="utf-8") != before:
            changed.append(source.name)
    assert not changed, f"re-wrapped by a JupyterLab save (shorten their header lines): {changed}"
