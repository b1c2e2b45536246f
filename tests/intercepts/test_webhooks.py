"""Courier pushes: verified, stored raw, answered as the protocol expects, applied once."""

import hashlib
import json
import time
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils.html import escape

from couriers import signing
from couriers.models import Courier, CourierAccount
from couriers.stages import ParcelStage
from intercepts.models import CourierPush
from intercepts.tracking.pushes import flag_is_up, flag_lower, pushes_drain
from tests.factories import ParcelFactory

SALT = "push-salt-123"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _drain_asleep():
    flag_lower()


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """POST a push as a gateway does; what it queues on commit (the drain) runs, eagerly."""

    def _post(url, data):
        with django_capture_on_commit_callbacks(execute=True):
            return send(client, url, data)

    return _post


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


def send(client, url, form):
    """POST as the gateways do: an application/x-www-form-urlencoded body."""
    return client.post(url, urlencode(form), content_type=FORM)


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


def test_a_signed_push_is_applied_and_acknowledged(post, account, parcel):
    url = reverse("courier-push", args=[account.pk])
    response = post(url, _push(parcel))
    assert response.status_code == 200
    assert response.json()["result"] is True and response.json()["returnCode"] == "200"
    parcel.refresh_from_db()
    assert parcel.stage == ParcelStage.IN_TRANSIT
    assert parcel.tracking_events.count() == 2
    push = CourierPush.objects.get()
    assert push.status == CourierPush.Status.ACCEPTED and push.parcels_updated == 1
    assert parcel.waybill_no in push.body


def test_a_repeated_push_changes_nothing(post, account, parcel):
    url = reverse("courier-push", args=[account.pk])
    post(url, _push(parcel))
    parcel.refresh_from_db()
    before = (parcel.stage, parcel.updated_at, parcel.tracking_events.count())
    assert post(url, _push(parcel)).status_code == 200
    parcel.refresh_from_db()
    assert (parcel.stage, parcel.updated_at, parcel.tracking_events.count()) == before
    assert CourierPush.objects.count() == 2


def test_a_push_with_a_bad_signature_is_refused_and_stored_as_refused(post, account, parcel):
    url = reverse("courier-push", args=[account.pk])
    response = post(url, _push(parcel, salt="wrong-salt"))
    assert response.status_code == 400
    push = CourierPush.objects.get()
    assert push.status == CourierPush.Status.REFUSED and "sign" in push.error
    parcel.refresh_from_db()
    assert parcel.stage == ParcelStage.LABEL_CREATED
    assert not parcel.tracking_events.exists()


def test_pushes_for_unknown_accounts_are_404(client, account, parcel):
    response = send(client, reverse("courier-push", args=[account.pk + 100]), _push(parcel))
    assert response.status_code == 404
    assert not CourierPush.objects.exists()


def test_only_post_is_accepted(client, account):
    assert client.get(reverse("courier-push", args=[account.pk])).status_code == 405


def test_a_push_naming_a_host_not_allowed_is_refused(client, account, parcel):
    url = reverse("courier-push", args=[account.pk])
    response = client.post(url, urlencode(_push(parcel)), FORM, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert not CourierPush.objects.exists()


def test_oversized_push_is_refused_before_storing(client, account, parcel, settings):
    """Over the limit: answered 413, and only a bounded record kept (never the body whole)."""
    settings.COURIER_PUSH_MAX_BYTES = 64 * 1024
    body = urlencode(_push(parcel)) + "&pad=" + "x" * (2_400 * 1024)
    response = client.post(reverse("courier-push", args=[account.pk]), body, content_type=FORM)
    push = CourierPush.objects.get()
    assert (response.status_code, push.status, len(push.body), push.body_size) == (
        413,
        CourierPush.Status.REFUSED,
        CourierPush.EXCERPT_CHARS,
        len(body),
    )


def test_refused_push_keeps_a_bounded_excerpt(client, account, parcel):
    """A refused push under the size limit keeps its first characters, its size and digest."""
    body = urlencode(_push(parcel, salt="wrong-salt")) + "&pad=" + "y" * 30_000
    response = client.post(reverse("courier-push", args=[account.pk]), body, content_type=FORM)
    push = CourierPush.objects.get()
    assert (response.status_code, push.body, push.body_size, push.body_sha256) == (
        400,
        body[: CourierPush.EXCERPT_CHARS],
        len(body),
        hashlib.sha256(body.encode()).hexdigest(),
    )


def test_a_push_with_too_many_fields_is_refused_and_stored(client, account, parcel, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    body = urlencode(_push(parcel)) + "&a=1&b=2"
    response = client.post(reverse("courier-push", args=[account.pk]), body, content_type=FORM)
    assert response.status_code == 400
    push = CourierPush.objects.get()
    assert push.status == CourierPush.Status.REFUSED and "fields" in push.error


def test_a_json_push_with_a_nul_character_is_refused_and_stored_readably(client, account):
    response = client.post(
        reverse("courier-push", args=[account.pk]), '{"a": "\x00"}', "application/json"
    )
    assert response.status_code == 400
    push = CourierPush.objects.get()
    assert push.status == CourierPush.Status.REFUSED and "\x00" not in push.body


def test_a_process_that_just_found_the_drain_awake_does_not_ask_again(client, account, parcel):
    """Within FLAG_TRUST_S of finding the flag up, a push queues nothing (the drain's last look,
    FLAG_TRUST_S after lowering its flag, claims it); after that it asks Redis again."""
    from intercepts.tracking import pushes

    send(client, reverse("courier-push", args=[account.pk]), _push(parcel))  # stored, no wake
    assert pushes._flag_raise()  # a drain in another process is awake
    pushes.pushes_wake_drain()  # finds it up
    # That drain lowers its flag; this process does not know.
    client_redis = pushes.redis_client()
    if client_redis is None:
        pushes.cache.delete(pushes.AWAKE_KEY)
    else:
        client_redis.delete(pushes.AWAKE_KEY)
    pushes.pushes_wake_drain()  # trusts what it saw a moment ago
    assert not flag_is_up()
    assert CourierPush.objects.get().status == CourierPush.Status.RECEIVED
    time.sleep(pushes.FLAG_TRUST_S)
    pushes.pushes_wake_drain()  # asks again, raises the flag, and the drain runs (eagerly here)
    assert CourierPush.objects.get().status == CourierPush.Status.ACCEPTED


def test_a_push_with_a_nul_character_is_refused_and_stored_readably(client, account, parcel):
    body = urlencode(_push(parcel)) + "&note=\x00"  # PostgreSQL keeps no NUL in text
    response = client.post(reverse("courier-push", args=[account.pk]), body, content_type=FORM)
    assert response.status_code == 400
    push = CourierPush.objects.get()
    assert push.status == CourierPush.Status.REFUSED and "NUL" in push.error
    assert "\x00" not in push.body and "\ufffd" in push.body


def test_a_push_is_stored_as_received_and_answered_before_it_is_applied(client, account, parcel):
    # Without its on-commit work (the drain) the push is kept, acknowledged and not yet applied.
    response = send(client, reverse("courier-push", args=[account.pk]), _push(parcel))
    assert response.status_code == 200 and response.json()["result"] is True
    assert CourierPush.objects.get().status == CourierPush.Status.RECEIVED
    parcel.refresh_from_db()
    assert parcel.stage == ParcelStage.LABEL_CREATED
    # The periodic drain applies it.
    assert pushes_drain() == 1
    parcel.refresh_from_db()
    assert parcel.stage == ParcelStage.IN_TRANSIT and parcel.tracking_events.count() == 2
    assert CourierPush.objects.get().status == CourierPush.Status.ACCEPTED


def _single_scan_push(parcel, time, code, context):
    param = json.dumps(
        {
            "status": "polling",
            "lastResult": {
                "nu": parcel.waybill_no,
                "com": "zhongtong",
                "data": [{"time": time, "ftime": time, "context": context, "statusCode": code}],
            },
        },
        ensure_ascii=False,
    )
    return {"param": param, "sign": signing.kuaidi100_push_sign(param, SALT)}


def test_pushes_drained_together_give_what_they_give_one_by_one(client, account):
    """Several parcels, each pushed twice and out of order, drained in one batch."""
    parcels = [ParcelFactory(stage=ParcelStage.LABEL_CREATED) for _ in range(3)]
    url = reverse("courier-push", args=[account.pk])
    for parcel in parcels:
        # The later scan arrives first; the earlier one, then a repeat of the later one, after.
        send(client, url, _single_scan_push(parcel, "2026-11-20 10:00:00", "1002", "已发往上海"))
        send(client, url, _single_scan_push(parcel, "2026-11-20 08:00:00", "103", "已揽收"))
        send(client, url, _single_scan_push(parcel, "2026-11-20 10:00:00", "1002", "已发往上海"))
    assert pushes_drain() == 9
    for parcel in parcels:
        parcel.refresh_from_db()
        assert parcel.stage == ParcelStage.IN_TRANSIT
        assert parcel.tracking_events.count() == 2
        assert parcel.picked_up_at is not None
    assert set(CourierPush.objects.values_list("status", "parcels_updated")) == {
        (CourierPush.Status.ACCEPTED, 1)
    }
    assert pushes_drain() == 0  # nothing left, nothing done twice


def test_a_stored_push_that_no_longer_verifies_is_refused_when_drained(client, account, parcel):
    send(client, reverse("courier-push", args=[account.pk]), _push(parcel))
    push = CourierPush.objects.get()
    CourierPush.objects.filter(pk=push.pk).update(body=push.body.replace("8%3A00", "9%3A00"))
    assert pushes_drain() == 1
    push.refresh_from_db()
    assert push.status == CourierPush.Status.REFUSED and push.error
    parcel.refresh_from_db()
    assert parcel.stage == ParcelStage.LABEL_CREATED and not parcel.tracking_events.exists()


def test_while_a_drain_is_awake_pushes_only_queue_up(post, account):
    """The flag says a drain is running: a burst of pushes wakes no other drain; once the drain
    finds nothing left it goes back to sleep, and the next push wakes it again."""
    from intercepts.tracking.pushes import _flag_raise

    first, second = (ParcelFactory(stage=ParcelStage.LABEL_CREATED) for _ in range(2))
    url = reverse("courier-push", args=[account.pk])
    assert _flag_raise()
    for _ in range(3):
        assert post(url, _push(first)).status_code == 200
    assert CourierPush.objects.filter(status=CourierPush.Status.RECEIVED).count() == 3
    assert pushes_drain() == 3
    assert not flag_is_up()
    post(url, _push(second))  # wakes a drain, which runs eagerly here
    second.refresh_from_db()
    assert second.stage == ParcelStage.IN_TRANSIT
    assert not CourierPush.objects.filter(status=CourierPush.Status.RECEIVED).exists()


def test_a_drain_past_its_time_hands_the_rest_to_a_fresh_task(post, account, monkeypatch):
    """A busy drain ends before Celery's time limit would stop it; a new task carries on."""
    from intercepts.tracking import pushes

    parcels = [ParcelFactory(stage=ParcelStage.LABEL_CREATED) for _ in range(5)]
    url = reverse("courier-push", args=[account.pk])
    assert pushes._flag_raise()  # a drain is awake: the pushes only queue up
    for parcel in parcels:
        assert post(url, _push(parcel)).status_code == 200
    monkeypatch.setattr(pushes, "BATCH", 2)
    monkeypatch.setattr(pushes, "DRAIN_BUDGET_S", 0.0)
    monkeypatch.setattr(pushes, "REFILL_PAUSE_S", 0.0)
    # This drain applies one batch, then queues a fresh one (run eagerly here) for the rest.
    assert pushes_drain() == 2
    assert not CourierPush.objects.exclude(status=CourierPush.Status.ACCEPTED).exists()
    for parcel in parcels:
        parcel.refresh_from_db()
        assert parcel.stage == ParcelStage.IN_TRANSIT
    assert not flag_is_up()


def test_a_push_that_is_not_a_form_is_refused(client, account, parcel):
    response = client.post(
        reverse("courier-push", args=[account.pk]), _push(parcel), content_type="application/json"
    )
    assert response.status_code == 400
    push = CourierPush.objects.get()
    assert push.status == CourierPush.Status.REFUSED and "form" in push.error


def test_a_deactivated_account_is_refused_at_once_in_this_process(post, account, parcel):
    url = reverse("courier-push", args=[account.pk])
    assert post(url, _push(parcel)).status_code == 200
    account.is_active = False
    account.save()  # saved here: the endpoint forgets what it had read
    assert post(url, _push(parcel)).status_code == 404


def test_a_push_is_answered_behind_the_middleware_and_never_cached(client, account, parcel):
    response = send(client, reverse("courier-push", args=[account.pk]), _push(parcel))
    assert (
        response.status_code,
        "no-cache" in response.headers["Cache-Control"],
        response.headers["X-Frame-Options"],  # set by the clickjacking middleware
    ) == (200, True, "DENY")


def test_refused_push_flood_stops_storing(client, account, parcel, settings, caplog):
    """Past the per-minute limit, refused pushes are answered alike but not stored: one marker
    row counts them, and one warning is logged."""
    settings.COURIER_PUSH_REFUSED_PER_MINUTE = 3
    url = reverse("courier-push", args=[account.pk])
    if time.time() % 60 > 55:  # counted per clock minute: keep the seven within one
        time.sleep(60 - time.time() % 60)
    with caplog.at_level("WARNING", logger="intercepts.tracking.pushes"):
        answers = [send(client, url, _push(parcel, salt="wrong")).status_code for _ in range(7)]
    marker = CourierPush.objects.get(refused_dropped__gt=0)
    warnings = [r for r in caplog.records if "storing no more" in r.getMessage()]
    assert (answers, CourierPush.objects.count(), marker.refused_dropped, len(warnings)) == (
        [400] * 7,
        4,  # three refused pushes and the marker
        3,
        1,
    )


@pytest.mark.parametrize(
    ("who", "status"),
    [("cs", 200), ("finance", 200), ("owner", 403), ("agent", 403), ("viewer", 403)],
)
def test_a_refused_push_is_an_audit_line_platform_staff_read(
    world, login, account, parcel, who, status
):
    send(login(None), reverse("courier-push", args=[account.pk]), _push(parcel, salt="wrong"))
    push = CourierPush.objects.get(status=CourierPush.Status.REFUSED)
    client = login(world.user(who))
    listing = client.get(reverse("admin:intercepts_courierpush_changelist"))
    page = client.get(reverse("admin:intercepts_courierpush_change", args=[push.pk]))
    assert (listing.status_code, page.status_code) == (status, status)
    if status == 200:
        assert "已拒绝" in listing.content.decode()
        assert escape(push.error) in page.content.decode()


def test_a_push_is_named_in_local_time_and_in_words(post, account, parcel):
    """The push page's title: Shanghai time and the status's label, as its fields show them."""
    from django.utils import timezone, translation

    post(reverse("courier-push", args=[account.pk]), _push(parcel, salt="wrong-salt"))
    push = CourierPush.objects.get()  # a refused push is stored too
    local = timezone.localtime(push.received_at)
    with translation.override("zh-hans"):
        assert str(push) == f"{account} {local:%Y-%m-%d %H:%M:%S} {push.get_status_display()}"
        assert push.status not in str(push)
