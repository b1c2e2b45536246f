"""A waybill belongs to the shop that shipped it, end to end over the sandbox courier: another
shop can neither record, correct, poll nor push its way to it, and an intercept sent under an
e-waybill account that did not issue the waybill is refused by the courier, its fee released."""

import json
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import Hold
from couriers import signing
from couriers.models import Courier, CourierAccount
from couriers.stages import ParcelStage
from intercepts.models import InterceptRequest, Parcel, TrackingEvent
from intercepts.services.intercept_requests import intercepts_request
from intercepts.tracking.polling import parcels_poll
from intercepts.tracking.pushes import pushes_drain
from tests.factories import ParcelFactory, sandbox_served
from tests.intercepts.readiness import PIN, grant_ewaybill, make_ready, zto_waybill

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _in_transit_at_the_sandbox(parcel) -> None:
    Parcel.objects.filter(pk=parcel.pk).update(
        waybill_no=zto_waybill("2"), stage=ParcelStage.IN_TRANSIT
    )
    parcel.refresh_from_db()


def _timeline(parcel) -> list[tuple[str, str]]:
    return list(
        TrackingEvent.objects.filter(parcel=parcel)
        .order_by("occurred_at")
        .values_list("stage", "description")
    )


def test_shop_a_cannot_record_correct_or_poll_its_way_to_shop_b_waybill(world, sandbox, login):
    sandbox_served(sandbox, "kuaidi100", ["ZTO"])
    zto = Courier.objects.get(code="ZTO")
    _in_transit_at_the_sandbox(world.parcel_b)
    _in_transit_at_the_sandbox(world.parcel_a)
    theirs = world.parcel_b.waybill_no
    client = login(world.agent)

    recorded = client.post(
        reverse("admin:intercepts_parcel_add"),
        {
            "order": world.after_sale_a.order.pk,
            "courier": zto.pk,
            "waybill_no": theirs,
            "receiver_name": "李四",
            "receiver_phone": "13900000000",
            "receiver_address": "北京市",
        },
    )
    assert recorded.status_code == 200
    edited = client.post(
        reverse("admin:intercepts_parcel_change", args=[world.parcel_a.pk]),
        {"courier": zto.pk, "waybill_no": theirs},
    )
    assert edited.status_code == 403
    corrected = client.post(
        reverse("admin:intercepts_parcel_correct_waybill", args=[world.parcel_a.pk]),
        {"courier": zto.pk, "waybill_no": theirs, "reason": "打错了"},
    )
    assert corrected.status_code == 200
    assert list(Parcel.objects.filter(waybill_no=theirs).values_list("pk", flat=True)) == [
        world.parcel_b.pk
    ]

    # Polling both shops' parcels puts each courier answer on its own parcel only. (Two
    # waybills may share a route and so the same scans: each is compared with its own truth.)
    parcels_poll(courier_id=zto.pk, parcel_ids=[world.parcel_a.pk, world.parcel_b.pk])
    for parcel in (world.parcel_a, world.parcel_b):
        truth = sandbox.truth(parcel.waybill_no)
        assert [description for _stage, description in _timeline(parcel)] == [
            event["description"] for event in truth["events"]
        ]


def _push(account, *, courier_code: str, waybill_no: str) -> dict:
    scanned = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    param = json.dumps(
        {
            "status": "polling",
            "message": "",
            "lastResult": {
                "nu": waybill_no,
                "com": courier_code,
                "state": "0",
                "data": [
                    {"time": scanned, "context": "【杭州】已揽收", "statusCode": "103"},
                ],
            },
        },
        ensure_ascii=False,
    )
    return {"param": param, "sign": signing.kuaidi100_push_sign(param, account.salt)}


def test_a_push_reaches_only_the_parcel_of_the_courier_it_names(world, client):
    account = CourierAccount.objects.create(
        name="k100", protocol="kuaidi100", base_url="http://127.0.0.1:9/k100", salt="s-1"
    )
    Courier.objects.filter(code__in=["ZTO", "STO"]).update(account=account)
    # Two couriers whose numbers look alike: the same number is a parcel at each.
    Courier.objects.filter(code="STO").update(waybill_pattern=r"\d{12,15}")
    number = world.parcel_b.waybill_no
    sto_parcel = ParcelFactory(
        order__shop=world.shop_a, courier=Courier.objects.get(code="STO"), waybill_no=number
    )
    response = client.post(
        reverse("courier-push", args=[account.pk]),
        urlencode(_push(account, courier_code="zhongtong", waybill_no=number)),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    pushes_drain()
    assert TrackingEvent.objects.filter(parcel=world.parcel_b).count() == 1
    assert not TrackingEvent.objects.filter(parcel=sto_parcel).exists()


def test_intercept_under_an_account_that_did_not_issue_the_waybill_is_refused_and_fee_released(
    world, sandbox
):
    """Shop B's courier issued the number to B; shop B has not recorded the parcel here yet, so
    shop A could: the courier, not only this platform, refuses A's intercept."""
    account = sandbox_served(sandbox, "kuaidi100", ["ZTO"])
    # Kuaidi100 insists on a callback URL for ZTO; nobody needs to listen there.
    CourierAccount.objects.filter(pk=account.pk).update(callback_url="http://127.0.0.1:9/cb")
    make_ready(world.shop_a, world.owner)
    shop_b_account = grant_ewaybill(world.shop_b, "ZTO")
    number = zto_waybill("2")
    issued = httpx.post(
        f"{sandbox.url}/sandbox/waybills",
        json={"account": shop_b_account.account_no, "waybills": [number]},
    )
    assert issued.status_code == 200
    parcel = world.parcel_a
    Parcel.objects.filter(pk=parcel.pk).update(waybill_no=number, stage=ParcelStage.IN_TRANSIT)
    parcel.refresh_from_db()
    before = billing_selectors.wallet_balances(shop_id=world.shop_a.pk)

    [intercept] = intercepts_request(
        actor=world.agent,
        after_sale=world.after_sale_a,
        parcels=[parcel],
        action=InterceptRequest.Action.RETURN,
        pin=PIN,
        idempotency_key="not-ours",
    )
    intercept.refresh_from_db()
    assert intercept.status == InterceptRequest.Status.REJECTED
    assert intercept.failure_code == "NOT_ORDER_OWNER"
    assert "无权" in intercept.failure_reason
    assert Hold.objects.get(reference=intercept.hold_reference).status == Hold.Status.RELEASED
    after = billing_selectors.wallet_balances(shop_id=world.shop_a.pk)
    assert (after.available_fen, after.held_fen) == (before.available_fen, 0)
    assert sandbox.truth(number)["intercept"] is None  # the courier did nothing
