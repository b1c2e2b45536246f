"""Courier pushes: verified, stored raw, applied once, answered as the protocol expects."""

import json

import pytest
from django.urls import reverse

from couriers import signing
from couriers.models import Courier, CourierAccount
from couriers.stages import ParcelStage
from intercepts.models import CourierPush
from tests.factories import ParcelFactory

SALT = "push-salt-123"


@pytest.fixture
def account(db):
    account = CourierAccount.objects.create(
        name="k100", protocol="kuaidi100", base_url="http://127.0.0.1:9/k100", salt=SALT
    )
    Courier.objects.filter(code="ZTO").update(account=account)
    return account


@pytest.fixture
def parcel(account):
    return ParcelFactory(stage=ParcelStage.LABEL_CREATED)


def _push(parcel, salt=SALT):
    param = json.dumps(
        {
            "status": "polling",
            "message": "",
            "lastResult": {
                "nu": parcel.waybill_no,
                "com": "zhongtong",
                "state": "0",
                "data": [
                    {
                        "time": "2026-11-20 10:00:00",
                        "ftime": "2026-11-20 10:00:00",
                        "context": "【杭州】已发往上海",
                        "statusCode": "1002",
                    },
                    {
                        "time": "2026-11-20 08:00:00",
                        "ftime": "2026-11-20 08:00:00",
                        "context": "【杭州】已揽收",
                        "statusCode": "103",
                    },
                ],
            },
        },
        ensure_ascii=False,
    )
    return {"param": param, "sign": signing.kuaidi100_push_sign(param, salt)}


def test_a_signed_push_is_applied_and_acknowledged(client, account, parcel):
    url = reverse("courier-push", args=[account.pk])
    response = client.post(url, _push(parcel))
    assert response.status_code == 200
    assert response.json()["result"] is True and response.json()["returnCode"] == "200"
    parcel.refresh_from_db()
    assert parcel.stage == ParcelStage.IN_TRANSIT
    assert parcel.tracking_events.count() == 2
    push = CourierPush.objects.get()
    assert push.status == CourierPush.Status.ACCEPTED and push.parcels_updated == 1
    assert parcel.waybill_no in push.body


def test_a_repeated_push_changes_nothing(client, account, parcel):
    url = reverse("courier-push", args=[account.pk])
    client.post(url, _push(parcel))
    parcel.refresh_from_db()
    before = (parcel.stage, parcel.updated_at, parcel.tracking_events.count())
    assert client.post(url, _push(parcel)).status_code == 200
    parcel.refresh_from_db()
    assert (parcel.stage, parcel.updated_at, parcel.tracking_events.count()) == before
    assert CourierPush.objects.count() == 2


def test_a_push_with_a_bad_signature_is_refused_and_stored_as_refused(client, account, parcel):
    url = reverse("courier-push", args=[account.pk])
    response = client.post(url, _push(parcel, salt="wrong-salt"))
    assert response.status_code == 400
    push = CourierPush.objects.get()
    assert push.status == CourierPush.Status.REFUSED and "sign" in push.error
    parcel.refresh_from_db()
    assert parcel.stage == ParcelStage.LABEL_CREATED
    assert not parcel.tracking_events.exists()


def test_pushes_for_unknown_accounts_are_404(client, account, parcel):
    response = client.post(reverse("courier-push", args=[account.pk + 100]), _push(parcel))
    assert response.status_code == 404
    assert not CourierPush.objects.exists()


def test_only_post_is_accepted(client, account):
    assert client.get(reverse("courier-push", args=[account.pk])).status_code == 405
