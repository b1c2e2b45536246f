"""Outbound webhooks against a real receiver on 127.0.0.1 that checks every delivery with the
verification code README shows (read out of README, so the two cannot drift): retries until the
receiver takes it, the attempt log, replays refused, secrets rotated mid-retry, order per
object, two workers on one chain, the URL rule, and who sees what in the workbench.

Retries are driven by the beat task's own code: the backoff is shrunk to nothing by a setting,
or a delivery's due time is moved to now (what waiting would do), never by sleeping.
"""

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation

from intercepts.models import InterceptRequest
from shops import webhooks
from shops.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.factories import make_intercept
from tests.intercepts.readiness import make_ready

ROOT = Path(__file__).resolve().parents[2]
S = InterceptRequest.Status
D = WebhookDelivery.Status


def _readme_verifier():
    """``verify_webhook`` exactly as README's webhooks section shows it."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("### Webhooks", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # our own README
    return namespace["verify_webhook"]


verify_webhook = _readme_verifier()
BOOT = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.WEBHOOK_ALLOW_LOOPBACK_HTTP)"
)


class Receiver:
    """An ERP's endpoint: verifies each delivery with its secrets, answers 500 to the first
    ``fail_first`` requests (and to any it cannot verify), 200 after; records everything."""

    def __init__(self, secrets, *, fail_first: int = 0, delay_s: float = 0.0):
        self.secrets = list(secrets)
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers.get("Webhook-Signature", "")
                verified = any(verify_webhook(body, header, s) for s in receiver.secrets)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver._lock:
                    failing = len(receiver.requests) < receiver.fail_first
                    status = 200 if verified and not failing else 500
                    receiver.requests.append(
                        {
                            "body": body,
                            "signature": header,
                            "event_id": self.headers.get("Webhook-Id"),
                            "verified": verified,
                            "status": status,
                            "json": json.loads(body),
                        }
                    )
                answer = b"ok" if status == 200 else b"down for maintenance " * 100
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/intercepts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()

    @property
    def taken(self) -> list[dict]:
        return [r for r in self.requests if r["status"] == 200]


@pytest.fixture
def receiver():
    with Receiver([]) as server:
        yield server


@pytest.fixture
def endpoint(world, receiver):
    made, secret = webhooks.webhook_endpoint_create(
        actor=world.owner, shop=world.shop_a, url=receiver.url
    )
    receiver.secrets.append(secret)
    return made


def _emit(world, object_id=1, n=1):
    ids = []
    for i in range(n):
        ids += webhooks.webhook_emit(
            shop_id=world.shop_a.pk,
            event_type=webhooks.WALLET_FEE_CAPTURED,
            object_type="fee",
            object_id=object_id,
            data={"reference": f"intercept:{object_id}", "amount_fen": 300, "n": i},
        )
    return ids


def _all_due_now():
    """What waiting out every backoff would do."""
    WebhookDelivery.objects.filter(status=D.PENDING).update(next_attempt_at=timezone.now())


def test_fourth_delivery_arrives_exactly_once_after_three_failures(
    world, endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BASE_S = 0  # every retry due at once
    receiver.fail_first = 3
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = _emit(world)
    for _ in range(5):  # beat ticks: three retries, then nothing left to send
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.webhooks_send_due()
    statuses = [r["status"] for r in receiver.requests]
    assert statuses == [500, 500, 500, 200]
    assert len({r["event_id"] for r in receiver.requests}) == 1
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == (D.SUCCEEDED, 4)
    log = list(delivery.attempt_log.values_list("number", "status_code", "error"))
    assert log == [(1, 500, ""), (2, 500, ""), (3, 500, ""), (4, 200, "")]
    excerpts = [len(a.response_excerpt) for a in delivery.attempt_log.all()]
    assert excerpts == [500, 500, 500, 2]


def test_failed_attempt_waits_for_its_backoff(
    world, endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BASE_S = 3600
    settings.WEBHOOK_RETRY_CAP_S = 3600
    receiver.fail_first = 1
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = _emit(world)
    with django_capture_on_commit_callbacks(execute=True):
        queued = webhooks.webhooks_send_due()
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (queued, len(receiver.requests), delivery.status) == (0, 1, D.PENDING)
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=3600)


def test_a_deactivated_endpoint_gets_no_more_retries(
    world, endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BASE_S = 0
    receiver.fail_first = 1
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = _emit(world)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhooks_send_due()

    assert [r["status"] for r in receiver.requests] == [500]
    assert WebhookDelivery.objects.get(pk=delivery_id).status == D.FAILED


def test_backoff_bound_doubles_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_S = 10
    settings.WEBHOOK_RETRY_CAP_S = 100
    highest = [max(webhooks.retry_delay_s(n) for _ in range(300)) for n in (1, 2, 3, 4, 5, 9)]
    bounds = [10, 20, 40, 80, 100, 100]
    assert all(0 <= h <= b and h > b / 2 for h, b in zip(highest, bounds, strict=True))


def test_delivery_fails_after_the_retry_window_and_its_chain_moves_on(
    world, endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_WINDOW_S = 0  # the window has passed at the first failure
    receiver.fail_first = 1
    with django_capture_on_commit_callbacks(execute=True):
        first, second = _emit(world, n=2)
    assert WebhookDelivery.objects.get(pk=first).status == D.FAILED
    assert WebhookDelivery.objects.get(pk=second).status == D.SUCCEEDED


def test_unreachable_endpoint_logs_the_error(world, settings, django_capture_on_commit_callbacks):
    # Port 9 (discard) on loopback: nobody listens, the connection is refused.
    webhooks.webhook_endpoint_create(
        actor=world.owner, shop=world.shop_a, url="http://127.0.0.1:9/hooks"
    )
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = _emit(world)
    attempt = WebhookAttempt.objects.get(delivery_id=delivery_id)
    assert (attempt.status_code, attempt.error.startswith("ConnectError")) == (None, True)


def test_replayed_delivery_with_an_old_timestamp_fails_verification(
    world, endpoint, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _emit(world)
    (delivered,) = receiver.taken
    body, header, secret = delivered["body"], delivered["signature"], receiver.secrets[0]
    signed_at = int(header.split(",")[0].removeprefix("t="))
    # The same request again six minutes later, and with its timestamp moved to "now".
    replayed_late = verify_webhook(body, header, secret, now=signed_at + 360)
    restamped = header.replace(f"t={signed_at}", f"t={signed_at + 360}")
    replayed_restamped = verify_webhook(body, restamped, secret, now=signed_at + 360)
    within_window = verify_webhook(body, header, secret, now=signed_at + 299)
    assert (within_window, replayed_late, replayed_restamped) == (True, False, False)


def test_secret_rotated_during_retries_still_verifies(
    world, endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_BASE_S = 0
    receiver.fail_first = 1
    old_secret = receiver.secrets[0]
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = _emit(world)
    new_secret = webhooks.webhook_endpoint_rotate_secret(actor=world.owner, endpoint=endpoint)
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhooks_send_due()
    retry = receiver.requests[-1]
    # The receiver still holds only the old secret: the overlap's second signature verifies.
    assert (retry["status"], WebhookDelivery.objects.get(pk=delivery_id).status) == (
        200,
        D.SUCCEEDED,
    )
    assert verify_webhook(retry["body"], retry["signature"], new_secret) is True
    assert retry["signature"].count("v1=") == 2 and old_secret != new_secret


def test_rotated_secret_stops_signing_when_the_overlap_ends(
    world, endpoint, receiver, django_capture_on_commit_callbacks
):
    webhooks.webhook_endpoint_rotate_secret(actor=world.owner, endpoint=endpoint, overlap_s=0)
    with django_capture_on_commit_callbacks(execute=True):
        _emit(world)
    # The receiver was not told the new secret: it refuses the delivery.
    assert [(r["verified"], r["signature"].count("v1=")) for r in receiver.requests] == [(False, 1)]


def test_events_of_one_intercept_arrive_in_order(
    world, endpoint, receiver, django_capture_on_commit_callbacks
):
    make_ready(world.shop_a, world.owner)
    receiver.fail_first = 1  # the first event fails: the later ones must wait behind it
    with django_capture_on_commit_callbacks(execute=True):
        intercept = make_intercept(
            world.owner, world.parcel_a, world.after_sale_a, S.SUBMITTED, S.ACCEPTED, S.SUCCEEDED
        )
    waiting = WebhookDelivery.objects.filter(
        object_key=f"intercept:{intercept.pk}", status=D.PENDING
    ).count()
    # Only the first event of the intercept went (and failed); the fee, another object, went.
    sent_first = [
        (r["json"]["type"], r["json"]["data"].get("status"), r["status"]) for r in receiver.requests
    ]
    _all_due_now()
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhooks_send_due()
    intercept_events = [
        (r["json"]["data"]["from"], r["json"]["data"]["status"], r["json"]["data"]["fee"]["state"])
        for r in receiver.taken
        if r["json"]["type"] == webhooks.INTERCEPT_STATUS_CHANGED
    ]
    fee_events = [r["json"]["data"] for r in receiver.taken if r["json"]["type"].startswith("w")]
    assert (waiting, sent_first) == (
        4,
        [
            (webhooks.INTERCEPT_STATUS_CHANGED, "created", 500),
            (webhooks.WALLET_FEE_CAPTURED, None, 200),
        ],
    )
    assert intercept_events == [
        (None, "created", "held"),
        ("created", "submitted", "held"),
        ("submitted", "accepted", "held"),
        ("accepted", "succeeded", "captured"),
    ]
    assert fee_events == [
        {"reference": intercept.hold_reference, "amount_fen": 300, "courier": "ZTO"}
    ]


def test_released_fee_is_delivered(world, endpoint, receiver, django_capture_on_commit_callbacks):
    make_ready(world.shop_a, world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        intercept = make_intercept(
            world.owner, world.parcel_a, world.after_sale_a, S.SUBMITTED, S.REJECTED
        )
    payloads = [r["json"] for r in receiver.taken]
    released = [p for p in payloads if p["type"] == webhooks.WALLET_FEE_RELEASED]
    assert [(p["shop"], p["data"]["reference"]) for p in released] == [
        ("shop-a", intercept.hold_reference)
    ]


def test_shop_without_endpoints_gets_no_deliveries(world, django_capture_on_commit_callbacks):
    make_ready(world.shop_b, world.other)
    with django_capture_on_commit_callbacks(execute=True):
        make_intercept(world.other, world.parcel_b, world.after_sale_b, S.SUBMITTED)
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_on_one_chain_send_each_once_in_order(world, endpoint, receiver):
    receiver.delay_s = 0.05  # each request in flight long enough for the other worker to meet it
    with transaction.atomic():
        ids = _emit(world, n=6)
        connection.run_on_commit.clear()  # the queued sends were lost: the workers find them
    barrier = threading.Barrier(3)
    errors = []

    def worker(run):
        try:
            barrier.wait()
            for _ in range(3):
                run()
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    runs = [
        lambda: webhooks.webhook_chain_send(delivery_id=ids[-1]),
        lambda: webhooks.webhook_chain_send(delivery_id=ids[0]),
        webhooks.webhooks_send_due,
    ]
    threads = [threading.Thread(target=worker, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    sent = [r["json"]["data"]["n"] for r in receiver.requests]
    assert (errors, sent) == ([], [0, 1, 2, 3, 4, 5])
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {D.SUCCEEDED}


# --- Endpoint URLs ---------------------------------------------------------------------------


def _url_refusal(url: str) -> str | None:
    try:
        webhooks.validate_endpoint_url(url)
    except ValidationError as exc:
        return exc.message_dict["url"][0]
    return None


def test_only_https_when_debug_is_off(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = False  # what DJANGO_DEBUG=0 gives (next test)
    with translation.override("zh-hans"):
        refusals = [
            _url_refusal(url)
            for url in (
                "https://erp.example.com/hooks",
                "http://erp.example.com/hooks",
                "http://127.0.0.1:8080/hooks",
                "https://10.1.2.3/hooks",
            )
        ]
    assert refusals == [
        None,
        "Webhook 地址必须以 https:// 开头。",
        "Webhook 地址必须以 https:// 开头。",
        "Webhook 地址必须是公网地址，不能是内网地址。",
    ]


def test_loopback_http_follows_debug():
    booted = {}
    for debug in ("0", "1"):
        environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        environment.update(
            DJANGO_DEBUG=debug,
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="erp.example.com",
            DJANGO_SETTINGS_MODULE="config.settings",
        )
        environment.pop("WEBHOOK_ALLOW_LOOPBACK_HTTP", None)
        result = subprocess.run(
            [sys.executable, "-c", BOOT], env=environment, capture_output=True, text=True
        )
        booted[debug] = result.stdout.strip()
    assert booted == {"0": "False", "1": "True"}


def test_loopback_http_allowed_in_development_and_tests():
    refusals = [
        _url_refusal(url)
        for url in ("http://127.0.0.1:8080/h", "http://localhost/h", "http://[::1]:9/h")
    ]
    assert refusals == [None, None, None]
    assert _url_refusal("http://erp.example.com/hooks") is not None


# --- Who may do what -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["agent", "viewer", "other", "cs", "finance"])
def test_only_the_owner_registers_an_endpoint(world, name):
    with pytest.raises(PermissionDenied):
        webhooks.webhook_endpoint_create(
            actor=world.user(name), shop=world.shop_a, url="http://127.0.0.1:9/h"
        )


def test_owner_sees_the_secret_once_in_the_workbench(world, login):
    client = login(world.owner)
    response = client.post(
        reverse("admin:shops_webhookendpoint_add"),
        {"shop": world.shop_a.pk, "url": "http://127.0.0.1:9/hooks", "is_active": "on"},
    )
    made = WebhookEndpoint.objects.get(shop=world.shop_a)
    change_page = client.get(reverse("admin:shops_webhookendpoint_change", args=[made.pk]))
    assert response.status_code == 200 and made.secret in response.content.decode()
    assert change_page.status_code == 200 and made.secret not in change_page.content.decode()


def test_owner_rotates_the_secret_in_the_workbench(world, endpoint, login):
    old = endpoint.secret
    url = reverse("admin:shops_webhookendpoint_rotate_secret", args=[endpoint.pk])
    response = login(world.owner).post(url)
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.secret in response.content.decode()


def test_other_shop_owner_cannot_see_or_touch_our_webhooks(
    world, endpoint, receiver, login, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = _emit(world)
    client = login(world.other)
    answers = {
        "endpoint list": client.get(reverse("admin:shops_webhookendpoint_changelist")),
        "endpoint": client.get(reverse("admin:shops_webhookendpoint_change", args=[endpoint.pk])),
        "rotate": client.post(
            reverse("admin:shops_webhookendpoint_rotate_secret", args=[endpoint.pk])
        ),
        "edit": client.post(
            reverse("admin:shops_webhookendpoint_change", args=[endpoint.pk]),
            {"url": "https://evil.example.com/", "is_active": "on"},
        ),
        "delete": client.post(
            reverse("admin:shops_webhookendpoint_delete", args=[endpoint.pk]), {"post": "yes"}
        ),
        "delivery list": client.get(reverse("admin:shops_webhookdelivery_changelist")),
        "delivery": client.get(reverse("admin:shops_webhookdelivery_change", args=[delivery_id])),
    }
    codes = {name: response.status_code for name, response in answers.items()}
    assert codes == {
        "endpoint list": 200,
        "endpoint": 404,
        "rotate": 404,
        "edit": 404,
        "delete": 404,
        "delivery list": 200,
        "delivery": 404,
    }
    assert receiver.url not in answers["endpoint list"].content.decode()
    assert "fee:1" not in answers["delivery list"].content.decode()
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.secret) == (receiver.url, receiver.secrets[0])


@pytest.mark.parametrize(
    ("name", "deliveries", "add_endpoint"),
    [
        ("owner", 200, 200),
        ("agent", 200, 403),
        ("viewer", 200, 403),
        ("cs", 200, 403),
        ("finance", 200, 403),
        ("anonymous", 302, 302),
    ],
)
def test_who_reads_deliveries_and_who_adds_endpoints(
    world,
    endpoint,
    receiver,
    login,
    name,
    deliveries,
    add_endpoint,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = _emit(world)
    client = login(world.user(name))
    seen = client.get(reverse("admin:shops_webhookdelivery_change", args=[delivery_id]))
    add = client.get(reverse("admin:shops_webhookendpoint_add"))
    assert (seen.status_code, add.status_code) == (deliveries, add_endpoint)


@pytest.mark.parametrize(("name", "resent"), [("owner", 2), ("agent", 2), ("viewer", 1)])
def test_send_again_from_the_workbench(
    world, endpoint, receiver, login, name, resent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        (delivery_id,) = _emit(world)
    client = login(world.user(name))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:shops_webhookdelivery_changelist"),
            {"action": "send_again", "_selected_action": [delivery_id]},
        )
    event_ids = {r["event_id"] for r in receiver.taken}
    assert (len(receiver.taken), len(event_ids)) == (resent, 1)


def test_reposting_the_new_endpoint_form_registers_it_once(world, login):
    client = login(world.owner)
    form = {"shop": world.shop_a.pk, "url": "http://127.0.0.1:9001/", "is_active": "on"}

    client.post("/admin/shops/webhookendpoint/add/", form)
    again = client.post("/admin/shops/webhookendpoint/add/", form)

    assert again.status_code == 200
    assert "已为本店铺登记" in again.content.decode()
    assert WebhookEndpoint.objects.filter(shop=world.shop_a).count() == 1
