"""What a successful intercept asks of the merchant, by its action and the after-sale's kind.

A parcel sent back settles any of the after-sales in the buyer's favour: the merchant is prompted
to approve the refund (or it is approved at once, for a shop that chose so). A change of address
delivers the goods all the same: no refund prompt, and the page says where the parcel goes.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import FeeRule
from couriers.models import Courier
from intercepts.models import AfterSale, InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_create, intercept_set_status
from shops.models import Shop
from tests.factories import make_after_sale
from tests.intercepts.test_intercept_records import _fund

S = InterceptRequest.Status
A = InterceptRequest.Action
NEW_ADDRESS = {
    "name": "李四",
    "phone": "13900001111",
    "province": "浙江省",
    "city": "杭州市",
    "district": "西湖区",
    "address": "文三路 90 号",
}


@pytest.fixture(autouse=True)
def _redirect_fee(world):
    FeeRule.objects.create(
        courier=Courier.objects.get(code="ZTO"),
        action="redirect",
        valid_from=timezone.now() - timedelta(days=1),
        amount_fen=500,
    )


def _succeeded(world, *, kind: str, action: str) -> InterceptRequest:
    _fund(world, world.shop_a, world.owner)
    after_sale, parcel = make_after_sale(world.shop_a, courier=Courier.objects.get(code="ZTO"))
    AfterSale.objects.filter(pk=after_sale.pk).update(kind=kind)
    intercept = intercept_create(
        actor=world.owner,
        parcel=parcel,
        action=action,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=after_sale,
        new_address=NEW_ADDRESS if action == A.REDIRECT else None,
    )
    for status in (S.SUBMITTED, S.ACCEPTED, S.SUCCEEDED):
        intercept_set_status(
            intercept=intercept, to_status=status, source=InterceptEvent.Source.PUSH
        )
    return intercept


KINDS = [AfterSale.Kind.REFUND_ONLY, AfterSale.Kind.RETURN_AND_REFUND, AfterSale.Kind.CANCEL_ORDER]


@pytest.mark.parametrize("kind", KINDS)
def test_a_parcel_sent_back_prompts_the_refund(world, login, kind):
    intercept = _succeeded(world, kind=kind, action=A.RETURN)
    client = login(world.owner)
    record = client.get(reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk]))
    after_sale = client.get(
        reverse("admin:intercepts_aftersale_change", args=[intercept.after_sale_id])
    )
    assert 'id="panel-refund-prompt"' in record.content.decode()
    assert 'id="refund-prompt"' in after_sale.content.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_a_change_of_address_prompts_no_refund(world, login, kind):
    intercept = _succeeded(world, kind=kind, action=A.REDIRECT)
    client = login(world.owner)
    record = client.get(
        reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    ).content.decode()
    after_sale = client.get(
        reverse("admin:intercepts_aftersale_change", args=[intercept.after_sale_id])
    ).content.decode()
    assert ('id="panel-refund-prompt"' in record, 'id="refund-prompt"' in after_sale) == (
        False,
        False,
    )
    # Instead the pages say where the parcel goes.
    assert "包裹将改派至新地址：李四 13900001111 浙江省 杭州市 西湖区 文三路 90 号" in record
    assert 'id="redirect-note"' in after_sale


def test_a_change_of_address_on_a_cancelled_order_is_not_refunded_by_itself(world):
    Shop.objects.filter(pk=world.shop_a.pk).update(auto_complete_refund=True)
    intercept = _succeeded(world, kind=AfterSale.Kind.CANCEL_ORDER, action=A.REDIRECT)
    assert AfterSale.objects.get(pk=intercept.after_sale_id).status == AfterSale.Status.PENDING


def test_a_cancelled_order_sent_back_is_refunded_by_itself_when_the_shop_chose_it(world):
    Shop.objects.filter(pk=world.shop_a.pk).update(auto_complete_refund=True)
    intercept = _succeeded(world, kind=AfterSale.Kind.CANCEL_ORDER, action=A.RETURN)
    assert AfterSale.objects.get(pk=intercept.after_sale_id).status == AfterSale.Status.APPROVED
