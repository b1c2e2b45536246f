"""Pushes whose signed time is outside the window, or whose scans are dated in the future, are
refused: a replay or a forgery changes nothing and is kept only as a refused push."""

import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from couriers import signing
from couriers.adapters.common import format_local_time
from couriers.models import Courier, CourierAccount
from couriers.stages import ParcelStage
from intercepts.models import CourierPush
from intercepts.tracking.pushes import flag_lower
from tests.factories import ParcelFactory

CHECK_WORD = "sf-check-word"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _drain_asleep():
    flag_lower()


@pytest.fixture
def account(db):
    account = CourierAccount.objects.create(
        name="sf", protocol="sf", base_url="http://127.0.0.1:9/sf", check_word=CHECK_WORD
    )
    Courier.objects.filter(code="SF").update(account=account)
    return account


@pytest.fixture
def parcel(account):
    return ParcelFactory(courier=Courier.objects.get(code="SF"), stage=ParcelStage.LABEL_CREATED)


def _sf_push(parcel, *, signed_at: float, scanned_at=None) -> str:
    scanned_at = scanned_at or timezone.now() - timedelta(hours=1)
    content = json.dumps(
        {
            "Body": {
                "WaybillRoute": [
                    {
                        "id": "r1",
                        "mailno": parcel.waybill_no,
                        "acceptTime": format_local_time(scanned_at),
                        "acceptAddress": "深圳",
                        "remark": "顺丰速运 已收取快件",
                        "opCode": "54",
                    }
                ]
            }
        },
        ensure_ascii=False,
    )
    timestamp = str(int(signed_at * 1000))
    return urlencode(
        {
            "content": content,
            "timestamp": timestamp,
            "msgDigest": signing.sf_msg_digest(content, timestamp, CHECK_WORD),
            "partnerID": "P1",
        }
    )


def _post(client, account, body, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("courier-push", args=[account.pk]), body, content_type=FORM)


def test_sf_push_signed_now_is_applied(client, account, parcel, django_capture_on_commit_callbacks):
    response = _post(
        client, account, _sf_push(parcel, signed_at=time.time()), django_capture_on_commit_callbacks
    )
    parcel.refresh_from_db()
    assert (response.status_code, parcel.stage) == (200, ParcelStage.PICKED_UP)


def test_sf_push_with_old_timestamp_is_refused(
    client, account, parcel, django_capture_on_commit_callbacks
):
    signed_2020 = 1_590_000_000  # May 2020, in seconds as SF's own demo sends it
    body = _sf_push(parcel, signed_at=signed_2020)
    response = _post(client, account, body, django_capture_on_commit_callbacks)
    push = CourierPush.objects.get()
    parcel.refresh_from_db()
    assert (response.status_code, push.status, "重放" in push.error, parcel.stage) == (
        400,
        CourierPush.Status.REFUSED,
        True,
        ParcelStage.LABEL_CREATED,
    )


def test_replayed_sf_push_outside_window_is_refused(
    client, account, parcel, django_capture_on_commit_callbacks, settings
):
    """Accepted when fresh; the same body sent again after the window is refused, and a push
    signed as far ahead is refused too (the window holds both ways)."""
    settings.COURIER_PUSH_TIME_WINDOW_S = 2
    fresh = _sf_push(parcel, signed_at=time.time())
    ahead = _sf_push(parcel, signed_at=time.time() + 60)
    first = _post(client, account, fresh, django_capture_on_commit_callbacks).status_code
    time.sleep(2.5)
    replay = _post(client, account, fresh, django_capture_on_commit_callbacks).status_code
    future = _post(client, account, ahead, django_capture_on_commit_callbacks).status_code
    assert (
        first,
        replay,
        future,
        list(CourierPush.objects.order_by("pk").values_list("status", flat=True)),
    ) == (
        200,
        400,
        400,
        [CourierPush.Status.ACCEPTED, CourierPush.Status.REFUSED, CourierPush.Status.REFUSED],
    )


def test_scan_dated_in_the_future_is_refused(
    client, account, parcel, django_capture_on_commit_callbacks
):
    body = _sf_push(parcel, signed_at=time.time(), scanned_at=timezone.now() + timedelta(days=20))
    response = _post(client, account, body, django_capture_on_commit_callbacks)
    push = CourierPush.objects.get()
    parcel.refresh_from_db()
    assert (
        response.status_code,
        push.status,
        parcel.waybill_no in push.error,
        parcel.stage,
        parcel.tracking_events.exists(),
    ) == (400, CourierPush.Status.REFUSED, True, ParcelStage.LABEL_CREATED, False)


def _kdniao_push(account, push_time):
    request_data = json.dumps(
        {"EBusinessID": "1", "PushTime": format_local_time(push_time), "Count": 0, "Data": []}
    )
    return urlencode(
        {
            "RequestData": request_data,
            "DataSign": signing.kdniao_data_sign(request_data, account.app_key),
            "RequestType": "101",
        }
    )


def test_kdniao_push_with_an_old_push_time_is_refused(
    client, db, django_capture_on_commit_callbacks
):
    account = CourierAccount.objects.create(
        name="kdn",
        protocol="kdniao",
        base_url="http://127.0.0.1:9/kdn",
        app_key="k",
        ebusiness_id="1",
    )
    old = timezone.now() - timedelta(days=3)
    response = _post(
        client, account, _kdniao_push(account, old), django_capture_on_commit_callbacks
    )
    assert (response.status_code, CourierPush.objects.get().status) == (
        400,
        CourierPush.Status.REFUSED,
    )
