"""The distillation captions follow the numbers: KD ahead, scratch ahead, level, and why."""
import numpy as np
import pytest

from kdviz.present.story import (
    LEVEL_POINTS, ProbeDistances, RaceSettings, accuracy_caption, mean_top_probability, probe_caption,
    probe_distances, race_summary, scratch_win_reasons, total_variation,
)

SMALL_SET = RaceSettings(T=4.0, alpha=0.5, train_size=200, num_classes=10, teacher_top_prob=0.6)


def test_kd_ahead_at_the_end_is_said_with_the_gap_and_no_excuses():
    text = accuracy_caption(0.931, 0.876, SMALL_SET, finished=True, teacher_acc=0.967)
    assert "KD student ends 5.5 points above the scratch student (93.1% vs 87.6%)" in text
    assert "should" not in text and "Likely reasons" not in text and "wins" not in text


def test_scratch_ahead_at_the_end_names_the_scratch_winner_and_every_reason_the_numbers_support():
    settings = RaceSettings(T=1.0, alpha=0.9, train_size=1347, num_classes=10, teacher_top_prob=0.97)
    text = accuracy_caption(0.929, 0.951, settings, finished=True, teacher_acc=0.955)
    assert "the scratch student wins, 2.2 points above the KD student (95.1% vs 92.9%)" in text
    assert "overconfident at T = 1" in text and "97%" in text  # teacher soft targets nearly one-hot
    assert "barely better" in text  # teacher 95.5 % vs scratch 95.1 %
    assert "alpha = 0.9" in text and "10%" in text
    assert "1,347 labelled images" in text
    assert "stay above" not in text and "KD student ends" not in text


def test_each_reason_appears_only_when_its_number_supports_it():
    quiet = RaceSettings(T=4.0, alpha=0.5, train_size=200, num_classes=10, teacher_top_prob=0.6)
    assert scratch_win_reasons(quiet, 0.90, 0.91, teacher_acc=0.97) == []
    small = scratch_win_reasons(quiet, 0.80, 0.81, teacher_acc=0.97)  # KD 17 points under the teacher
    assert len(small) == 1 and "too small" in small[0] and "17.0 points" in small[0]
    unknown = RaceSettings(T=4.0, alpha=0.5)  # no teacher confidence, no data size, no teacher accuracy
    assert scratch_win_reasons(unknown, 0.9, 0.91) == []
    text = accuracy_caption(0.90, 0.91, quiet, finished=True, teacher_acc=0.97)
    assert "scratch student wins, 1.0 points" in text and "seed-to-seed noise" in text


def test_level_running_and_empty_states():
    level = accuracy_caption(0.902, 0.900, SMALL_SET, finished=True)
    assert "end level (90.2% vs 90.0%)" in level and abs(0.2) < LEVEL_POINTS
    assert "So far the scratch student leads by 3.0 points (83.0% vs 80.0%)" in accuracy_caption(0.80, 0.83, SMALL_SET, finished=False)
    assert "So far the KD student leads by 4.0 points" in accuracy_caption(0.87, 0.83, SMALL_SET, finished=False)
    assert "So far the two students are level" in accuracy_caption(0.8301, 0.83, SMALL_SET, finished=False)
    assert "once both curves appear" in accuracy_caption(None, 0.5, SMALL_SET, finished=False)
    named = accuracy_caption(0.95, 0.90, SMALL_SET, finished=True, kd_label="KD T=4", scratch_label="scratch")
    assert "The KD T=4 ends 5.0 points above the scratch" in named


def test_total_variation_and_top_probability_against_hand_values():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    q = np.array([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(total_variation(p, q), [0.5, 0.0])
    assert mean_top_probability(p) == pytest.approx(0.75)


def test_probe_caption_follows_whose_bars_are_closer():
    teacher = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    close = np.array([[0.65, 0.25, 0.1], [0.6, 0.3, 0.1]])  # TV 0.05 and 0: mean 0.025
    far = np.array([[0.98, 0.01, 0.01], [0.98, 0.01, 0.01]])  # TV 0.28 and 0.38: mean 0.33
    kd_wins = probe_distances(teacher, close, far, T=4.0)
    assert kd_wins.kd == pytest.approx(0.025) and kd_wins.scratch == pytest.approx(0.33)
    text = probe_caption(kd_wins, finished=True, probe_count=2)
    assert "taken the teacher's shape" in text and "0.02 from the teacher's" in text and "0.33" in text
    scratch_wins = probe_caption(probe_distances(teacher, far, close, T=4.0), finished=False, probe_count=2)
    assert "scratch student is so far closer to the teacher" in scratch_wins
    assert "taken the teacher's shape" not in scratch_wins and "alpha may be low" in scratch_wins


def test_probe_caption_blames_one_hot_soft_targets_when_both_match():
    d = ProbeDistances(T=1.0, kd=0.02, scratch=0.03, teacher_top_prob=0.99)
    text = probe_caption(d, finished=True, probe_count=10)
    assert "about as close" in text and "nearly one-hot (top class 99%)" in text
    assert "no scratch" not in probe_caption(ProbeDistances(4.0, 0.1, None, 0.5), finished=True, probe_count=3)


def test_race_summary_counts_wins_over_seeds():
    assert race_summary([(0.93, 0.88), (0.92, 0.90), (0.90, 0.91)]) == \
        "KD ahead on 2 of 3 seeds; mean gap +2.0 points (from -1.0 to +5.0)."
    with pytest.raises(ValueError, match="at least one"):
        race_summary([])
