"""Raw pushes are kept for a while, then deleted by a beat task, a batch at a time."""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from couriers.models import CourierAccount
from intercepts import tasks
from intercepts.models import CourierPush
from intercepts.tracking.pushes import pushes_delete_expired

Status = CourierPush.Status


@pytest.fixture
def account(db):
    return CourierAccount.objects.create(
        name="k100", protocol="kuaidi100", base_url="http://127.0.0.1:9/k100", salt="s"
    )


def _pushes(account, status, days_ago, count=1):
    when = timezone.now() - timedelta(days=days_ago)
    return [
        CourierPush.objects.create(account=account, body="x", status=status, received_at=when).pk
        for _ in range(count)
    ]


def test_expired_pushes_are_deleted_and_the_rest_kept(account):
    kept = [
        *_pushes(account, Status.REFUSED, 6),
        *_pushes(account, Status.ACCEPTED, 29),
        *_pushes(account, Status.FAILED, 29),
        *_pushes(account, Status.RECEIVED, 400),  # not applied yet: never deleted
    ]
    _pushes(account, Status.REFUSED, 8, count=3)
    _pushes(account, Status.ACCEPTED, 31, count=2)
    _pushes(account, Status.FAILED, 31)
    assert (
        tasks.pushes_delete_expired.apply().get(),
        sorted(CourierPush.objects.values_list("pk", flat=True)),
    ) == ({"refused": 3, "applied": 3}, sorted(kept))


def test_retention_follows_its_settings(account, settings):
    settings.COURIER_PUSH_REFUSED_RETENTION_DAYS = 2
    settings.COURIER_PUSH_ACCEPTED_RETENTION_DAYS = 5
    kept = _pushes(account, Status.REFUSED, 1) + _pushes(account, Status.ACCEPTED, 4)
    _pushes(account, Status.REFUSED, 3)
    _pushes(account, Status.ACCEPTED, 6)
    pushes_delete_expired()
    assert sorted(CourierPush.objects.values_list("pk", flat=True)) == sorted(kept)


def test_deleting_in_batches_deletes_them_all_and_a_second_run_nothing(account):
    _pushes(account, Status.REFUSED, 10, count=7)
    first = pushes_delete_expired(batch=3)
    second = pushes_delete_expired(batch=3)
    assert (first, second, CourierPush.objects.count()) == (
        {"refused": 7, "applied": 0},
        {"refused": 0, "applied": 0},
        0,
    )


def test_the_retention_task_is_on_the_beat_schedule():
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "intercepts.pushes_delete_expired" in scheduled
