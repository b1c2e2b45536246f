"""Celery tasks of the workbench: thin wrappers that take ids and call services.

A task that runs one service carries its name, in Python and in Celery (``intercepts.<name>``),
so a reader finds one from the other and no task shares a name with a service that does
something else.
"""

from celery import shared_task
from django.core import management
from django.db import transaction

from intercepts.services import claim_watch, sending, shipment_checks, shipment_uploads
from intercepts.tracking import polling, pushes
from shops.api.idempotency import idempotency_records_purge


@shared_task(name="intercepts.sessions_clear_expired")
def sessions_clear_expired() -> None:
    """Delete expired sessions (safe to run twice: it only deletes what has expired)."""
    management.call_command("clearsessions")


@shared_task(name="intercepts.api_idempotency_purge")
def api_idempotency_purge() -> int:
    """Delete API answers kept past their Idempotency-Key's 24 hours (safe to run twice)."""
    return idempotency_records_purge()


@shared_task(name="intercepts.parcels_poll_due")
def parcels_poll_due(limit: int = 2000) -> int:
    """Lease the parcels due for a poll and queue one task per courier and chunk."""
    claimed = polling.parcels_claim_due(limit=limit)
    # Each task is sized to its courier's gateway (polling.poll_chunk_size).
    for courier_id, courier, chunk in polling.poll_chunks(claimed):
        queue = polling.courier_queue(courier.code if courier is not None else "unknown")
        transaction.on_commit(
            lambda c=courier_id, ids=chunk, q=queue: parcels_poll.apply_async(
                args=[c, ids], queue=q
            )
        )
    return sum(len(ids) for ids in claimed.values())


@shared_task(name="intercepts.parcels_poll")
def parcels_poll(courier_id: int, parcel_ids: list[int]) -> dict:
    """Ask one courier about these parcels; leased parcels that vanish are simply skipped."""
    return polling.parcels_poll(courier_id=courier_id, parcel_ids=parcel_ids)


@shared_task(name="intercepts.parcel_subscribe")
def parcel_subscribe(parcel_id: int) -> bool:
    """Ask a new parcel's gateway to push its tracking (at most once per parcel)."""
    return polling.parcel_subscribe(parcel_id=parcel_id)


@shared_task(name="intercepts.pushes_drain")
def pushes_drain() -> int:
    """Apply the courier pushes received and not yet applied (also run periodically)."""
    return pushes.pushes_drain()


@shared_task(name="intercepts.pushes_delete_expired")
def pushes_delete_expired() -> dict[str, int]:
    """Delete raw pushes past their retention (safe to run twice: only what has expired)."""
    return pushes.pushes_delete_expired()


@shared_task(name="intercepts.intercept_send")
def intercept_send(intercept_id: int) -> str:
    """Send a new intercept request to its courier (a second run finds it sent and stops)."""
    return sending.intercept_send(intercept_id=intercept_id)


@shared_task(name="intercepts.intercept_withdrawal_send")
def intercept_withdrawal_send(intercept_id: int) -> str:
    """Ask the courier to drop a withdrawn request (a second run finds it settled and stops)."""
    return sending.intercept_withdrawal_send(intercept_id=intercept_id)


@shared_task(name="intercepts.intercepts_reconcile")
def intercepts_reconcile() -> dict:
    """Resend requests the courier never answered, and send those whose task was lost."""
    return sending.intercepts_reconcile()


@shared_task(name="intercepts.claims_suggest_overdue")
def claims_suggest_overdue() -> int:
    """Mark intercepts not back N days after they succeeded "claim suggested" (safe to run
    twice: each is marked once, under its row lock)."""
    return claim_watch.claims_suggest_overdue()


@shared_task(name="intercepts.shipments_scan_overdue")
def shipments_scan_overdue() -> dict:
    """Open the 6- and 10-day stalls of shipments with no final stage, and clear those whose
    parcel has arrived (safe to run twice: each anomaly kind is opened once per parcel)."""
    return shipment_checks.shipments_scan_overdue()


@shared_task(name="intercepts.shipment_upload_parse")
def shipment_upload_parse(upload_id: int) -> str:
    """Read and check an uploaded file into its preview (a second run finds it read)."""
    return shipment_uploads.shipment_upload_parse(upload_id=upload_id)


@shared_task(name="intercepts.shipment_upload_apply")
def shipment_upload_apply(upload_id: int) -> str:
    """Ship the confirmed upload's valid rows (a second run ships only what is left)."""
    return shipment_uploads.shipment_upload_apply(upload_id=upload_id)
