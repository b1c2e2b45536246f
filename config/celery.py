"""The Celery app: JSON only, explicit time limits, and the beat schedule kept in code."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("parcel_intercepts")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    # A task that hangs on a courier must not hold a worker for ever.
    task_soft_time_limit=60,
    task_time_limit=90,
    # Acknowledge after the work is done so a worker that dies mid-task gets it redelivered;
    # every task is written to be safe to run twice.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "parcels-poll-due": {"task": "intercepts.parcels_poll_due", "schedule": 30.0},
        # Pushes are drained as they come; this catches any left by a worker that died.
        "pushes-drain": {"task": "intercepts.pushes_drain", "schedule": 60.0},
        # Intercepts left unanswered (a timeout, a worker that died) are asked about again.
        "intercepts-reconcile": {"task": "intercepts.intercepts_reconcile", "schedule": 60.0},
        # Webhook deliveries whose next attempt is due (retries, and sends lost with a worker):
        # due times live in a column, not in far-future countdowns the broker may redeliver.
        "webhooks-send-due": {"task": "shops.webhooks_send_due", "schedule": 15.0},
        # Intercepts that succeeded and are still not back after the policy's days (default 7)
        # are marked "claim suggested"; tracking that shows damage marks them as it arrives.
        "claims-suggest-overdue": {
            "task": "intercepts.claims_suggest_overdue",
            "schedule": crontab(minute=23),
        },
        # Shipments with no final stage 6 and 10 days after shipping (the 10-day one holds
        # the order's settlement); arrivals clear them as tracking comes in.
        "shipments-scan-overdue": {
            "task": "intercepts.shipments_scan_overdue",
            "schedule": crontab(minute=37),
        },
        # Refused pushes after 7 days, applied raw pushes after 30 (settings).
        "pushes-delete-expired": {
            "task": "intercepts.pushes_delete_expired",
            "schedule": crontab(hour=3, minute=41),
        },
        # ERP API answers are replayed for 24 hours after their Idempotency-Key was first used.
        "api-idempotency-purge": {"task": "intercepts.api_idempotency_purge", "schedule": 3600.0},
        "sessions-clear-expired": {
            "task": "intercepts.sessions_clear_expired",
            "schedule": crontab(hour=4, minute=17),
        },
    },
)
app.autodiscover_tasks()
