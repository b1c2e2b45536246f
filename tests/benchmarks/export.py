"""Finance export: a million charged fees streamed as CSV, against PostgreSQL's own COPY.

Loads 1,000,000 charged fees (captured holds) into a wallet of a shop of its own with COPY, then,
in a fresh process each time (so that its peak memory is the export's alone), downloads the CSV
of the whole period as platform finance does: a POST to the exports page through Django's test
client, reading the streamed response to its end. In the same run, in the same kind of process,
it times ``COPY (the export's query) TO STDOUT`` read to its end by a bare psycopg connection:
the database producing the same rows with no formatting and no Django.

- ``ratio_to_copy``: the export's median time over COPY's median time (3 runs each).
- ``peak_rss_mb``: the largest peak resident set (``VmHWM``) of a process that streamed the
  export: the whole process, Django included (``rss_before_export_mb`` is that process before
  the export started).
"""

import multiprocessing
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from billing import services
from billing.models import Hold, Wallet
from couriers.models import Courier
from tests.benchmarks import _export_child, at_most, equals

LIMITS = {
    "ratio_to_copy": at_most(3),
    "peak_rss_mb": at_most(200),
    # A fast export means nothing unless every row came out.
    "rows_exported_match": equals(True),
}

ROWS = 1_000_000
RUNS = 3
SHOP_CODE = "bench-export"
REFERENCE_PREFIX = "bench-export:"
SEED = 20261122
# The fees are charged over these days, in the benchmark's own past (no other data there).
FIRST_DAY = datetime(2025, 1, 1, 8, tzinfo=UTC)
DAYS = 30
CHUNK_ROWS = 50_000


def _shop_and_wallet():
    from shops.models import Shop

    shop, _created = Shop.objects.get_or_create(
        code=SHOP_CODE, defaults={"name": "基准·财务导出", "return_contact": "财务"}
    )
    wallet = Wallet.objects.filter(shop=shop).first()
    if wallet is None:
        from django.contrib.auth.models import User

        owner, _created = User.objects.get_or_create(
            username="bench-export-finance", defaults={"is_staff": True, "is_superuser": True}
        )
        wallet = services.wallet_open(actor=owner, shop_id=shop.pk)
    return shop, wallet


def _load(wallet: Wallet) -> float:
    """COPY the fees in, unless a previous run left exactly them."""
    loaded = Hold.objects.filter(wallet=wallet, reference__startswith=REFERENCE_PREFIX).count()
    if loaded == ROWS:
        return 0.0
    started = time.perf_counter()
    rng = random.Random(SEED)
    couriers = list(Courier.objects.values_list("pk", flat=True))
    amounts = [300, 300, 300, 400, 500, 800]
    with transaction.atomic(), connection.cursor() as cursor:
        # The database refuses to delete holds (ledger rows refer to them); these are the
        # benchmark's own, referred to by nothing, and replica mode does not fire the trigger.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "DELETE FROM billing_hold WHERE wallet_id = %s AND reference LIKE %s",
            [wallet.pk, REFERENCE_PREFIX + "%"],
        )
    with connection.cursor() as cursor:
        raw = cursor.cursor
        columns = "(wallet_id, reference, courier_id, amount_fen, status, created_at, updated_at)"
        span = DAYS * 86400
        with raw.copy(f"COPY billing_hold {columns} FROM STDIN") as copy:
            for start in range(0, ROWS, CHUNK_ROWS):
                lines = []
                for number in range(start, min(start + CHUNK_ROWS, ROWS)):
                    # Evenly through the period, in order, so rows come out as they went in.
                    charged = FIRST_DAY + timedelta(seconds=number * span // ROWS)
                    held = charged - timedelta(hours=2)
                    lines.append(
                        f"{wallet.pk}\t{REFERENCE_PREFIX}{number}\t{rng.choice(couriers)}\t"
                        f"{rng.choice(amounts)}\tcaptured\t{held.isoformat()}\t"
                        f"{charged.isoformat()}\n"
                    )
                copy.write("".join(lines))
        cursor.execute("VACUUM (ANALYZE) billing_hold")
    return time.perf_counter() - started


def _spec_form(shop) -> dict:
    last = (FIRST_DAY + timedelta(days=DAYS)).date()
    return {
        "kind": "fees",
        "date_from": FIRST_DAY.date().isoformat(),
        "date_to": last.isoformat(),
        "shop": str(shop.pk),
        "format": "csv",
    }


def _in_process(job: str, form: dict) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_export_child.main, args=(job, form, queue))
    process.start()
    result = queue.get(timeout=600)
    process.join(timeout=60)
    if "error" in result:
        raise RuntimeError(f"{job} failed:\n{result['error']}")
    return result


def run() -> dict:
    shop, wallet = _shop_and_wallet()
    load_seconds = _load(wallet)
    form = _spec_form(shop)
    ours, copies = [], []
    for _ in range(RUNS):
        # Alternated, so that a busy moment of the machine falls on both alike.
        copies.append(_in_process("copy", form))
        ours.append(_in_process("export", form))
    export_s = statistics.median(run["seconds"] for run in ours)
    copy_s = statistics.median(run["seconds"] for run in copies)
    rows_exported = ours[0]["lines"] - 1  # the header line
    return {
        "ratio_to_copy": round(export_s / copy_s, 2),
        "peak_rss_mb": round(max(run["peak_rss_mb"] for run in ours), 1),
        "rss_before_export_mb": round(max(run["rss_before_export_mb"] for run in ours), 1),
        "rows_exported_match": rows_exported == ROWS == copies[0]["lines"],
        "rows": ROWS,
        "export_seconds_median": round(export_s, 2),
        "copy_seconds_median": round(copy_s, 2),
        "export_rows_per_s": round(ROWS / export_s),
        "export_mb": round(ours[0]["bytes"] / 2**20, 1),
        "copy_mb": round(copies[0]["bytes"] / 2**20, 1),
        "load_seconds": round(load_seconds, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
