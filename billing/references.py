"""What a ledger reference such as ``intercept:42`` is about, in the shop's words: the order
and the waybill of an intercept fee.

Billing stands below the apps whose money it moves and cannot read their tables, so an app
that posts under a reference prefix registers how to describe its own references (intercepts
does in its ``AppConfig.ready``). ``describe`` asks each describer once for all the references
of a page: one query per prefix, whatever the number of rows.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import CharField, Expression, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _


@dataclass(frozen=True)
class Subject:
    """The business a reference belongs to, as a merchant names it."""

    order_no: str = ""
    waybill_no: str = ""

    def __str__(self) -> str:
        parts = []
        if self.order_no:
            parts.append(_("Order %(order_no)s") % {"order_no": self.order_no})
        if self.waybill_no:
            parts.append(_("Waybill %(waybill_no)s") % {"waybill_no": self.waybill_no})
        return " · ".join(parts)


# prefix -> a function from the references' ids to their subjects (ids it does not know are
# left out).
Describer = Callable[[list[int]], dict[int, Subject]]
_describers: dict[str, Describer] = {}
# prefix -> a function from the name of a query's reference column to SQL expressions of
# ``order_no`` and ``waybill_no`` (None where the reference is not one of the prefix's), so
# that a streamed export names its fees in the same single query.
SubjectColumns = Callable[[str], dict[str, Expression]]
_columns: dict[str, SubjectColumns] = {}


# prefix -> a function from a number a merchant types (an order or a waybill number) to the ids
# of the references it names, so that lists of fees are searched by what merchants know.
Finder = Callable[[str], list[int]]
_finders: dict[str, Finder] = {}


def register(
    prefix: str,
    describer: Describer,
    columns: SubjectColumns | None = None,
    finder: Finder | None = None,
) -> None:
    _describers[prefix] = describer
    if columns is not None:
        _columns[prefix] = columns
    if finder is not None:
        _finders[prefix] = finder


def find(term: str) -> list[str]:
    """The references an order or waybill number names (callers filter their own rows by
    them, so a number of another shop's finds nothing there)."""
    return [f"{prefix}:{pk}" for prefix, finder in _finders.items() for pk in finder(term)]


def subject_columns(reference_field: str) -> dict[str, Expression]:
    """``order_no`` and ``waybill_no`` of the reference in ``reference_field``, as expressions
    for ``annotate``/``values`` (empty text where no app describes the reference)."""
    found = [columns(reference_field) for columns in _columns.values()]
    return {
        key: Coalesce(*(exprs[key] for exprs in found), Value(""), output_field=CharField())
        for key in ("order_no", "waybill_no")
    }


def describe(references: Iterable[str]) -> dict[str, Subject]:
    """The subject of each reference that has one; others (a bank serial) are left out."""
    wanted: dict[str, dict[int, str]] = {}
    for reference in set(references):
        prefix, _sep, key = reference.partition(":")
        if key.isascii() and key.isdigit() and prefix in _describers:
            wanted.setdefault(prefix, {})[int(key)] = reference
    subjects: dict[str, Subject] = {}
    for prefix, by_id in wanted.items():
        for pk, subject in _describers[prefix](list(by_id)).items():
            subjects[by_id[pk]] = subject
    return subjects
