"""FSP captions say what the records show (kdviz.present.fsp_story)."""
from kdviz.present.fsp_story import loss_fall_caption, race_caption


def test_loss_caption_reports_the_fall_or_its_absence():
    assert "fell 10.0x" in loss_fall_caption([50.0, 20.0, 5.0])
    assert "has not fallen" in loss_fall_caption([5.0, 6.0])
    assert "fills in" in loss_fall_caption([3.0])


def test_race_caption_on_each_outcome_compares_at_the_same_step():
    scratch = [{"step": 10, "test_acc": 0.30}, {"step": 50, "test_acc": 0.60}, {"step": 90, "test_acc": 0.9}]
    ahead = race_caption([{"step": 50, "test_acc": 0.85}], scratch)
    assert ahead.startswith("Fast optimisation shows") and "85.0%" in ahead and "60.0%" in ahead and "+25.0" in ahead
    assert race_caption([{"step": 50, "test_acc": 0.602}], scratch).startswith("Level so far")
    behind = race_caption([{"step": 50, "test_acc": 0.40}], scratch)
    assert behind.startswith("Scratch leads") and "-20.0 points" in behind
    assert "no evaluation that early" in race_caption([{"step": 5, "test_acc": 0.2}], scratch)
    assert "not been evaluated" in race_caption([], scratch)
