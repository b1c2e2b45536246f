"""The Celery app: JSON only, time limits, and a beat schedule whose tasks exist."""

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from config.celery import app
from intercepts.tasks import sessions_clear_expired


def test_app_is_json_only_with_time_limits():
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


@pytest.mark.django_db  # importing the task modules runs Django's checks, which ask the database
def test_every_scheduled_task_is_registered():
    app.loader.import_default_modules()
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks, entry["task"]


@pytest.mark.django_db
def test_clearing_sessions_is_safe_to_run_twice():
    live = SessionStore()
    live.create()
    expired = SessionStore()
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - timezone.timedelta(days=1)
    )
    sessions_clear_expired.apply()
    sessions_clear_expired.apply()
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
