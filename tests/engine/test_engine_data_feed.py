"""BatchFeed: seeded permutations with indices, resumable order, and Hinton's +-2 px jitter."""
import numpy as np
import pytest
import torch

from kdviz.engine.data_feed import BatchFeed, jitter_images


def _feed(n=50, batch=8, seed=3, jitter=0):
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 5, 5).contiguous()
    labels = torch.arange(n) % 7
    return BatchFeed(images, labels, batch, seed=seed, jitter_px=jitter)


def test_every_epoch_visits_each_image_once_with_matching_indices():
    feed = _feed()
    assert len(feed) == 7  # ceil(50 / 8)
    seen = []
    for images, labels, idx in feed.epoch(0):
        assert torch.equal(images[:, 0, 0, 0], idx.float())
        assert torch.equal(labels, idx % 7)
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(50))


def test_order_is_seeded_per_epoch_and_resumable():
    a, b = _feed(seed=3), _feed(seed=3)
    order = lambda f, e, s=0: torch.cat([bt.indices for bt in f.epoch(e, s)]).tolist()  # noqa: E731
    assert order(a, 0) == order(b, 0)
    assert order(a, 0) != order(a, 1)
    assert order(a, 0) != order(_feed(seed=4), 0)
    assert order(a, 2, 3) == order(a, 2)[3 * 8 :]


def _jitter_reference(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """out[b, :, i, j] = images[b, :, i - dy, j - dx] when inside the image, else 0 (plain loops)."""
    out = np.zeros_like(images)
    _, _, h, w = images.shape
    for b, (dy, dx) in enumerate(shifts):
        for i in range(h):
            for j in range(w):
                if 0 <= i - dy < h and 0 <= j - dx < w:
                    out[b, :, i, j] = images[b, :, i - dy, j - dx]
    return out


def test_jitter_shifts_with_zero_fill_like_a_plain_loop():
    rng = np.random.default_rng(0)
    images = rng.random((6, 2, 5, 7)).astype(np.float32)
    shifts = np.array([[0, 0], [2, -2], [-1, 1], [1, 2], [-2, -1], [2, 0]])
    got = jitter_images(torch.from_numpy(images), torch.from_numpy(shifts), 2).numpy()
    np.testing.assert_array_equal(got, _jitter_reference(images, shifts))


def test_jittered_epochs_shift_by_at_most_two_pixels_and_are_seeded():
    n = 40
    images = torch.zeros(n, 1, 9, 9)
    images[:, 0, 4, 4] = 1.0  # one bright pixel in the centre: its new place shows the shift
    feed = BatchFeed(images, torch.zeros(n, dtype=torch.long), 16, seed=1, jitter_px=2)
    shifts = set()
    for batch in feed.epoch(0):
        pos = batch.images[:, 0].flatten(1).argmax(dim=1)
        for p in pos.tolist():
            dy, dx = p // 9 - 4, p % 9 - 4
            assert abs(dy) <= 2 and abs(dx) <= 2
            shifts.add((dy, dx))
    assert len(shifts) > 10  # many of the 25 shifts occur
    first = [b.images for b in feed.epoch(0)]
    again = [b.images for b in BatchFeed(images, torch.zeros(n, dtype=torch.long), 16, seed=1, jitter_px=2).epoch(0)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))


def test_bad_arguments():
    with pytest.raises(ValueError, match="labels"):
        BatchFeed(torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="batch_size"):
        BatchFeed(torch.zeros(3, 1, 2, 2), torch.zeros(3, dtype=torch.long), 0)
