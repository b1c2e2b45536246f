"""Outbound webhooks: a shop's ERP hears of its intercepts, claims and fees as signed JSON.

Writing: ``webhook_emit`` is called by the app that changes a record (billing when a fee is
captured or released, intercepts on every intercept status change and each claim suggestion,
claims on every claim status change), inside that change's transaction, after the record's row
is locked or updated. It writes one delivery per active endpoint of the shop and queues the send
once the transaction commits, so an event is sent if and only if its change was saved. Because
the caller holds the record's row lock, two events of one record are written (and numbered) in
the order they happened.

Sending: the deliveries of one object to one endpoint form a chain (``endpoint``,
``object_key``) sent strictly oldest first. ``webhook_chain_send`` sends the chain's head, its
oldest pending delivery, and only that: it claims the head with a conditional update that sets
a lease (``leased_until``), sends with no transaction open, then records the attempt and the
outcome conditionally on its own lease. A second worker on the same chain finds the head
leased, or no longer pending, and stops; a later delivery waits while an earlier one is pending
(backing off, or being sent). The lease outlives the task's hard time limit, so it only expires
for a worker that died, whose delivery is then sent again: receivers see each event at least
once and drop repeats by the event id.

Retries: a failed attempt sets ``next_attempt_at`` with exponential backoff and full jitter
(``retry_delay_s``) until ``give_up_at`` (the retry window, 24 hours, from when it was queued),
then the delivery is failed and its chain moves on. A beat task (``webhooks_send_due``) queues
the chains whose head is due. Due times live in a column rather than in a Celery countdown:
Redis redelivers far-future ``eta`` messages after its visibility timeout, and a column
survives a lost message, a restarted worker and "send again".

Signing: ``Webhook-Signature: t=<unix time>,v1=<hex>[,v1=<hex>]``, HMAC-SHA256 with the
endpoint's secret over ``f"{t}.{body}"``, signed afresh at each attempt; while a rotated secret
overlaps, the old secret's signature is sent beside the new one. README shows the receiver's
check.
"""

import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from urllib.parse import urlsplit

import certifi
import httpx
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from shops.access import access_for
from shops.models import Shop, ShopMembership, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

INTERCEPT_STATUS_CHANGED = "intercept.status_changed"
CLAIM_STATUS_CHANGED = "claim.status_changed"
# An intercept that succeeded looks worth a claim (not back in time, or tracking shows damage or
# loss): told to the merchant as its intercept results are.
CLAIM_SUGGESTED = "claim.suggested"
WALLET_FEE_CAPTURED = "wallet.fee_captured"
WALLET_FEE_RELEASED = "wallet.fee_released"
# A shipment check found (or cleared) a sign of fake shipping on one of the shop's orders: the
# notice at 6 days, the second at 10 days with the settlement held.
SHIPMENT_ANOMALY = "shipment.anomaly"
EVENT_TYPES = (
    INTERCEPT_STATUS_CHANGED,
    CLAIM_STATUS_CHANGED,
    CLAIM_SUGGESTED,
    SHIPMENT_ANOMALY,
    WALLET_FEE_CAPTURED,
    WALLET_FEE_RELEASED,
)

SIGNATURE_HEADER = "Webhook-Signature"
EVENT_ID_HEADER = "Webhook-Id"
EVENT_TYPE_HEADER = "Webhook-Event"
SECRET_PREFIX = "whsec_"
# Longer than the task's hard time limit (config/celery.py, 90 s): a live worker has always
# recorded its outcome, or been killed, before its lease runs out.
LEASE = timedelta(seconds=120)
# One task sends at most this many deliveries of its chain; the beat task picks up the rest.
CHAIN_BATCH = 100
EXCERPT_CHARS = 500
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

Status = WebhookDelivery.Status


# --- Endpoints -------------------------------------------------------------------------------


def validate_endpoint_url(url: str) -> str:
    """An endpoint URL: https to a public address; plain http only to this machine, and only
    in development and tests (``WEBHOOK_ALLOW_LOOPBACK_HTTP``, on with ``DJANGO_DEBUG``)."""
    url = (url or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise ValidationError({"url": _("Enter a valid URL.")}) from exc
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password:
        raise ValidationError({"url": _("A webhook URL cannot carry a user name or password.")})
    if settings.WEBHOOK_ALLOW_LOOPBACK_HTTP and host in LOOPBACK_HOSTS:
        # Development and tests: a receiver on this machine, http or https.
        return url
    if parts.scheme != "https":
        raise ValidationError({"url": _("A webhook URL must start with https://.")})
    if host == "localhost" or _is_internal_address(host):
        raise ValidationError(
            {"url": _("A webhook URL must be a public address, not an internal one.")}
        )
    return url


def _is_internal_address(host: str) -> bool:
    # Only literal addresses are judged: a name is resolved by the receiver's DNS at send time.
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _require_owner(actor, shop_id: int) -> None:
    access = access_for(actor)
    if access.is_superuser:
        return
    if access.shop_roles.get(shop_id) != ShopMembership.Role.OWNER:
        raise PermissionDenied(_("Only the shop owner manages its webhook endpoints."))


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def duplicate_endpoint_message() -> str:
    return _("This URL is already registered for the shop; events would arrive twice.")


def endpoint_registered(shop, url: str) -> bool:
    return WebhookEndpoint.objects.filter(shop=shop, url=url).exists()


def webhook_endpoint_create(
    *, actor, shop: Shop, url: str, description: str = "", is_active: bool = True
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint of the shop; returns it with its signing secret, to show once."""
    _require_owner(actor, shop.pk)
    url = validate_endpoint_url(url)
    if endpoint_registered(shop, url):
        raise ValidationError({"url": duplicate_endpoint_message()})
    secret = _new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            shop=shop,
            url=url,
            description=description.strip()[:100],
            is_active=is_active,
            secret=secret,
            created_by=actor,
        )
    return endpoint, secret


def webhook_endpoint_update(*, actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Save an endpoint's URL, description and whether it is active (never its secrets)."""
    _require_owner(actor, endpoint.shop_id)
    endpoint.url = validate_endpoint_url(endpoint.url)
    with transaction.atomic():
        endpoint.save(update_fields=["url", "description", "is_active"])
    return endpoint


def webhook_endpoint_rotate_secret(
    *, actor, endpoint: WebhookEndpoint, overlap_s: int | None = None
) -> str:
    """Give the endpoint a new secret; the current one keeps signing beside it for the overlap
    (``WEBHOOK_SECRET_OVERLAP_S``), so the receiver can switch without missing a delivery.
    Returns the new secret, to show once."""
    _require_owner(actor, endpoint.shop_id)
    overlap = settings.WEBHOOK_SECRET_OVERLAP_S if overlap_s is None else overlap_s
    secret = _new_secret()
    now = timezone.now()
    with transaction.atomic():
        current = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        current.previous_secret = current.secret
        current.previous_secret_expires_at = now + timedelta(seconds=max(0, overlap))
        current.secret = secret
        current.secret_rotated_at = now
        current.save(
            update_fields=[
                "previous_secret",
                "previous_secret_expires_at",
                "secret",
                "secret_rotated_at",
            ]
        )
    endpoint.refresh_from_db()
    return secret


def webhook_endpoint_delete(*, actor, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint with its deliveries (nothing more is sent to it)."""
    _require_owner(actor, endpoint.shop_id)
    endpoint.delete()


# --- Emitting --------------------------------------------------------------------------------


def webhook_emit(
    *,
    shop_id: int,
    event_type: str,
    object_type: str,
    object_id,
    data: Mapping | Callable[[], Mapping],
) -> list[int]:
    """Queue an event for every active endpoint of the shop; returns the deliveries' ids.

    Call it inside the transaction that makes the change, after locking or updating the
    changed record's row (see the module docstring). ``data`` may be a function, called only
    when the shop has an endpoint: a shop without one pays a single query.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = list(
        WebhookEndpoint.objects.filter(shop_id=shop_id, is_active=True)
        .order_by("pk")
        .values_list("pk", "shop__code")
    )
    if not endpoints:
        return []
    now = timezone.now()
    event_id = uuid.uuid4()
    body = json.dumps(
        {
            "id": str(event_id),
            "type": event_type,
            "created": now.isoformat(),
            "shop": endpoints[0][1],
            "data": data() if callable(data) else data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        cls=DjangoJSONEncoder,
    )
    give_up_at = now + timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_S)
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                shop_id=shop_id,
                endpoint_id=endpoint_id,
                event_id=event_id,
                event_type=event_type,
                object_key=f"{object_type}:{object_id}",
                body=body,
                next_attempt_at=now,
                give_up_at=give_up_at,
                created_at=now,
            )
            for endpoint_id, _code in endpoints
        ]
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _queue_sends(ids))
    return ids


def _queue_sends(delivery_ids: list[int]) -> None:
    from shops.tasks import webhook_chain_send  # tasks import this module

    for delivery_id in delivery_ids:
        webhook_chain_send.delay(delivery_id)


# --- Signing ---------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: str) -> str:
    signed = f"{timestamp}.{body}".encode()
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(endpoint: WebhookEndpoint, timestamp: int, body: str, now=None) -> str:
    """``t=<timestamp>,v1=<current secret's>`` and, while a rotated secret overlaps, a second
    ``v1=`` with the previous one's."""
    now = now or timezone.now()
    keys = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        keys.append(endpoint.previous_secret)
    return ",".join([f"t={timestamp}", *(f"v1={signature(k, timestamp, body)}" for k in keys)])


# --- Sending ---------------------------------------------------------------------------------


def retry_delay_s(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: exponential backoff with
    full jitter (a random wait up to the exponential bound), so receivers coming back from an
    outage are not hit by every sender at the same moment."""
    bound = min(
        settings.WEBHOOK_RETRY_CAP_S,
        settings.WEBHOOK_RETRY_BASE_S * 2 ** max(0, attempts - 1),
    )
    return random.uniform(0, bound)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the certificate bundle costs tens of milliseconds: once per process.
    return ssl.create_default_context(cafile=certifi.where())


def _claim_head(endpoint_id: int, object_key: str):
    """Lease the chain's oldest pending delivery if it is due and nobody is sending it;
    returns (delivery id, lease) or None."""
    now = timezone.now()
    head = (
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id, object_key=object_key, status=Status.PENDING
        )
        .order_by("pk")
        .values("pk", "next_attempt_at", "leased_until")
        .first()
    )
    if head is None or head["next_attempt_at"] > now:
        return None
    if head["leased_until"] is not None and head["leased_until"] > now:
        return None
    lease = now + LEASE
    # Conditional on the lease as read: of two workers that read the same head, one wins.
    claimed = WebhookDelivery.objects.filter(
        pk=head["pk"], status=Status.PENDING, leased_until=head["leased_until"]
    ).update(leased_until=lease, attempts=F("attempts") + 1)
    return (head["pk"], lease) if claimed else None


def _post(client: httpx.Client, url: str, body: str, headers: dict) -> dict:
    """One request; what came back, in the attempt log's words. Never raises for the network."""
    started = time.monotonic()
    outcome = {"status_code": None, "response_excerpt": "", "error": ""}
    try:
        with client.stream("POST", url, content=body.encode(), headers=headers) as response:
            outcome["status_code"] = response.status_code
            # Read an excerpt, not the whole answer: a receiver may send megabytes.
            received = b""
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= EXCERPT_CHARS * 4:
                    break
            outcome["response_excerpt"] = received.decode("utf-8", "replace")[:EXCERPT_CHARS]
    except httpx.TimeoutException:
        outcome["error"] = "timeout"
    except httpx.HTTPError as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"[:255]
    outcome["latency_ms"] = round((time.monotonic() - started) * 1000)
    return outcome


def _send_one(client: httpx.Client, delivery_id: int, lease) -> bool:
    """Send a leased delivery and record the attempt; True if the receiver took it."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:  # its endpoint was deleted meanwhile
        return False
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        # Deactivated meanwhile: what was queued is not sent either; "send again" after it is
        # active again sends it.
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=Status.PENDING, leased_until=lease
        ).update(status=Status.FAILED, leased_until=None)
        return False
    started_at = timezone.now()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "parcel-intercepts-webhooks/1",
        EVENT_ID_HEADER: str(delivery.event_id),
        EVENT_TYPE_HEADER: delivery.event_type,
        SIGNATURE_HEADER: signature_header(endpoint, timestamp, delivery.body, started_at),
    }
    outcome = _post(client, endpoint.url, delivery.body, headers)
    delivered = outcome["status_code"] is not None and 200 <= outcome["status_code"] < 300
    now = timezone.now()
    mine = WebhookDelivery.objects.filter(pk=delivery_id, status=Status.PENDING, leased_until=lease)
    with transaction.atomic():
        # Locked so that an endpoint deleted while we sent takes the delivery with it first, or
        # waits until its attempt is written.
        locked = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id)
        if locked.values_list("pk").first() is None:
            return False
        WebhookAttempt.objects.create(
            delivery_id=delivery_id, number=delivery.attempts, started_at=started_at, **outcome
        )
        if delivered:
            mine.update(status=Status.SUCCEEDED, delivered_at=now, leased_until=None)
        elif now >= delivery.give_up_at:
            mine.update(status=Status.FAILED, leased_until=None)
        else:
            mine.update(
                next_attempt_at=now + timedelta(seconds=retry_delay_s(delivery.attempts)),
                leased_until=None,
            )
    if not delivered:
        logger.info(
            "webhook delivery %s attempt %s to endpoint %s failed: %s",
            delivery_id,
            delivery.attempts,
            endpoint.pk,
            outcome["status_code"] or outcome["error"],
        )
    return delivered


def webhook_chain_send(*, delivery_id: int) -> int:
    """Send what is due in the chain of ``delivery_id`` (its endpoint and object), oldest first,
    stopping at the first delivery that is not due, is being sent elsewhere, or fails. Returns
    how many were delivered. Safe to run twice, and alongside another worker: a delivery is only
    sent by the worker that leased it, and only once every earlier one has left pending."""
    chain = (
        WebhookDelivery.objects.filter(pk=delivery_id).values("endpoint_id", "object_key").first()
    )
    if chain is None:
        return 0
    delivered = 0
    with httpx.Client(
        timeout=settings.WEBHOOK_TIMEOUT_S, follow_redirects=False, verify=_tls_context()
    ) as client:
        for _ in range(CHAIN_BATCH):
            claim = _claim_head(chain["endpoint_id"], chain["object_key"])
            if claim is None or not _send_one(client, *claim):
                break
            delivered += 1
    return delivered


def webhooks_send_due(*, limit: int = 500) -> int:
    """Queue a send for every chain whose head (oldest pending delivery) is due and not being
    sent; returns how many were queued. Run by beat; queuing a chain twice is harmless."""
    now = timezone.now()
    earlier_pending = WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        object_key=OuterRef("object_key"),
        status=Status.PENDING,
        pk__lt=OuterRef("pk"),
    )
    heads = list(
        WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
        .filter(~Exists(earlier_pending))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    if heads:
        transaction.on_commit(lambda: _queue_sends(heads))
    return len(heads)


def webhook_delivery_send_again(*, actor, delivery: WebhookDelivery) -> bool:
    """Put a delivery back in its chain to be sent now, with a fresh retry window (the shop's
    owner or an after-sales agent asks; the same event id, so the receiver can drop a repeat).
    A delivery being sent right now is left alone; returns whether it was requeued."""
    access = access_for(actor)
    if not (access.is_superuser or access.acts_for(delivery.shop_id)):
        raise PermissionDenied(_("Only the shop owner or an after-sales agent sends again."))
    now = timezone.now()
    with transaction.atomic():
        requeued = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
            .update(
                status=Status.PENDING,
                next_attempt_at=now,
                give_up_at=now + timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_S),
                leased_until=None,
            )
        )
        if requeued:
            transaction.on_commit(lambda: _queue_sends([delivery.pk]))
    return bool(requeued)
