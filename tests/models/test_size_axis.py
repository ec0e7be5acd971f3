"""The width axis beside the named sizes: built networks match the analytic counts, sizes grow with width, and
names off the axis are refused saying what is valid."""

import pytest

from eqscale.models.counts import num_params
from eqscale.models.registry import build_model


@pytest.mark.parametrize("model, sizes", [("gatr", ["mv2", "mv5", "mv12"]), ("transformer", ["w16", "w48", "w160"])])
def test_axis_sizes_build_and_count(model, sizes):
    counts = [num_params(model, size) for size in sizes]
    assert counts == sorted(counts) and counts[-1] > 10 * counts[0]
    for size, count in zip(sizes, counts):
        assert build_model(model, size).num_params() == count


def test_named_sizes_sit_on_the_axis_where_their_depth_agrees():
    assert num_params("gatr", "mv8") == num_params("gatr", "xs")
    assert num_params("transformer", "w128") == num_params("transformer", "s")


@pytest.mark.parametrize("model, size, message", [
    ("gatr", "w64", "unknown gatr size 'w64'.*mv<channels>"),
    ("transformer", "w100", "divisible by its 3 heads"),
    ("gatr", "mv1", "at least 2 multivector channels"),
    ("transformer", "huge", "w<width> on its width axis"),
])
def test_off_axis_names_are_refused(model, size, message):
    with pytest.raises(KeyError, match=message):
        num_params(model, size)
