"""List-cell formatting gives what Django's own formatting gives, in both languages."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone, translation
from django.utils.formats import date_format
from hypothesis import given
from hypothesis import strategies as st

from intercepts.display import _compiled, short_age, short_datetime

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@given(moment=moments)
def test_short_datetime_is_djangos_short_datetime(language, moment):
    with translation.override(language):
        expected = date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")
        assert short_datetime(moment) == expected
        assert short_datetime(moment, language=language) == expected


def test_formats_with_escapes_braces_or_unknown_characters():
    moment = datetime(2026, 3, 5, 7, 8, 9)
    assert _compiled(r"\Y{j}").format(moment) == "Y{5}"
    assert _compiled("Y年n月j日 H:i").format(moment) == "2026年3月5日 07:08"
    assert _compiled("N j, Y, P") is None  # names and a.m./p.m.: left to Django


@pytest.mark.parametrize(
    ("minutes", "zh", "en"),
    [
        (-5, "0 分钟", "0 minutes"),
        (1, "1 分钟", "1 minute"),
        (59, "59 分钟", "59 minutes"),
        (60, "1 小时", "1 hour"),
        (24 * 60 - 1, "23 小时", "23 hours"),
        (24 * 60, "1 天", "1 day"),
        (90 * 24 * 60 + 5, "90 天", "90 days"),
    ],
)
def test_short_age_takes_the_largest_unit(minutes, zh, en):
    delta = timedelta(minutes=minutes)
    with translation.override("zh-hans"):
        assert short_age(delta) == zh
    assert short_age(delta, language="en") == en
    assert short_age(delta, language="zh-hans") == zh
