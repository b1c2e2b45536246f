"""The protocols' China local times: one shape accepted, everything else refused."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couriers.adapters.common import SHANGHAI, format_local_time, parse_local_time


def test_a_local_time_is_read_as_shanghai_time():
    moment = parse_local_time(" 2026-11-20 08:05:09 ")
    assert moment == datetime(2026, 11, 20, 8, 5, 9, tzinfo=SHANGHAI)
    assert moment.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T08:05:09",  # ISO's T is not the protocols' shape
        "2026-11-20 08:05:09+00:00",
        "2026-11-20 08:05",
        "2026-13-20 08:05:09",
        "2026-11-20 25:05:09",
        "20261120 080509",
        "",
    ],
)
def test_other_shapes_are_refused(text):
    with pytest.raises(ValueError):
        parse_local_time(text)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_formatting_and_reading_agree(naive):
    moment = naive.replace(microsecond=0, tzinfo=SHANGHAI)
    assert parse_local_time(format_local_time(moment)) == moment
