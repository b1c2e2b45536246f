"""Celery tasks of billing: thin wrappers that take ids and call the service named alike."""

from celery import shared_task

from billing import exports


# A workbook of a million rows takes minutes: far above the default limits for courier calls.
@shared_task(name="billing.export_build", soft_time_limit=1800, time_limit=1900)
def export_build(export_id: int) -> bool:
    """Build a queued export's workbook (a finished one is left as it is)."""
    return exports.export_build(export_id=export_id)
