"""Celery tasks of the workbench: thin wrappers that call services."""

from celery import shared_task
from django.core import management


@shared_task(name="intercepts.sessions_clear_expired")
def sessions_clear_expired() -> None:
    """Delete expired sessions (safe to run twice: it only deletes what has expired)."""
    management.call_command("clearsessions")
