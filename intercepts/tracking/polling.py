"""Keeping tracking current by polling: claim due parcels, query in batches, apply, reschedule.

A beat task claims parcels whose ``next_poll_at`` has come (``SELECT ... FOR UPDATE SKIP LOCKED``
on PostgreSQL, so several beat or worker processes never claim the same parcel) and leases them
for a few minutes (``poll_leased_until``): if a worker dies, the parcels come due again by
themselves. Each courier's batch is queried within its account's rate (a token bucket shared by
all workers), the scans are applied idempotently, and the next poll is set by urgency. A
gateway that fails backs off per parcel; nothing is dropped while a courier is down.
"""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from couriers.adapters import adapter_class, get_adapter
from couriers.adapters.base import AuthenticationError, CourierError, Waybill
from couriers.models import Courier, CourierAccount
from couriers.ratelimit import RateLimiter
from couriers.stages import IN_FLIGHT_STAGES, TERMINAL_STAGES, ParcelStage
from intercepts.models import InterceptRequest, Parcel
from intercepts.tracking.scans import parcels_apply_scans

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
# A poll task sends at most this many requests, and no more than its gateway takes in
# CHUNK_RATE_SECONDS at its rate limit: at a slow gateway's few hundred milliseconds a request
# it still ends well inside the task's time limit, and a fast one is asked about many parcels
# per task (each task pays for a claim, a few statements and a commit whatever its size).
CHUNK_MAX_REQUESTS = 100
CHUNK_RATE_SECONDS = 15
# Intercepts sent and not yet settled: their parcels are polled often.
INTERCEPT_WAITING = (InterceptRequest.Status.SUBMITTED, InterceptRequest.Status.ACCEPTED)
MAX_BACKOFF = timedelta(hours=6)


def _scaled(delta: timedelta) -> timedelta:
    # The demo runs the sandbox courier on an accelerated clock; polling keeps pace with it.
    return delta * float(getattr(settings, "TRACKING_POLL_SCALE", 1.0))


def next_poll_delay(stage: str) -> timedelta | None:
    """How long until a parcel in ``stage`` is asked about again; None: never again."""
    if stage in TERMINAL_STAGES:
        return None
    if stage in IN_FLIGHT_STAGES or stage == ParcelStage.RETURNING:
        return _scaled(timedelta(hours=2))
    return _scaled(timedelta(hours=6))


def backoff_delay(failures: int) -> timedelta:
    """Exponential back-off per parcel after failed polls: 2, 4, 8 ... minutes, capped."""
    return min(_scaled(timedelta(minutes=2 ** min(failures, 12))), MAX_BACKOFF)


def query_batch_size(account: CourierAccount) -> int:
    """Waybills per gateway request: what both the protocol and the account take."""
    capabilities = adapter_class(account.protocol).capabilities
    return max(1, min(capabilities.query_batch_size, account.batch_size or 1))


def poll_chunk_size(account: CourierAccount | None) -> int:
    """Parcels per poll task for a courier served by ``account`` (see CHUNK_MAX_REQUESTS)."""
    if account is None:
        return CHUNK_MAX_REQUESTS  # polled only to back off; any size will do
    requests = int(account.requests_per_second * CHUNK_RATE_SECONDS)
    return query_batch_size(account) * max(1, min(CHUNK_MAX_REQUESTS, requests))


def poll_chunks(claimed: dict[int, list[int]]) -> list[tuple[int, Courier | None, list[int]]]:
    """The claimed parcels of each courier cut into poll tasks' worth: (courier id, the courier
    with its account or None if it is gone, parcel ids)."""
    couriers = Courier.objects.select_related("account").in_bulk(list(claimed))
    chunks = []
    for courier_id, parcel_ids in claimed.items():
        courier = couriers.get(courier_id)
        size = poll_chunk_size(courier.account if courier is not None else None)
        chunks += [
            (courier_id, courier, parcel_ids[start : start + size])
            for start in range(0, len(parcel_ids), size)
        ]
    return chunks


def parcels_claim_due(*, limit: int = 1000, now=None) -> dict[int, list[int]]:
    """Lease up to ``limit`` due parcels and return their ids grouped by courier."""
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        rows = _claim_postgresql(limit, now)
    else:
        with transaction.atomic():
            rows = list(
                Parcel.objects.filter(next_poll_at__lte=now)
                .filter(Q(poll_leased_until__isnull=True) | Q(poll_leased_until__lte=now))
                .order_by("next_poll_at")
                .select_for_update()
                .values_list("pk", "courier_id")[:limit]
            )
            Parcel.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                poll_leased_until=now + LEASE
            )
    grouped: dict[int, list[int]] = defaultdict(list)
    for pk, courier_id in rows:
        grouped[courier_id].append(pk)
    return dict(grouped)


def _claim_postgresql(limit: int, now) -> list[tuple[int, int]]:
    """Pick and lease in one statement: rows another claimer holds are skipped, not waited for."""
    table = Parcel._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET poll_leased_until = %s WHERE id IN ("
            f"  SELECT id FROM {table} WHERE next_poll_at <= %s"
            f"  AND (poll_leased_until IS NULL OR poll_leased_until <= %s)"
            f"  ORDER BY next_poll_at LIMIT %s FOR UPDATE SKIP LOCKED"
            f") RETURNING id, courier_id",
            [now + LEASE, now, now, limit],
        )
        return cursor.fetchall()


def _back_off(parcel_ids: list[int], now) -> None:
    """One more failure each, and a later retry the more failures a parcel has had."""
    by_failures: dict[int, list[int]] = defaultdict(list)
    for pk, failures in Parcel.objects.filter(pk__in=parcel_ids).values_list("pk", "poll_failures"):
        by_failures[failures].append(pk)
    for failures, ids in by_failures.items():
        Parcel.objects.filter(pk__in=ids).update(
            next_poll_at=now + backoff_delay(failures + 1),
            poll_failures=F("poll_failures") + 1,
            poll_leased_until=None,
        )


def parcels_poll(*, courier_id: int, parcel_ids: list[int]) -> dict[str, int]:
    """Query one courier about some parcels and apply what it says. Safe to run twice.

    Every batch is asked first, outside any transaction (a slow courier holds no locks); then
    what came back is applied and the next polls set in one transaction of a few statements.
    A batch that fails backs off on its own; the others are applied as usual.
    """
    courier = Courier.objects.select_related("account").filter(pk=courier_id).first()
    if courier is None or courier.account is None or not courier.account.is_active:
        logger.warning("Courier %s has no active gateway account; not polled", courier_id)
        # Asked again later, in case an account is set up meanwhile.
        _back_off(list(parcel_ids), timezone.now())
        return {"polled": 0, "failed": len(parcel_ids)}
    account = courier.account
    # Parcels whose intercept awaits its result come back flagged, in the same query: they
    # are asked about again far sooner.
    waiting = InterceptRequest.objects.filter(
        parcel_id=OuterRef("pk"), status__in=INTERCEPT_WAITING
    )
    rows = (
        Parcel.objects.filter(pk__in=parcel_ids, courier_id=courier_id)
        .exclude(stage__in=TERMINAL_STAGES)
        .annotate(intercepted=Exists(waiting))
        .values_list("pk", "waybill_no", "receiver_phone", "intercepted")
    )
    parcels, intercepted = [], set()
    for pk, waybill_no, phone, flagged in rows:
        parcels.append((pk, waybill_no, phone))
        if flagged:
            intercepted.add(pk)
    adapter = get_adapter(account.config())
    batch_size = query_batch_size(account)
    limiter = RateLimiter(f"account:{account.pk}", per_second=account.requests_per_second)
    code = protocol_code(courier, account.protocol)
    answered: dict[int, list] = {}
    failed_ids: list[int] = []
    starts = range(0, len(parcels), batch_size)
    grants = limiter.grants(len(starts), max_wait_s=10)
    try:
        for start, granted in zip(starts, grants, strict=True):
            batch = parcels[start : start + batch_size]
            ids_by_waybill = defaultdict(list)
            for pk, waybill_no, _phone in batch:
                ids_by_waybill[waybill_no].append(pk)
            waybills = [
                Waybill(
                    waybill_no=waybill_no,
                    courier_code=courier.code,
                    protocol_code=code,
                    phone_tail=phone[-4:],
                )
                for _pk, waybill_no, phone in batch
            ]
            if not granted:
                failed_ids += [pk for pk, _w, _p in batch]
                continue
            try:
                results = adapter.query(waybills)
            except CourierError as exc:
                level = logging.ERROR if isinstance(exc, AuthenticationError) else logging.WARNING
                logger.log(
                    level, "Polling %s failed for %d parcels: %s", courier.code, len(batch), exc
                )
                failed_ids += [pk for pk, _w, _p in batch]
                continue
            # A parcel the courier had nothing on is still polled: it is rescheduled as it is.
            answered.update((pk, []) for pk, _w, _p in batch)
            for result in results:
                for pk in ids_by_waybill.get(result.waybill_no, ()):
                    answered[pk] = result.scans
    finally:
        close = getattr(adapter, "close", None)
        if close is not None:
            close()
    now = timezone.now()
    parcels_apply_scans(
        scans_by_parcel=answered,
        source="poll",
        reschedule=lambda pk, stage: _next_poll_at(stage, now, intercepted=pk in intercepted),
    )
    if failed_ids:
        _back_off(failed_ids, now)
    return {"polled": len(answered), "failed": len(failed_ids)}


def _next_poll_at(stage: str, now, *, intercepted: bool = False):
    delay = next_poll_delay(stage)
    if delay is None:
        return None
    if intercepted:
        delay = min(delay, intercept_poll_delay())
    return now + delay


def intercept_poll_delay() -> timedelta:
    """How soon a parcel with an intercept awaiting its result is asked about again."""
    return _scaled(timedelta(minutes=15))


def courier_queue(code: str) -> str:
    """Each courier has its own Celery queue, so one slow gateway never holds up another."""
    return f"courier.{code.lower()}"


def protocol_code(courier: Courier, protocol: str) -> str:
    if protocol == "kuaidi100":
        return courier.kuaidi100_code
    if protocol == "kdniao":
        return courier.kdniao_code
    return courier.code


def parcel_request_refresh(*, parcel: Parcel) -> bool:
    """Ask the courier about one parcel now (the "refresh tracking" button).

    The poll itself runs in a task queued once this transaction commits; False when there is
    nothing to ask (a finished parcel, or a courier without a gateway account).
    """
    from intercepts import tasks  # the task module imports this one

    courier = parcel.courier
    if parcel.stage in TERMINAL_STAGES or courier.account_id is None:
        return False
    with transaction.atomic():
        Parcel.objects.filter(pk=parcel.pk).update(poll_leased_until=timezone.now() + LEASE)
        transaction.on_commit(
            lambda: tasks.parcels_poll.apply_async(
                args=[courier.pk, [parcel.pk]], queue=courier_queue(courier.code)
            )
        )
    return True


def parcel_subscribe(*, parcel_id: int) -> bool:
    """Ask the parcel's gateway to push its tracking to us; polling stays the fallback.

    Claimed with a conditional update first, so running it twice subscribes once (gateways
    limit subscriptions per waybill); a failure clears the claim so that it can be tried again.
    """
    parcel = Parcel.objects.select_related("courier__account").filter(pk=parcel_id).first()
    if parcel is None or parcel.stage in TERMINAL_STAGES:
        return False
    account = parcel.courier.account
    if account is None or not account.is_active or not account.callback_url:
        return False
    claimed = Parcel.objects.filter(pk=parcel_id, subscribed_at__isnull=True).update(
        subscribed_at=timezone.now()
    )
    if not claimed:
        return False
    adapter = get_adapter(account.config())
    try:
        adapter.subscribe(
            Waybill(
                waybill_no=parcel.waybill_no,
                courier_code=parcel.courier.code,
                protocol_code=protocol_code(parcel.courier, account.protocol),
                phone_tail=parcel.receiver_phone[-4:],
            )
        )
    except CourierError as exc:
        Parcel.objects.filter(pk=parcel_id).update(subscribed_at=None)
        logger.warning("Subscribing %s failed: %s", parcel.waybill_no, exc)
        return False
    finally:
        close = getattr(adapter, "close", None)
        if close is not None:
            close()
    return True
