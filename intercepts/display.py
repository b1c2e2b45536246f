"""Formatting for list cells, which run for every row of every page.

Django's ``date_format`` interprets its format string character by character on every call;
a list page calls it for every row. ``short_datetime`` compiles the language's format once
and falls back to Django for format characters it does not know; ``short_age`` translates
each "3 days" once per language.
"""

from datetime import datetime, timedelta
from functools import cache, lru_cache

from django.utils import timezone, translation
from django.utils.formats import date_format, get_format
from django.utils.translation import get_language, ngettext

# Django's date format characters (django.utils.dateformat.re_formatchars).
_DJANGO_FORMAT_CHARS = frozenset("aAbcdDeEfFgGhHiIjlLmMnNoOPrsStTUuwWyYzZ")
_FAST = {
    "Y": "{0.year:04d}",
    "m": "{0.month:02d}",
    "n": "{0.month}",
    "d": "{0.day:02d}",
    "j": "{0.day}",
    "H": "{0.hour:02d}",
    "G": "{0.hour}",
    "i": "{0.minute:02d}",
    "s": "{0.second:02d}",
}


@cache
def _compiled(django_format: str) -> str | None:
    """A str.format pattern equal to the Django format, or None if it needs Django."""
    parts = []
    escaped = False
    for char in django_format:
        if not escaped and char == "\\":
            escaped = True
            continue
        if not escaped and char in _FAST:
            parts.append(_FAST[char])
        elif not escaped and char in _DJANGO_FORMAT_CHARS:
            return None
        else:
            parts.append(char * 2 if char in "{}" else char)
        escaped = False
    return "".join(parts)


@lru_cache(maxsize=64)
def _short_datetime_pattern(language: str) -> str | None:
    return _compiled(get_format("SHORT_DATETIME_FORMAT", lang=language))


def short_datetime(value: datetime, *, language: str | None = None) -> str:
    """``date_format(localtime(value), "SHORT_DATETIME_FORMAT")``, faster."""
    local = timezone.localtime(value)
    pattern = _short_datetime_pattern(language or get_language())
    if pattern is None:
        return date_format(local, "SHORT_DATETIME_FORMAT")
    return pattern.format(local)


_AGE_UNITS = {
    "day": ("%(n)d day", "%(n)d days"),
    "hour": ("%(n)d hour", "%(n)d hours"),
    "minute": ("%(n)d minute", "%(n)d minutes"),
}


@lru_cache(maxsize=4096)
def _age_label(language: str, unit: str, n: int) -> str:
    singular, plural = _AGE_UNITS[unit]
    with translation.override(language):
        return ngettext(singular, plural, n) % {"n": n}


def short_age(delta: timedelta, *, language: str | None = None) -> str:
    """How long something has waited, in its largest unit: '3 天', '5 小时', '12 分钟'."""
    minutes = max(0, int(delta.total_seconds() // 60))
    language = language or get_language()
    if minutes >= 24 * 60:
        return _age_label(language, "day", minutes // (24 * 60))
    if minutes >= 60:
        return _age_label(language, "hour", minutes // 60)
    return _age_label(language, "minute", minutes)
