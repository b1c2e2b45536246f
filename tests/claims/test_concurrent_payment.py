"""Two finance users paying the same claim at the same moment, each on its own PostgreSQL
connection: one credit, one history row, whichever wins."""

import threading

import psycopg
import pytest
from django.db import connection

from billing.models import LedgerEntry, LedgerTransaction
from claims import services
from claims.models import Claim

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.postgres,
]


def test_two_finance_users_paying_at_once_produce_one_credit(world, finance2, claim_a):
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    services.claim_approve(actor=world.cs, claim=claim_a, amount_fen=12_000, note="扣除运费")
    # A third connection holds the claim's row, so both payments are really in flight inside
    # PostgreSQL, queued on the same row, before either can go on.
    settings_dict = connection.settings_dict
    blocker = psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
        autocommit=False,
    )
    blocker.execute("SELECT id FROM claims_claim WHERE id = %s FOR UPDATE", [claim_a.pk])
    results, errors = {}, []
    lock = threading.Lock()

    def pay(user):
        try:
            moved = services.claim_pay(actor=user, claim=Claim.objects.get(pk=claim_a.pk))
            with lock:
                results[user.username] = moved
        except Exception as exc:  # asserted on below
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(user,)) for user in (world.finance, finance2)]
    for thread in threads:
        thread.start()
    waiting = 0
    with psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
        autocommit=True,
    ) as watcher:
        for _ in range(200):
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = "
                "'Lock' AND query LIKE %s",
                # The statement is longer than PostgreSQL keeps; its start names the table.
                [settings_dict["NAME"], 'SELECT "claims_claim".%'],
            ).fetchone()[0]
            if waiting == 2:
                break
            threading.Event().wait(0.05)
    blocker.rollback()
    blocker.close()
    for thread in threads:
        thread.join(timeout=60)

    assert waiting == 2
    assert errors == []
    assert sorted(results.values()) == [False, True]
    payments = LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.COMPENSATION)
    assert payments.count() == 1
    assert (
        sum(
            LedgerEntry.objects.filter(
                transaction__in=payments, account__kind="available"
            ).values_list("amount_fen", flat=True)
        )
        == 12_000
    )
    claim_a.refresh_from_db()
    assert claim_a.status == Claim.Status.PAID
    assert claim_a.events.filter(to_status="paid").count() == 1
