"""The Your model page in a real browser (issue 19, "must show"): a .safetensors file uploaded through the
page's file box is checked against a kdviz MLP, evaluated on digits and written as a finished run, and the
page's success line carries the accuracy recomputed here. Skipped without /usr/bin/chromium unless
KDVIZ_REQUIRE_BROWSER=1."""
from __future__ import annotations

import time

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for

pytestmark = [pytest.mark.browser]
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PAGE = REPO / "kdviz" / "app" / "pages" / "your_model.py"


@pytest.fixture(scope="module")
def your_model_server(request, tmp_path_factory, runs_root):
    return one_page_server(request, tmp_path_factory.mktemp("your-model-app"), PAGE, "Your model", runs_root,
                           ARTIFACTS / "streamlit-browser-your-model.log", KDVIZ_CACHE=str(runs_root / "cache"))


def test_an_uploaded_safetensors_file_becomes_a_finished_run(your_model_server, browser, runs_root, tmp_path):
    from kdviz.data import load_dataset
    from kdviz.engine import list_runs
    from kdviz.models import build_model

    torch.manual_seed(7)
    model = build_model("mlp", (1, 8, 8), 10, hidden=[24]).eval()
    weights = tmp_path / "my-mlp.safetensors"
    save_file(model.state_dict(), str(weights))
    digits = load_dataset("digits")
    with torch.no_grad():
        direct = float((model(digits.test_images).argmax(1) == digits.test_labels).double().mean())

    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(your_model_server)
    main = page.get_by_test_id("stMainBlockContainer")
    wait_for(lambda: main.get_by_role("button", name="Import and evaluate").count(), 60, "the page")
    main.get_by_test_id("stSelectbox").filter(has_text="Model").click()
    page.get_by_role("option", name="mlp", exact=True).click()
    options = main.get_by_role("textbox", name="Its options (JSON)")
    options.fill('{"hidden": [24]}')
    options.press("Enter")
    wait_for(lambda: not page.get_by_test_id("stStatusWidget").count(), 30, "the rerun after the options to end")
    uploads = []

    def uploaded() -> bool:  # a file set while a rerun redraws the uploader is lost: set it again
        if main.get_by_text("my-mlp.safetensors").count():
            return True
        if not uploads or time.monotonic() - uploads[-1] > 8:
            dropzone = main.get_by_test_id("stFileUploaderDropzoneInput")
            if uploads:  # the input still holds the lost file: the same file again would fire no change
                dropzone.set_input_files([])
            dropzone.set_input_files(str(weights))
            uploads.append(time.monotonic())
        return False

    wait_for(uploaded, 60, "the upload to show its file name")
    success = main.get_by_test_id("stAlertContentSuccess")

    def imported() -> bool:  # a click during the upload's rerun is lost: click again once the page is idle
        if success.count() and "Imported" in success.first.inner_text():
            return True
        if not page.get_by_test_id("stStatusWidget").count():
            main.get_by_role("button", name="Import and evaluate").click()
            page.wait_for_timeout(1500)
        return False

    wait_for(imported, 60, "the import's success line")
    assert f"test accuracy {100 * direct:.2f}%" in success.first.inner_text()
    (row,) = [r for r in list_runs(runs_root) if r["name"].endswith("imported-my-mlp")]
    assert row["state"] == "finished" and row["model"] == "mlp"
    assert not page.get_by_test_id("stException").count()
    page.close()
