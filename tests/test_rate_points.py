"""Rate control over discrete rate points (the learned codec's models), with a stand-in codec of known sizes."""
from __future__ import annotations

import numpy as np
import pytest

from mzc.codecs.base import Codec
from mzc.errors import MzcError
from mzc.metrics import psnr
from mzc.targets import Target, choose_point


class Points(Codec):
    """Point k codes a block in SIZES[k] bytes with a uniform error of ERRORS[k] grey levels."""
    id = "points"
    SIZES = [100, 200, 400, 800]
    ERRORS = [8, 4, 2, 1]

    def __init__(self, knob=None, log=None):
        super().__init__()
        self.knob, self.log = knob, log if log is not None else []

    def knob_values(self):
        return list(range(len(self.SIZES)))

    def with_knob(self, knob):
        self.log.append(knob)
        return Points(knob, self.log)

    def encode(self, block):
        return bytes(self.SIZES[self.knob]), {}

    def decode(self, body, shape, dtype, params):
        return np.full(shape, 100 + self.ERRORS[self.knob], dtype)


BLOCKS = [np.full((10, 10), 100, np.uint16)]


@pytest.mark.parametrize("budget,expected", [(90, 0), (140, 0), (150, 1), (300, 2), (5000, 3)])
def test_ratio_picks_the_point_nearest_the_budget_in_log_terms(budget, expected):
    assert choose_point(Points(), BLOCKS, Target("ratio", 50), budget, 1000).knob == expected


def test_points_that_are_not_monotonic_are_all_tried():
    class Unordered(Points):
        SIZES = [300, 100, 800, 200]
        ERRORS = [2, 8, 1, 4]

        def with_knob(self, knob):
            self.log.append(knob)
            return Unordered(knob, self.log)

    codec = Unordered()
    assert choose_point(codec, BLOCKS, Target("ratio", 50), 190, 1000).knob == 3
    assert codec.log == [0, 1, 2, 3]
    goal = psnr(4.0 ** 2, 1000) - 0.5  # met by errors 4, 2 and 1: the smallest of those is point 3 (200 bytes)
    assert choose_point(Unordered(), BLOCKS, Target("psnr", goal), None, 1000).knob == 3
    assert choose_point(Unordered(), BLOCKS, Target("psnr", goal), None, 1000, floor=0).body_bytes == 200


def test_psnr_gives_the_smallest_point_that_meets_the_target():
    goal = psnr(4.0 ** 2, 1000) - 0.5  # met by error 4 and better
    t = choose_point(Points(), BLOCKS, Target("psnr", goal), None, 1000)
    assert t.knob == 1 and t.body_bytes == 200


def test_psnr_beyond_the_best_point_is_a_clear_error():
    with pytest.raises(MzcError, match="best rate point reaches 60.0 dB"):
        choose_point(Points(), BLOCKS, Target("psnr", 70), None, 1000)
