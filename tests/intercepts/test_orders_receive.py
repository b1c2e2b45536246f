"""Orders and after-sales as the platform sends them: recorded whole, or refused."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from intercepts.models import AfterSale, AfterSaleEvent, Order
from intercepts.services.errors import DomainError
from intercepts.services.orders import (
    after_sale_receive,
    order_mark_shipped,
    order_receive,
    order_set_status,
)
from tests.factories import ShopFactory

LINE = {"goods_name": "紫砂壶", "category": "normal", "unit_price_fen": 12900, "quantity": 2}


def _order(shop, order_no="770001", lines=(LINE,)):
    return order_receive(
        shop=shop,
        order_no=order_no,
        buyer_name="张伟",
        buyer_phone="13912345678",
        lines=list(lines),
    )


@pytest.mark.django_db
def test_an_order_totals_its_lines_and_ships_once_paid():
    order = order_mark_shipped(order=_order(ShopFactory()))
    assert (order.total_fen, order.status, order.lines.count()) == (25800, "shipped", 1)


@pytest.mark.django_db
def test_an_order_without_goods_is_refused():
    with pytest.raises(ValidationError):
        _order(ShopFactory(), lines=())
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_an_order_number_is_taken_once_per_shop():
    shop = ShopFactory()
    _order(shop)
    with pytest.raises(ValidationError):
        _order(shop)
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_a_refund_request_awaits_the_merchant_with_its_first_history_row():
    after_sale = after_sale_receive(
        order=_order(ShopFactory()), kind="refund_only", reason="拍错了"
    )
    event = AfterSaleEvent.objects.get(after_sale=after_sale)
    assert (after_sale.status, after_sale.refund_amount_fen, event.to_status) == (
        "pending",
        25800,
        "pending",
    )


@pytest.mark.django_db
def test_a_refund_above_the_order_total_is_refused():
    order = _order(ShopFactory())
    with pytest.raises(ValidationError):
        after_sale_receive(order=order, kind="refund_only", refund_amount_fen=25801)
    assert not AfterSale.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"unit_price_fen": 9_999_999_999_900}, "单价不能超过 1,000,000.00 元。"),
        ({"quantity": 10_000}, "数量不能超过 9,999。"),
    ],
)
def test_an_order_line_beyond_any_sale_is_refused(line, message):
    """99,999,999,999 yuan is no price: it would pass every value rule of an intercept."""
    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        _order(ShopFactory(), lines=({**LINE, **line},))
    assert message in str(refused.value)
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_an_order_moves_through_one_guarded_function_with_its_history():
    order = _order(ShopFactory())
    order_mark_shipped(order=order)
    order_mark_shipped(order=order)  # the feed repeats itself: nothing more happens
    order_set_status(order=order, to_status=Order.Status.COMPLETED)
    with (
        translation.override("zh-hans"),
        pytest.raises(DomainError, match="订单不能从“已完成”变为"),
    ):
        order_set_status(order=order, to_status=Order.Status.PAID)
    moves = list(order.events.values_list("from_status", "to_status"))
    assert moves == [("", "paid"), ("paid", "shipped"), ("shipped", "completed")]
    assert Order.objects.get(pk=order.pk).status == Order.Status.COMPLETED
