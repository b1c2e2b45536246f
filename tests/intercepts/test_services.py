"""After-sale status service: guarded moves, idempotent repeats, one history row per change."""

import pytest

from intercepts.models import AfterSale, AfterSaleEvent
from intercepts.services.after_sales import after_sale_set_status
from intercepts.services.errors import DomainError
from intercepts.services.parcels import normalise_waybill


def test_allowed_move_writes_one_history_row(world):
    after_sale = after_sale_set_status(
        after_sale=world.after_sale_a, to_status=AfterSale.Status.APPROVED, actor=world.owner
    )
    assert after_sale.status == AfterSale.Status.APPROVED
    event = AfterSaleEvent.objects.get(after_sale=world.after_sale_a)
    assert (event.from_status, event.to_status, event.actor) == (
        AfterSale.Status.PENDING,
        AfterSale.Status.APPROVED,
        world.owner,
    )


def test_repeat_is_a_no_op(world):
    for _ in range(3):
        after_sale_set_status(after_sale=world.after_sale_a, to_status=AfterSale.Status.APPROVED)
    assert AfterSaleEvent.objects.filter(after_sale=world.after_sale_a).count() == 1


def test_illegal_move_is_refused_in_chinese_and_changes_nothing(world):
    with pytest.raises(DomainError, match="售后单不能从“待商家处理”变为“已退款”"):
        after_sale_set_status(after_sale=world.after_sale_a, to_status=AfterSale.Status.REFUNDED)
    world.after_sale_a.refresh_from_db()
    assert world.after_sale_a.status == AfterSale.Status.PENDING
    assert not AfterSaleEvent.objects.exists()


def test_transition_table_covers_every_status():
    assert set(AfterSale.TRANSITIONS) == set(AfterSale.Status)


@pytest.mark.parametrize(
    ("raw", "clean"), [(" yt 0000 000000000 ", "YT0000000000000"), ("sf123", "SF123")]
)
def test_normalise_waybill(raw, clean):
    assert normalise_waybill(raw) == clean
