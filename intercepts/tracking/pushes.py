"""Courier pushes after they are received: applied in bulk, off the request.

The push endpoint verifies a push, stores it as received and answers at once (gateways retry
a push that is slow to be answered). A drain applies received pushes in batches: it claims them
with ``SELECT ... FOR UPDATE SKIP LOCKED`` (so drains may run side by side), merges their scans,
applies them to the parcels in one go and marks the pushes accepted, all in one transaction. A
batch that fails is applied push by push, and only the pushes that fail are marked failed.

Waking the drain costs the endpoint one Redis ``SET NX``: the first push after the drain went
idle queues it, later ones find it awake, and a process that found it awake less than
``FLAG_TRUST_S`` ago does not ask again. The drain clears the flag only after finding nothing
left, waits ``FLAG_TRUST_S`` and looks once more, so a push stored meanwhile is either seen or
queues a new drain. A periodic task drains too, in case a worker died in the middle.
"""

import hashlib
import logging
import time
from collections import defaultdict
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from couriers.adapters import get_adapter
from couriers.adapters.base import PushRejected
from couriers.adapters.common import format_local_time
from couriers.models import Courier, CourierAccount
from couriers.ratelimit import redis_client
from intercepts.models import CourierPush, Parcel
from intercepts.services.outcomes import intercept_updates_apply
from intercepts.tracking.polling import protocol_code
from intercepts.tracking.scans import parcels_apply_scans

logger = logging.getLogger(__name__)

AWAKE_KEY = "intercepts:pushes:drain-awake"
# If a drain dies without clearing its flag, pushes queue a new one after this long at most.
AWAKE_TIMEOUT_S = 60
BATCH = 500
# Each batch costs a handful of queries whatever its size. When pushes come faster than one per
# batch (a batch of at least REFILL_MIN, yet fewer than BATCH) the drain waits this long before
# claiming again, so that a busy gateway's pushes are applied a few hundred at a time rather than
# a few; a lone push is applied at once.
REFILL_MIN = 2
REFILL_PAUSE_S = 0.2
# A drain hands over to a fresh task after this long, well inside Celery's soft time limit.
DRAIN_BUDGET_S = 40.0
# A process that found the drain awake less than this long ago does not ask Redis again; the
# drain waits this long between lowering its flag and its last look, so that such a push, stored
# before the flag went down or within this long after, is claimed by that look.
FLAG_TRUST_S = 0.1
_flag_seen_up_at = float("-inf")  # time.monotonic() of this process's last SET NX


FORM = "application/x-www-form-urlencoded"


def push_receive(*, account: CourierAccount, body: bytes, content_type: str):
    """Verify a push and store it; returns the adapter's parsed push (with the ack to send).

    All three protocols post a urlencoded form, and the drain verifies again from the stored
    body, so that is the one shape taken. A push that fails verification is stored as refused
    (``push_refuse``) and ``PushRejected`` raised.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        if "\x00" in text:
            # No gateway sends one (a form escapes it), and the database keeps none in text.
            raise PushRejected("a raw NUL character in the body")
        if content_type != FORM:
            raise PushRejected(f"not a urlencoded form: {content_type or 'no content type'}")
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        if limit is not None and text.count("&") >= limit:
            raise PushRejected(f"more than {limit} form fields")
        parsed = get_adapter(account.config()).parse_push(QueryDict(text).dict())
        _check_times(parsed)
    except PushRejected as exc:
        push_refuse(account=account, body=body, error=str(exc))
        raise
    _store_received(account.pk, text)
    transaction.on_commit(pushes_wake_drain)
    return parsed


def _check_times(parsed) -> None:
    """Refuse a push signed too far from our clock (either way: a replay, or a forged future),
    and one carrying a scan dated more than a small skew in the future (it must not move a
    parcel's stage). The errors are kept in the site's language, for platform staff."""
    now = timezone.now()
    window = settings.COURIER_PUSH_TIME_WINDOW_S
    with translation.override(settings.LANGUAGE_CODE):
        if parsed.signed_at is not None and abs(now - parsed.signed_at) > timedelta(seconds=window):
            raise PushRejected(
                _(
                    "Push signed at %(signed)s, more than %(minutes)d minutes from our clock "
                    "(%(now)s): refused as a possible replay"
                )
                % {
                    "signed": format_local_time(parsed.signed_at),
                    "minutes": window // 60,
                    "now": format_local_time(now),
                }
            )
        skew = settings.COURIER_SCAN_FUTURE_SKEW_S
        if skew is None:
            return
        latest = now + timedelta(seconds=skew)
        for result in parsed.tracking:
            for scan in result.scans:
                if scan.occurred_at > latest:
                    raise PushRejected(
                        _(
                            "Scan of waybill %(waybill)s dated %(when)s, more than %(minutes)d "
                            "minutes ahead of our clock"
                        )
                        % {
                            "waybill": result.waybill_no,
                            "when": format_local_time(scan.occurred_at),
                            "minutes": skew // 60,
                        }
                    )


REFUSED_KEY = "intercepts:pushes:refused:{account}:{minute}"


def push_refuse(
    *, account: CourierAccount, body: bytes, error: str, size: int | None = None
) -> None:
    """Store a refused push as a bounded record: the first ``EXCERPT_CHARS`` characters of its
    body, the body's size in bytes and its SHA-256. ``size`` is given where only part of the
    body was read (a body over the limit); its digest is then left blank.

    Refused pushes are counted per account and minute (an atomic increment in the cache); past
    ``COURIER_PUSH_REFUSED_PER_MINUTE`` the first one over is stored as a marker row, a warning
    logged, and the rest of that minute only counted on the marker (``refused_dropped``).
    """
    minute = int(time.time() // 60)
    key = REFUSED_KEY.format(account=account.pk, minute=minute)
    count = _count_refused(key)
    limit = settings.COURIER_PUSH_REFUSED_PER_MINUTE
    if count > limit + 1:
        marker = cache.get(f"{key}:marker")
        if marker is not None:
            CourierPush.objects.filter(pk=marker).update(refused_dropped=F("refused_dropped") + 1)
        return
    if count == limit + 1:
        logger.warning(
            "More than %d refused pushes this minute for account %s (%s): "
            "storing no more of them until the next minute",
            limit,
            account.pk,
            account.protocol,
        )
        with translation.override(settings.LANGUAGE_CODE):
            error = _(
                "Over %(limit)d refused pushes in a minute: the rest of this minute are answered "
                "but not stored, only counted here (last error: %(error)s)"
            ) % {"limit": limit, "error": error}
    excerpt = body.decode("utf-8", errors="replace")[: CourierPush.EXCERPT_CHARS]
    push = CourierPush.objects.create(
        account=account,
        # The database keeps no NUL in text.
        body=excerpt.replace("\x00", "\ufffd"),
        body_size=len(body) if size is None else size,
        body_sha256=hashlib.sha256(body).hexdigest() if size is None else "",
        status=CourierPush.Status.REFUSED,
        error=error[:255],
    )
    if count == limit + 1:
        cache.set(f"{key}:marker", push.pk, timeout=120)


def _count_refused(key: str) -> int:
    """Add one to a per-minute count and return it: Redis's INCR where the shared client is
    configured, Django's cache otherwise (the embedded defaults)."""
    client = redis_client()
    if client is not None:
        count = client.incr(key)
        if count == 1:
            client.expire(key, 120)
        return int(count)
    cache.add(key, 0, timeout=120)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: the first of a new count
        cache.add(key, 1, timeout=120)
        return 1


def _store_received(account_id: int, body: str) -> None:
    """Store a verified push as received, for the drain to apply."""
    CourierPush.objects.create(account_id=account_id, body=body, status=CourierPush.Status.RECEIVED)


DELETE_BATCH = 5000


def pushes_delete_expired(*, now=None, batch: int = DELETE_BATCH) -> dict[str, int]:
    """Delete raw pushes past their retention, a batch at a time; returns how many of each.

    Refused pushes are kept ``COURIER_PUSH_REFUSED_RETENTION_DAYS``, applied ones (accepted, or
    failed while applying) ``COURIER_PUSH_ACCEPTED_RETENTION_DAYS``; a push not yet applied is
    never deleted. Each batch is its own short transaction, and running it twice deletes
    nothing more.
    """
    now = timezone.now() if now is None else now
    Status = CourierPush.Status
    retained = {
        "refused": ([Status.REFUSED], settings.COURIER_PUSH_REFUSED_RETENTION_DAYS),
        "applied": (
            [Status.ACCEPTED, Status.FAILED],
            settings.COURIER_PUSH_ACCEPTED_RETENTION_DAYS,
        ),
    }
    deleted: dict[str, int] = {}
    for kind, (statuses, days) in retained.items():
        expired = CourierPush.objects.filter(
            status__in=statuses, received_at__lt=now - timedelta(days=days)
        )
        deleted[kind] = 0
        while True:
            pks = list(expired.order_by("pk").values_list("pk", flat=True)[:batch])
            if not pks:
                break
            count, _ = CourierPush.objects.filter(pk__in=pks).delete()
            deleted[kind] += count
            if len(pks) < batch:
                break
    return deleted


def _flag_raise() -> bool:
    """Set the awake flag if it was down; True if this call raised it."""
    client = redis_client()
    if client is None:  # the embedded defaults: Django's cache
        return cache.add(AWAKE_KEY, 1, timeout=AWAKE_TIMEOUT_S)
    # The shared client: Django's Redis cache builds a client for every call, a cost the push
    # endpoint pays on every push.
    return bool(client.set(AWAKE_KEY, 1, nx=True, ex=AWAKE_TIMEOUT_S))


def flag_lower() -> None:
    global _flag_seen_up_at
    _flag_seen_up_at = float("-inf")  # this process asks again next time
    client = redis_client()
    if client is None:
        cache.delete(AWAKE_KEY)
    else:
        client.delete(AWAKE_KEY)


def flag_is_up() -> bool:
    client = redis_client()
    return bool(cache.get(AWAKE_KEY) if client is None else client.exists(AWAKE_KEY))


def pushes_wake_drain() -> None:
    from intercepts import tasks  # the task module imports this one

    global _flag_seen_up_at
    asked_at = time.monotonic()
    if asked_at - _flag_seen_up_at < FLAG_TRUST_S:
        return  # awake a moment ago: the drain's last look comes after this push
    if _flag_raise():
        tasks.pushes_drain.delay()
    _flag_seen_up_at = asked_at


def pushes_drain() -> int:
    """Apply received pushes until none is left; returns how many were applied or failed."""
    done, deadline = 0, time.monotonic() + DRAIN_BUDGET_S
    try:
        while True:
            count = pushes_apply_received()
            done += count
            if count and time.monotonic() > deadline:
                # Still busy: a fresh task carries on (its own time limits) while this one ends.
                flag_lower()
                pushes_wake_drain()
                return done
            if count:
                if REFILL_MIN <= count < BATCH:
                    time.sleep(REFILL_PAUSE_S)
                continue
            flag_lower()
            # A push stored before the flag was cleared, or by a process that found it up
            # within FLAG_TRUST_S, is claimed here; a later one wakes a drain.
            time.sleep(FLAG_TRUST_S)
            count = pushes_apply_received()
            done += count
            if not count:
                return done
    except BaseException:
        # A drain that dies must not leave the flag up: the next push would not wake another.
        flag_lower()
        raise


def pushes_apply_received(*, limit: int | None = None) -> int:
    """Claim up to ``limit`` (BATCH) received pushes and apply them; returns how many were
    claimed."""
    limit = BATCH if limit is None else limit
    with transaction.atomic():
        pushes = list(
            CourierPush.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=CourierPush.Status.RECEIVED)
            .select_related("account")
            .order_by("pk")[:limit]
        )
        if not pushes:
            return 0
        try:
            with transaction.atomic():
                _apply(pushes)
        except SoftTimeLimitExceeded:
            raise  # the task is out of time, not the pushes wrong: they stay received
        except Exception:
            logger.exception(
                "Applying %d pushes together failed; applying them one by one", len(pushes)
            )
            for push in pushes:
                try:
                    with transaction.atomic():
                        _apply([push])
                except SoftTimeLimitExceeded:
                    raise
                except Exception as exc:
                    logger.exception("Failed to apply push #%s", push.pk)
                    push.status, push.error = CourierPush.Status.FAILED, str(exc)[:255]
                    push.save(update_fields=["status", "error"])
    return len(pushes)


def _parcels_named(account: CourierAccount, keys) -> dict[tuple[str, str], int]:
    """The one parcel each (courier code, waybill) of a push names, among the parcels of the
    couriers this account serves. A push that names no courier matches a waybill only where
    one of the account's couriers has it; the same number at two couriers is left unapplied
    (and logged) rather than guessed."""
    if not keys:
        return {}
    gateway_codes = {
        courier.pk: protocol_code(courier, account.protocol)
        for courier in Courier.objects.filter(account=account)
    }
    found: dict[str, list[tuple[str, int]]] = defaultdict(list)
    rows = Parcel.objects.filter(
        waybill_no__in=list({waybill_no for _code, waybill_no in keys}),
        courier_id__in=list(gateway_codes),
    ).values_list("pk", "waybill_no", "courier_id")
    for pk, waybill_no, courier_id in rows:
        found[waybill_no].append((gateway_codes[courier_id], pk))
    parcels: dict[tuple[str, str], int] = {}
    for courier_code, waybill_no in keys:
        matches = [
            pk
            for gateway_code, pk in found.get(waybill_no, ())
            if not courier_code or gateway_code.lower() == courier_code.lower()
        ]
        if len(matches) == 1:
            parcels[(courier_code, waybill_no)] = matches[0]
        elif matches:
            logger.warning(
                "A %s push names %s without its courier, and %d couriers have that number; "
                "not applied",
                account.protocol,
                waybill_no,
                len(matches),
            )
    return parcels


def _apply(pushes: list[CourierPush]) -> None:
    """Apply these pushes' scans in one go per account and mark each accepted or refused."""
    by_account: dict[int, list[CourierPush]] = defaultdict(list)
    for push in pushes:
        by_account[push.account_id].append(push)
    for account_pushes in by_account.values():
        account = account_pushes[0].account
        adapter = get_adapter(account.config())
        # (courier code, waybill) -> scans from every push that named it (applying merges and
        # dedups them). The code is the gateway's, where the push names the courier.
        scans_by_waybill: dict[tuple[str, str], list] = defaultdict(list)
        waybills_by_push: dict[int, set[tuple[str, str]]] = {}
        intercept_updates: list[dict] = []
        for push in account_pushes:
            try:
                parsed = adapter.parse_push(QueryDict(push.body).dict())
            except PushRejected as exc:  # changed since it was received: not applied
                push.status, push.error = CourierPush.Status.REFUSED, str(exc)[:255]
                continue
            named = set()
            for result in parsed.tracking:
                key = (result.courier_code, result.waybill_no)
                scans_by_waybill[key].extend(result.scans)
                if result.scans:
                    named.add(key)
            intercept_updates.extend(parsed.intercept_updates)
            waybills_by_push[push.pk] = named
        parcel_by_waybill = _parcels_named(account, scans_by_waybill)
        parcels_apply_scans(
            scans_by_parcel={pk: scans_by_waybill[key] for key, pk in parcel_by_waybill.items()},
            source=account.protocol,
        )
        if intercept_updates:
            # Applied once the pushes are committed, each request in its own transaction.
            transaction.on_commit(
                lambda a=account.pk, u=intercept_updates: intercept_updates_apply(
                    account_id=a, updates=u
                )
            )
        for push in account_pushes:
            if push.pk in waybills_by_push:
                push.status = CourierPush.Status.ACCEPTED
                push.parcels_updated = sum(
                    key in parcel_by_waybill for key in waybills_by_push[push.pk]
                )
    # Nearly all pushes end alike (accepted, one parcel): one UPDATE per outcome, not per push.
    outcomes: dict[tuple, list[int]] = defaultdict(list)
    for push in pushes:
        outcomes[(push.status, push.error, push.parcels_updated)].append(push.pk)
    for (status, error, parcels_updated), pks in outcomes.items():
        CourierPush.objects.filter(pk__in=pks).update(
            status=status, error=error, parcels_updated=parcels_updated
        )
