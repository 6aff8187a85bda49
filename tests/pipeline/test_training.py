"""The network's training pool: which frames of a clip it trains on."""

import pytest

from blendstyle.pipeline.training import POOL_PAIRS, pair_starts


@pytest.mark.parametrize("count", [2, 3, 10, 36, 240, 257, 258, 1000, 18_000])
def test_the_pairs_trained_on_reach_from_the_first_frame_to_the_last(count):
    """Every pair of a clip of up to 257 frames, else 256 pairs spread evenly: a 36-frame clip's pairs all
    began in its first 7 frames (spread as if there were 256), and pan240's last 16 frames went unseen."""
    starts = pair_starts(count)
    assert len(starts) == min(POOL_PAIRS, count - 1) and starts[0] == 0 and starts[-1] == count - 2
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert not gaps or max(gaps) - min(gaps) <= 1  # evenly: no stretch of the clip left out
