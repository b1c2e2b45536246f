"""The couriers' own pushes, end to end: the sandbox pushes signed callbacks over HTTP to our
push endpoint (a live server), which stores them and wakes the drain that applies them.

One test per protocol: Kuaidi100 pushes to the callback URL its subscription named, SF and Kdniao
to the URL registered with them (the sandbox's ``set_push_url``).
"""

import itertools
import time

import pytest
from django.urls import reverse

from couriers.models import Courier, CourierAccount
from intercepts.models import CourierPush, Parcel
from intercepts.tracking.polling import parcel_subscribe
from tests.factories import ParcelFactory, sandbox_served

_numbers = itertools.count(1)


def _wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize(
    ("protocol", "code", "digit"),
    [("kuaidi100", "ZTO", "3"), ("sf", "SF", "4"), ("kdniao", "YUNDA", "5")],
)
def test_a_courier_push_reaches_the_parcel(sandbox, live_server, protocol, code, digit):
    account = sandbox_served(sandbox, protocol, [code])
    push_url = live_server.url + reverse("courier-push", args=[account.pk])
    CourierAccount.objects.filter(pk=account.pk).update(callback_url=push_url)
    if protocol != "kuaidi100":
        sandbox.set_push_url(protocol, push_url)
    courier = Courier.objects.get(code=code)
    parcel = ParcelFactory(
        courier=courier,
        waybill_no=f"{code[:2]}{next(_numbers):06d}{time.monotonic_ns() % 10**6:06d}1{digit}",
        stage="no_info",
        next_poll_at=None,  # nothing polls it: whatever it learns comes by push
    )

    assert parcel_subscribe(parcel_id=parcel.pk)

    truth = sandbox.truth(parcel.waybill_no)
    _wait_for(lambda: Parcel.objects.get(pk=parcel.pk).stage != "no_info")
    parcel.refresh_from_db()
    assert parcel.stage == truth["stage"]
    assert set(parcel.tracking_events.values_list("source", flat=True)) == {protocol}
    push = CourierPush.objects.get(account=account)
    assert push.status == CourierPush.Status.ACCEPTED and push.parcels_updated == 1
    assert parcel.waybill_no in push.body
