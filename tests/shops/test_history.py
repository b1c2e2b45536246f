"""The one guarded status move every record's history uses (``shops.history``)."""

import pytest
from django.db import transaction

from intercepts.models import AfterSale, AfterSaleEvent
from shops.history import status_transition
from tests.factories import AfterSaleFactory

pytestmark = pytest.mark.django_db

Status = AfterSale.Status


class Refused(Exception):
    pass


def _move(record, to_status, **kwargs):
    return status_transition(
        record, to_status=to_status, refuse=lambda current: Refused(current), **kwargs
    )


def _history(after_sale):
    return list(
        AfterSaleEvent.objects.filter(after_sale=after_sale).values_list(
            "from_status", "to_status", "note"
        )
    )


def test_a_move_writes_its_history_row_and_a_repeat_changes_nothing():
    after_sale = AfterSaleFactory(status=Status.PENDING)
    first = _move(after_sale, Status.APPROVED, note="ok")
    second = _move(after_sale, Status.APPROVED, note="again")
    assert (first, second, _history(after_sale)) == (True, False, [("pending", "approved", "ok")])


def test_a_refusal_leaves_the_callers_transaction_usable():
    after_sale = AfterSaleFactory(status=Status.REFUNDED)
    with transaction.atomic():
        with pytest.raises(Refused) as refused:
            _move(after_sale, Status.PENDING)
        # The caller may go on reading and writing in the same transaction.
        count = AfterSale.objects.filter(pk=after_sale.pk, status=Status.REFUNDED).count()
    assert (str(refused.value), count, _history(after_sale)) == ("refunded", 1, [])


def test_a_stale_record_is_judged_by_its_status_in_the_database():
    after_sale = AfterSaleFactory(status=Status.PENDING)
    stale = AfterSale.objects.get(pk=after_sale.pk)
    assert _move(after_sale, Status.CLOSED) is True
    # The stale copy still says pending: its conditional update misses, the status is read
    # again, and closed cannot become approved.
    with pytest.raises(Refused) as refused:
        _move(stale, Status.APPROVED)
    assert (str(refused.value), stale.status, _history(after_sale)) == (
        "closed",
        "closed",
        [("pending", "closed", "")],
    )


def test_given_from_statuses_a_record_moved_elsewhere_is_left_alone():
    after_sale = AfterSaleFactory(status=Status.REJECTED)
    moved = _move(after_sale, Status.APPROVED, from_statuses=(Status.PENDING,))
    assert (moved, AfterSale.objects.get(pk=after_sale.pk).status, _history(after_sale)) == (
        False,
        "rejected",
        [],
    )


def test_without_refuse_an_illegal_move_returns_false():
    after_sale = AfterSaleFactory(status=Status.CLOSED)
    assert (
        status_transition(after_sale, to_status=Status.PENDING, refuse=None),
        _history(after_sale),
    ) == (False, [])
