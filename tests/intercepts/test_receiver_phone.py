"""A receiver's phone is a mainland mobile or a landline with its area code, wherever it is
typed or sent: an order's receiver, a new address on the intercept page, a call of the service."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from billing.models import FeeRule
from couriers.models import Courier
from intercepts.models import InterceptRequest, Order
from intercepts.services.errors import DomainError
from intercepts.services.intercept_requests import intercepts_request
from intercepts.services.orders import order_receive
from intercepts.validators import validate_phone
from tests.factories import sandbox_served
from tests.intercepts.readiness import PIN, make_ready

MESSAGE = "请输入 11 位手机号，或带区号的固定电话，例如 021-12345678。"
NEW_ADDRESS = {
    "receiver_name": "李四",
    "province": "浙江省",
    "city": "杭州市",
    "district": "西湖区",
    "address": "文三路 90 号",
}


@pytest.fixture(autouse=True)
def _chinese():
    with translation.override("zh-hans"):
        yield


@pytest.mark.parametrize(
    "phone",
    [
        "13812341234",
        "+8613812341234",
        "138 1234 1234",
        "138-1234-1234",
        "021-12345678",
        "02112345678",
        "0755 8888 7777",
        "010-62345678-8021",
    ],
)
def test_mobiles_and_landlines_are_accepted(phone):
    assert validate_phone(phone) is None


@pytest.mark.parametrize(
    "phone", ["call me", "12345", "", "1381234123", "12812341234", "021-1234", "0755-0888777"]
)
def test_anything_else_is_refused_in_chinese(phone):
    with pytest.raises(ValidationError) as refused:
        validate_phone(phone)
    assert refused.value.messages == [MESSAGE]


@pytest.mark.parametrize("phone", ["call me", "12345"])
def test_an_order_with_a_bad_receiver_phone_is_refused_and_nothing_saved(world, phone):
    # A parcel's receiver is its order's (nobody types it when shipping): the phone is checked
    # when the platform's order comes in.
    before = Order.objects.count()
    with pytest.raises(ValidationError) as refused:
        order_receive(
            shop=world.shop_a,
            order_no="7700000000099",
            buyer_name="张三",
            buyer_phone="13812341234",
            receiver_name="张三",
            receiver_phone=phone,
            receiver_address="上海市浦东新区幸福路1号",
            lines=[{"goods_name": "纯棉T恤", "unit_price_fen": 12900, "quantity": 1}],
        )
    assert (refused.value.message_dict.get("receiver_phone"), Order.objects.count()) == (
        [MESSAGE],
        before,
    )


@pytest.fixture
def ready_for_redirect(world, sandbox):
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    FeeRule.objects.create(
        courier=Courier.objects.get(code="ZTO"),
        action="redirect",
        valid_from=timezone.now() - timedelta(days=1),
        amount_fen=500,
    )
    return world


def test_the_intercept_page_refuses_a_new_address_with_a_bad_phone(ready_for_redirect, login):
    world = ready_for_redirect
    url = reverse("admin:intercepts_aftersale_intercept", args=[world.after_sale_a.pk])
    response = login(world.agent).post(
        url,
        {"token": "p1", "action": "redirect", "pin": PIN, "receiver_phone": "12345", **NEW_ADDRESS},
    )
    assert (response.status_code, MESSAGE in response.content.decode()) == (200, True)
    assert InterceptRequest.objects.count() == 0


def test_the_service_refuses_a_new_address_with_a_bad_phone(ready_for_redirect):
    world = ready_for_redirect
    with pytest.raises(DomainError) as refused:
        intercepts_request(
            actor=world.agent,
            after_sale=world.after_sale_a,
            parcels=[world.parcel_a],
            action=InterceptRequest.Action.REDIRECT,
            pin=PIN,
            new_address={"name": "李四", "phone": "call me", "city": "杭州市", "address": "文三路"},
        )
    assert (str(refused.value), InterceptRequest.objects.count()) == (MESSAGE, 0)
