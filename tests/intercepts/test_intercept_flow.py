"""Intercepts end to end over the sandbox courier: the merchant confirms, the request goes to the
courier over HTTP, its answer and later its result (a signed callback to our push endpoint, or
tracking) move the request, and the fee is charged exactly once or released.

Each sandbox here decides every intercept the same way (``intercept_success``) on a fast clock,
so a result comes within a second or two; the session's slow sandbox keeps an accepted intercept
pending for hours, long enough to withdraw it.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from billing import selectors as billing_selectors
from billing.models import Hold
from couriers.models import Courier, CourierAccount
from couriers.sandbox import FaultOptions, SandboxServer
from couriers.types import TrackingScan
from intercepts.models import AfterSale, InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import (
    intercept_create,
    intercept_withdraw,
    intercepts_request,
)
from intercepts.services.outcomes import intercept_updates_apply
from intercepts.services.sending import intercept_send, intercepts_reconcile
from intercepts.tracking.polling import courier_queue, parcels_poll
from intercepts.tracking.scans import parcel_apply_scans
from shops.models import Shop
from tests.factories import sandbox_served
from tests.intercepts.readiness import PIN, make_ready, zto_waybill

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

S = InterceptRequest.Status
FEE = 300  # ZTO return, seeded
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def catching():
    """A sandbox whose intercepts all succeed, 2 simulated hours a real second."""
    with SandboxServer(speed=7200, seed=21, intercept_success=1.0) as server:
        yield server


@pytest.fixture(scope="module")
def missing():
    """A sandbox whose intercepts all fail."""
    with SandboxServer(speed=7200, seed=22, intercept_success=0.0) as server:
        yield server


def _wait_for(condition, timeout=20.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _setup(world, server, *, digit="2", live_server=None):
    """Shop A ready to intercept, ZTO served by ``server`` (callbacks to our push endpoint when
    there is a live server), and its after-sale's parcel in transit with a fresh waybill."""
    account = sandbox_served(server, "kuaidi100", ["ZTO"])
    # Kuaidi100 insists on a callback URL for ZTO; without a live server nobody listens there,
    # and the results come from tracking.
    push_url = "http://127.0.0.1:9/unheard"
    if live_server is not None:
        push_url = live_server.url + reverse("courier-push", args=[account.pk])
    CourierAccount.objects.filter(pk=account.pk).update(callback_url=push_url)
    make_ready(world.shop_a, world.owner)
    parcel = world.parcel_a
    parcel.courier = Courier.objects.get(code="ZTO")
    parcel.waybill_no = zto_waybill(digit)
    parcel.save(update_fields=["courier", "waybill_no"])
    return parcel


def _confirm(world, parcel, *, key="k1", actor=None):
    [intercept] = intercepts_request(
        actor=actor or world.agent,
        after_sale=world.after_sale_a,
        parcels=[parcel],
        action=InterceptRequest.Action.RETURN,
        pin=PIN,
        idempotency_key=key,
    )
    intercept.refresh_from_db()
    return intercept


def _balances(world):
    return billing_selectors.wallet_balances(shop_id=world.shop_a.pk)


def _status(intercept) -> str:
    return InterceptRequest.objects.get(pk=intercept.pk).status


def test_accepted_then_succeeded_charges_the_fee_once(world, catching, live_server):
    parcel = _setup(world, catching, live_server=live_server)
    intercept = _confirm(world, parcel)
    # The courier's synchronous answer, stored by the task queued on commit.
    assert intercept.status == S.ACCEPTED and intercept.courier_reference.startswith("T")
    assert _balances(world).held_fen == FEE

    # Its signed callback reaches our push endpoint and the drain succeeds the request.
    _wait_for(lambda: _status(intercept) == S.SUCCEEDED, what="the success callback")
    assert _balances(world).available_fen == 1_000 - FEE and _balances(world).held_fen == 0
    hold = Hold.objects.get(reference=intercept.hold_reference)
    assert hold.status == Hold.Status.CAPTURED

    # Tracking reports the diversion and later the return; polling twice changes no money.
    time.sleep(1.0)
    for _ in range(2):
        parcels_poll(courier_id=parcel.courier_id, parcel_ids=[parcel.pk])
    assert _balances(world).available_fen == 1_000 - FEE
    sources = list(intercept.events.values_list("to_status", "source"))
    assert (S.SUCCEEDED, InterceptEvent.Source.PUSH) in sources
    assert [status for status, _ in sources].count(S.SUCCEEDED) == 1
    assert Hold.objects.get(reference=intercept.hold_reference).status == Hold.Status.CAPTURED


def test_back_at_the_sender_completes_it(world, catching):
    parcel = _setup(world, catching)
    intercept = _confirm(world, parcel)
    assert intercept.status == S.ACCEPTED

    def returned():
        parcels_poll(courier_id=parcel.courier_id, parcel_ids=[parcel.pk])
        return _status(intercept) == S.COMPLETED

    _wait_for(returned, timeout=30, what="the parcel back at the sender")
    steps = list(intercept.events.values_list("to_status", "source"))
    assert (S.SUCCEEDED, InterceptEvent.Source.POLL) in steps
    assert (S.COMPLETED, InterceptEvent.Source.POLL) in steps
    assert _balances(world).available_fen == 1_000 - FEE


def test_refused_releases_the_fee_and_shows_why(world, sandbox, login):
    # Our record says in transit; the courier knows it was delivered and refuses.
    parcel = _setup(world, sandbox, digit="7")
    intercept = _confirm(world, parcel)
    assert intercept.status == S.REJECTED
    assert intercept.failure_code == "ALREADY_DELIVERED" and "签收" in intercept.failure_reason
    assert _balances(world).available_fen == 1_000 and _balances(world).held_fen == 0
    assert Hold.objects.get(reference=intercept.hold_reference).status == Hold.Status.RELEASED

    page = login(world.agent).get(
        reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    )
    text = page.content.decode()
    assert "快递公司拒绝" in text and intercept.failure_reason in text
    assert 'id="courier-phone"' in text and "95311" in text  # ZTO's customer service


def test_accepted_then_failed_releases_the_fee(world, missing, live_server):
    parcel = _setup(world, missing, live_server=live_server)
    intercept = _confirm(world, parcel)
    assert intercept.status == S.ACCEPTED
    _wait_for(lambda: _status(intercept) == S.FAILED, what="the failure callback")
    intercept.refresh_from_db()
    assert intercept.failure_code == "MISSED_AT_NODE" and intercept.failure_reason
    assert _balances(world).available_fen == 1_000 and _balances(world).held_fen == 0
    assert Hold.objects.get(reference=intercept.hold_reference).status == Hold.Status.RELEASED


def test_delivered_while_accepted_fails_it(world, missing):
    parcel = _setup(world, missing)
    intercept = _confirm(world, parcel)
    assert intercept.status == S.ACCEPTED

    def delivered():
        parcels_poll(courier_id=parcel.courier_id, parcel_ids=[parcel.pk])
        return _status(intercept) != S.ACCEPTED

    _wait_for(delivered, timeout=40, what="the parcel delivered")
    intercept.refresh_from_db()
    assert (intercept.status, intercept.failure_code) == (S.FAILED, "ALREADY_DELIVERED")
    assert _balances(world).available_fen == 1_000


def test_withdrawn_while_the_courier_allows_it(world, sandbox, login):
    parcel = _setup(world, sandbox)
    intercept = _confirm(world, parcel)
    assert intercept.status == S.ACCEPTED
    client = login(world.agent)
    response = client.post(
        reverse("admin:intercepts_interceptrequest_withdraw", args=[intercept.pk])
    )
    assert response.status_code == 302
    intercept.refresh_from_db()
    assert intercept.status == S.CANCELLED
    assert sandbox.truth(parcel.waybill_no)["intercept"]["status"] == "cancelled"
    assert _balances(world).available_fen == 1_000 and _balances(world).held_fen == 0
    notes = list(intercept.events.values_list("to_status", "actor__username"))
    assert (S.ACCEPTED, "agent") in notes  # the withdrawal asked, by whom
    # Nothing left to withdraw: the button is gone and a second post is refused.
    page = client.get(reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk]))
    assert 'id="withdraw-intercept"' not in page.content.decode()
    again = client.post(reverse("admin:intercepts_interceptrequest_withdraw", args=[intercept.pk]))
    assert again.status_code == 403


def test_a_withdrawal_the_courier_refuses_is_noted(world, catching):
    parcel = _setup(world, catching)
    intercept = _confirm(world, parcel)
    _wait_for(
        lambda: catching.truth(parcel.waybill_no)["intercept"]["status"] == "succeeded",
        what="the courier to catch it",
    )
    intercept_withdraw(actor=world.agent, intercept=intercept)
    intercept.refresh_from_db()
    assert intercept.status == S.ACCEPTED and intercept.withdraw_requested_at is None
    assert intercept.events.filter(note__contains="拦截已生效").exists()
    assert _balances(world).held_fen == FEE


def _intercept_page_post(client, world, token):
    return client.post(
        reverse("admin:intercepts_aftersale_intercept", args=[world.after_sale_a.pk]),
        {"token": token, "action": "return", "pin": PIN},
    )


@pytest.mark.postgres
def test_a_double_confirm_click_makes_one_request(world, sandbox):
    _setup(world, sandbox)
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(world.agent)
    responses = []

    def click(client):
        try:
            responses.append(_intercept_page_post(client, world, "double-click-token"))
        finally:
            connection.close()  # hand the thread's connection back before the thread ends

    threads = [threading.Thread(target=click, args=(client,)) for client in clients]
    with _both_clicks_meet(world):
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join()
    [intercept] = InterceptRequest.objects.filter(shop=world.shop_a)
    record = reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    assert {response.status_code for response in responses} == {302}
    assert {response["Location"] for response in responses} == {record}
    assert Hold.objects.filter(reference=intercept.hold_reference).count() == 1
    assert _balances(world).held_fen == FEE
    # And a click after the first one's answer: still the same request.
    late = _intercept_page_post(clients[0], world, "double-click-token")
    assert late["Location"] == record
    assert InterceptRequest.objects.filter(shop=world.shop_a).count() == 1


@contextmanager
def _both_clicks_meet(world):
    """Hold the shop's payment-password row locked until both clicks wait for it, so that
    both have passed the check for an earlier request and race to make one (PostgreSQL)."""
    if connection.vendor != "postgresql":
        yield
        return
    import psycopg

    with psycopg.connect(_database_url(), autocommit=False) as locker:
        locker.execute(
            "SELECT 1 FROM billing_paymentpassword WHERE shop_id = %s FOR UPDATE",
            [world.shop_a.pk],
        )
        yield

        def waiting() -> int:
            with psycopg.connect(_database_url(), autocommit=True) as probe:
                return probe.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).fetchone()[0]

        _wait_for(lambda: waiting() >= 2, what="both clicks to wait on the password")
        locker.rollback()


def test_a_repeated_confirmation_finds_the_first_request(world, sandbox, login):
    _setup(world, sandbox)
    client = login(world.agent)
    first = _intercept_page_post(client, world, "repeat-token")
    again = _intercept_page_post(client, world, "repeat-token")
    [intercept] = InterceptRequest.objects.filter(shop=world.shop_a)
    record = reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    assert first["Location"] == again["Location"] == record
    assert _balances(world).held_fen == FEE


@pytest.mark.postgres
def test_a_callback_that_overtakes_the_answer_keeps_the_couriers_reference(world):
    # The courier takes 1.5 s to answer; meanwhile its callback says it is working on it.
    with SandboxServer(speed=1, seed=24, faults=FaultOptions(latency_ms=1500)) as server:
        parcel = _setup(world, server)
        intercept = intercept_create(
            actor=world.agent,
            parcel=parcel,
            action=InterceptRequest.Action.RETURN,
            channel=InterceptRequest.Channel.WORKBENCH,
            after_sale=world.after_sale_a,
        )
        outcome = []

        def send():
            try:
                outcome.append(intercept_send(intercept_id=intercept.pk))
            finally:
                connection.close()  # hand the thread's connection back before the thread ends

        sender = threading.Thread(target=send)
        sender.start()
        _wait_for(lambda: _status(intercept) == S.SUBMITTED, what="the request sent")
        intercept_updates_apply(
            account_id=parcel.courier.account_id,
            updates=[{"waybill_no": parcel.waybill_no, "status": "IN_PROGRESS", "reference": ""}],
        )
        assert _status(intercept) == S.ACCEPTED
        sender.join(timeout=20)
    assert outcome == ["skipped"]  # the answer found the request accepted already
    intercept.refresh_from_db()
    truth_reference = server.truth(parcel.waybill_no)["intercept"]["reference"]
    assert intercept.courier_reference == truth_reference  # kept for a withdrawal
    steps = list(intercept.events.values_list("to_status", "source"))
    assert steps == [
        (S.CREATED, InterceptEvent.Source.USER),
        (S.SUBMITTED, InterceptEvent.Source.SYSTEM),
        (S.ACCEPTED, InterceptEvent.Source.PUSH),
    ]


def test_the_reconciler_settles_what_tracking_already_shows(world, sandbox):
    parcel = _setup(world, sandbox)
    intercept = _confirm(world, parcel)
    assert intercept.status == S.ACCEPTED
    # The returning scan is stored, but the settling that follows it was lost with its
    # worker: here, it is applied inside a transaction that ends in an error after commit.
    scan = TrackingScan(
        waybill_no=parcel.waybill_no,
        occurred_at=timezone.now(),
        raw_code="6",
        stage="returning",
        description="快件已拦截，退回中",
    )
    with transaction.atomic():
        parcel_apply_scans(parcel_id=parcel.pk, scans=[scan], source="poll")
        connection.run_on_commit.clear()  # what a worker killed right after the commit loses
    assert _status(intercept) == S.ACCEPTED
    later = timezone.now() + timedelta(minutes=2)
    assert intercepts_reconcile(now=later) == {"settled_from_tracking": 1}
    assert _status(intercept) == S.SUCCEEDED
    assert _balances(world).available_fen == 1_000 - FEE


@pytest.mark.postgres
@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis"),
    reason="the dying worker is a real Celery worker, which needs Redis",
)
def test_a_worker_dying_after_the_courier_accepted_is_settled_by_the_reconciler(
    world, celery_eager
):
    # The courier carries the request out but its answer never arrives, and the worker is
    # killed while it waits for it.
    with SandboxServer(
        speed=7200, seed=23, intercept_success=1.0, faults=FaultOptions(lose_rate=1.0, hang_s=60)
    ) as server:
        parcel = _setup(world, server)
        queue = courier_queue("ZTO")
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue),
                *("-P", "solo", "--without-heartbeat", "--without-gossip", "--without-mingle"),
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": _database_url()},
        )
        try:
            celery_eager.conf.task_always_eager = False  # the send goes to the worker
            [intercept] = intercepts_request(
                actor=world.agent,
                after_sale=world.after_sale_a,
                parcels=[parcel],
                action=InterceptRequest.Action.RETURN,
                pin=PIN,
            )
            _wait_for(
                lambda: (server.truth(parcel.waybill_no) or {}).get("intercept") is not None,
                timeout=60,
                what="the courier to take the request",
            )
        finally:
            celery_eager.conf.task_always_eager = True
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            with celery_eager.connection_for_write() as broker:
                broker.default_channel.queue_purge(queue)  # the killed worker's unacked task
        assert _status(intercept) == S.SUBMITTED  # the answer was never saved
        assert _balances(world).held_fen == FEE

        server.faults = FaultOptions()  # the courier answers again
        later = timezone.now() + timedelta(minutes=2)
        assert intercepts_reconcile(now=later) == {"accepted": 1}
        assert _status(intercept) == S.ACCEPTED
        assert intercept.events.filter(
            source=InterceptEvent.Source.RECONCILER, to_status=S.ACCEPTED
        ).exists()
        # Nothing left unanswered: an hour on, the reconciler has nobody to ask again.
        assert intercepts_reconcile(now=later + timedelta(hours=1)) == {}

        def caught():
            parcels_poll(courier_id=parcel.courier_id, parcel_ids=[parcel.pk])
            return _status(intercept) == S.SUCCEEDED

        _wait_for(caught, what="the parcel caught")
        for _ in range(2):
            parcels_poll(courier_id=parcel.courier_id, parcel_ids=[parcel.pk])
            intercepts_reconcile(now=later)
        assert _balances(world).available_fen == 1_000 - FEE
        assert Hold.objects.get(reference=intercept.hold_reference).status == Hold.Status.CAPTURED


def _database_url() -> str:
    params = connection.settings_dict
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    user = params.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{params['NAME']}"


def test_success_approves_the_refund_when_the_shop_chose_it(world, catching, live_server):
    Shop.objects.filter(pk=world.shop_a.pk).update(auto_complete_refund=True)
    parcel = _setup(world, catching, live_server=live_server)
    intercept = _confirm(world, parcel)
    _wait_for(lambda: _status(intercept) == S.SUCCEEDED, what="the success callback")
    after_sale = AfterSale.objects.get(pk=world.after_sale_a.pk)
    assert after_sale.status == AfterSale.Status.APPROVED
    event = after_sale.events.get(to_status=AfterSale.Status.APPROVED)
    assert "拦截成功" in event.note and event.actor is None


def test_without_the_choice_the_merchant_is_prompted(world, catching, live_server, login):
    parcel = _setup(world, catching, live_server=live_server)
    intercept = _confirm(world, parcel)
    _wait_for(lambda: _status(intercept) == S.SUCCEEDED, what="the success callback")
    assert AfterSale.objects.get(pk=world.after_sale_a.pk).status == AfterSale.Status.PENDING
    client = login(world.agent)
    page = client.get(reverse("admin:intercepts_aftersale_change", args=[world.after_sale_a.pk]))
    assert 'id="refund-prompt"' in page.content.decode()
    client.post(reverse("admin:intercepts_aftersale_approve_refund", args=[world.after_sale_a.pk]))
    assert AfterSale.objects.get(pk=world.after_sale_a.pk).status == AfterSale.Status.APPROVED


def test_an_unreachable_courier_is_noted_in_chinese_without_the_exception(world, sandbox):
    """The history a merchant reads says the gateway could not be reached; the exception's
    English text stays in the log."""
    parcel = _setup(world, sandbox)
    CourierAccount.objects.filter(couriers__code="ZTO").update(base_url="http://127.0.0.1:9/kd100")
    with translation.override("zh-hans"):
        intercept = _confirm(world, parcel)
        assert intercept.status == S.SUBMITTED  # asked again later
        note = intercept.events.order_by("-id").values_list("note", flat=True).first()
    assert note == "快递公司未应答（无法连接快递接口或应答超时），系统将再次询问。"
