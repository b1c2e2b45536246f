"""The intercept page itself: what it shows for each parcel, every refusal at once, the choice of
parcels of a multi-parcel order, and a change of address with its new address."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from billing.models import FeeRule
from couriers.models import Courier
from intercepts.models import InterceptPolicy, InterceptRequest, OrderLine, Parcel
from shops.models import Shop
from tests.factories import ParcelFactory, sandbox_served
from tests.intercepts.readiness import PIN, make_ready


@pytest.fixture(autouse=True)
def _chinese():
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def ready(world, sandbox):
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    return world


def _url(after_sale, **query):
    url = reverse("admin:intercepts_aftersale_intercept", args=[after_sale.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_page_shows_courier_goods_stage_chance_rules_and_fee(ready, login):
    world = ready
    world.parcel_a.tracking_events.create(
        occurred_at="2026-11-20T10:00:00+08:00",
        raw_code="1002",
        stage="in_transit",
        description="快件已到达【杭州转运中心】",
        location="杭州",
        source="poll",
    )
    page = login(world.agent).get(_url(world.after_sale_a)).content.decode()
    assert "中通快递" in page and world.parcel_a.waybill_no in page and "95311" in page
    goods = world.parcel_a.lines.get().goods_name
    assert goods in page
    assert "运输中" in page and "快件已到达【杭州转运中心】" in page
    assert "88%" in page and "默认估计" in page  # §7.4's table until we have 30 outcomes
    assert page.count('data-passed="yes"') == 12
    assert '<div class="font-mono font-semibold text-lg fee">3.00</div>' in page
    assert 'id="confirm-intercept"' in page and "支付并拦截" in page


def test_every_refusal_is_shown_at_once_and_no_confirm_button(ready, login):
    world = ready
    Shop.objects.filter(pk=world.shop_a.pk).update(is_cross_border=True)
    Parcel.objects.filter(pk=world.parcel_a.pk).update(declared_value_fen=200_000)
    OrderLine.objects.filter(order=world.after_sale_a.order).update(category="fresh")
    page = login(world.agent).get(_url(world.after_sale_a)).content.decode()
    refused = {
        code
        for code in ("not_cross_border", "value_cap", "goods_categories")
        if f'data-code="{code}" data-passed="no"' in page
    }
    assert refused == {"not_cross_border", "value_cap", "goods_categories"}
    assert "跨境店铺不能发起拦截" in page and "生鲜" in page and "1,000.00" in page
    assert 'id="confirm-intercept"' not in page
    assert "此售后单目前没有可拦截的包裹" in page


def test_a_multi_parcel_order_lets_the_merchant_choose(ready, login):
    world = ready
    policy = InterceptPolicy.current()
    policy.allow_one_parcel_of_many = True
    policy.save()
    second = ParcelFactory(order=world.after_sale_a.order, courier=Courier.objects.get(code="ZTO"))
    second.lines.set([world.parcel_a.lines.get()])
    client = login(world.agent)
    page = client.get(_url(world.after_sale_a)).content.decode()
    assert page.count('class="parcel-choice"') == 2

    nothing = client.post(_url(world.after_sale_a), {"token": "m0", "action": "return", "pin": PIN})
    assert nothing.status_code == 200 and "请至少选择一个包裹" in nothing.content.decode()
    response = client.post(
        _url(world.after_sale_a),
        {"token": "m1", "action": "return", "pin": PIN, "parcels": [second.pk]},
    )
    assert response.status_code == 302
    [made] = InterceptRequest.objects.all()
    assert made.parcel_id == second.pk


def test_without_the_policy_a_multi_parcel_order_is_refused(ready, login):
    world = ready
    ParcelFactory(order=world.after_sale_a.order, courier=Courier.objects.get(code="ZTO"))
    page = login(world.agent).get(_url(world.after_sale_a)).content.decode()
    assert page.count('data-code="multi_parcel" data-passed="no"') == 2
    # Said as the rule it is, not as if choosing every parcel would do.
    assert page.count("该订单分多个包裹发货：平台规则不支持拦截多包裹订单。") == 2


def test_a_change_of_address_needs_the_new_address(ready, login):
    world = ready
    # Only return fees are published (and seeded); this one is in force since yesterday.
    FeeRule.objects.create(
        courier=Courier.objects.get(code="ZTO"),
        action="redirect",
        valid_from=timezone.now() - timedelta(days=1),
        amount_fen=500,
    )
    client = login(world.agent)
    page = client.get(_url(world.after_sale_a, action="redirect")).content.decode()
    assert 'name="city"' in page and "新收件人" in page
    missing = client.post(
        _url(world.after_sale_a), {"token": "r1", "action": "redirect", "pin": PIN}
    )
    assert missing.status_code == 200 and not InterceptRequest.objects.exists()
    address = {
        "receiver_name": "李四",
        "receiver_phone": "13900001111",
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "address": "文三路 90 号",
    }
    response = client.post(
        _url(world.after_sale_a), {"token": "r2", "action": "redirect", "pin": PIN, **address}
    )
    assert response.status_code == 302
    made = InterceptRequest.objects.get()
    assert (made.action, made.fee_fen) == (InterceptRequest.Action.REDIRECT, 500)
    assert made.new_address == {
        "name": "李四",
        "phone": "13900001111",
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "address": "文三路 90 号",
    }


def test_the_chance_says_what_it_counts_and_how_many_it_has(ready, login):
    world = ready
    zto = Courier.objects.get(code="ZTO")
    S = InterceptRequest.Status

    def ended(status, *, courier=zto, stage="in_transit"):
        parcel = ParcelFactory(order__shop=world.shop_b, courier=courier, stage=stage)
        InterceptRequest.objects.create(
            shop=world.shop_b,
            parcel=parcel,
            action="return",
            stage_at_request=stage,
            channel="workbench",
            fee_fen=300,
            status=status,
        )

    for status in (S.SUCCEEDED, S.COMPLETED, S.SUCCEEDED, S.FAILED, S.REJECTED):
        ended(status)
    # Not counted: withdrawn, still open, another courier, another stage.
    ended(S.CANCELLED)
    ended(S.ACCEPTED)
    ended(S.SUCCEEDED, courier=Courier.objects.get(code="YTO"))
    ended(S.SUCCEEDED, stage="out_for_delivery")
    page = login(world.agent).get(_url(world.after_sale_a)).content.decode()
    assert "默认估计：该快递在此阶段已结束的拦截目前有 5 单，满 30 单后按实际结果计算" in page


def test_no_chance_of_success_is_shown_where_the_courier_takes_no_intercept(ready, login):
    """Beside 京东物流不支持…, a 92% chance would contradict the refusal."""
    world = ready
    Courier.objects.filter(code="ZTO").update(can_return_to_sender=False)
    page = login(world.agent).get(_url(world.after_sale_a)).content.decode()
    assert 'data-code="courier_capable" data-passed="no"' in page
    assert '<div class="font-semibold text-lg chance">—</div>' in page
    assert "该快递不支持通过平台办理此类拦截。" in page
    Courier.objects.filter(code="ZTO").update(can_return_to_sender=True)
    page = login(world.agent).get(_url(world.after_sale_a)).content.decode()
    assert '<div class="font-semibold text-lg chance">—</div>' not in page
