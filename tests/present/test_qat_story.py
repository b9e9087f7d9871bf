"""The QAT story's words and curves from numbers (no training): who leads against PTQ and float."""
from __future__ import annotations

import pytest

from kdviz.present.qat_story import PTQ_LABEL, approach, bits_caption


def test_caption_gives_points_against_ptq_and_float():
    curves = {PTQ_LABEL: {8: 0.98, 2: 0.60}, "LSQ": {2: 0.95}, "QAT": {2: 0.90}}
    text = bits_caption(curves, float_acc=0.98)
    assert "LSQ at 2 bits: 95.0% (+35.0 points against PTQ, -3.0 against float)" in text
    assert "QAT at 2 bits: 90.0% (+30.0 points against PTQ, -8.0 against float)" in text


def test_caption_before_any_trained_run_names_ptq_at_its_fewest_bits():
    assert bits_caption({PTQ_LABEL: {8: 0.98, 3: 0.91}}, 0.98).startswith("PTQ alone so far: at 3 bits it keeps 91.0%")
    assert bits_caption({}, None) == "No results yet."


def test_unknown_approach_is_named():
    with pytest.raises(ValueError, match="unknown approach 'ptq' \\(choose qat, lsq\\)"):
        approach("ptq")
