"""What a ledger reference such as ``intercept:42`` is about, in the shop's words: the order
and the waybill of an intercept fee.

Billing stands below the apps whose money it moves and cannot read their tables, so an app
that posts under a reference prefix registers how to describe its own references (intercepts
does in its ``AppConfig.ready``). ``describe`` asks each describer once for all the references
of a page: one query per prefix, whatever the number of rows.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

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


def register(prefix: str, describer: Describer) -> None:
    _describers[prefix] = describer


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
