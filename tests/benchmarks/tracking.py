"""Tracking throughput: polling couriers over HTTP and taking their pushes, against 100,000 parcels.

Loads 100,000 in-flight parcels (one minimal order each) into a shop of its own with COPY:
50,000 SF parcels polled through an SF account (route queries of 10 waybills), 10,000 more SF
parcels whose receivers each have their own phone (see SHARED_PHONE_TAIL), 20,000 ZTO parcels
polled through a Kuaidi100 account (one waybill per request), and 20,000 YTO parcels on the
same Kuaidi100 account that receive pushes. While it runs, the benchmark points SF, ZTO and
YTO at accounts of its own (given back at the end). The courier is the sandbox
(``couriers.sandbox``), started in this process on a free port, over real HTTP, without faults
or latency and on a real-time clock, so parcels do not move on their own during the run.

Every phase runs ``CONCURRENCY`` worker processes (``PUSH_CONNECTIONS`` for pushes; see
``_worker.py``: a Celery worker is a process too, and separate processes keep the clients off the
sandbox's and the web server's GIL), all started before a common signal; a phase's rate is its
count over the time from that signal to the last worker's end.

- ``updates_per_s``: each worker loops ``parcels_claim_due`` → ``parcels_poll`` (HTTP query,
  scans applied in bulk, next poll set) for the SF parcels, as a Celery poll task does, until
  none is due or the time budget passes; it counts the parcels that got their scans stored.
  ``updates_per_s_single`` does the same for the Kuaidi100 parcels.
- ``limit_db_per_s``: PostgreSQL's rate for the rows those polls changed, written back as one
  ``UPDATE ... FROM (VALUES ...)`` per batch of ``SF_BATCH`` rows, committed each, from bare
  psycopg connections.
- ``limit_sandbox_per_s``: the sandbox's rate for the same SF route queries (same waybills,
  grouped as ``SfAdapter`` groups them), signed and sent by bare httpx clients.
- ``push_per_s``: signed Kuaidi100 tracking pushes posted to ``/couriers/push/<id>/`` on
  gunicorn (``WEB_WORKERS`` processes, as production runs the app), counted from the first post
  until a real Celery worker's drain has applied the last one (the endpoint answers once a push
  is verified and stored); each answer must be the Kuaidi100 ack, and each pushed parcel must
  end up with its two events. ``push_ratio_to_trivial_view`` compares it with a Django view that
  only answers "ok" on the same server (``_tracking_urls.py`` via ``_wsgi.py``, for this
  benchmark only); both are ordinary Django views behind the same middleware. Both are posted
  on kept-alive connections by a minimal client (``_rawhttp.RawHttp``).

Parcels of other benchmarks stay out of the way without being touched: this benchmark's parcels
are due at instants in the year 2000 and claims pass the end of the phase's window as ``now``,
so nothing else is ever due for them (the claim query and its index scan are unchanged). Each
run resets the parcels (stage, timestamps, due times), deletes their events and pushes, and
vacuums, so re-runs measure the same thing. Set ``BENCH_TRACKING_PROFILE=wall`` (or ``=cpu``) to
run the first worker of each phase under cProfile, timing the wall clock (or CPU time); the
profiles go to ``var/bench/tracking-<phase>.prof`` and their top lines are printed.
"""

import gc
import itertools
import json
import multiprocessing
import os
import pstats
import random
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Q
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from couriers import signing
from couriers.adapters.common import SHANGHAI, compact_json, format_local_time
from couriers.adapters.kuaidi100 import ACK_BODY as KUAIDI100_ACK
from couriers.adapters.sf import QUERY_BATCH_SIZE as SF_BATCH
from couriers.adapters.sf import SEARCH_ROUTES
from couriers.models import Courier, CourierAccount
from couriers.sandbox import SANDBOX_ACCOUNTS, SandboxServer, sandbox_account
from couriers.stages import ParcelStage
from intercepts.demo import CITIES, NAMES, demo_waybill
from intercepts.models import CourierPush, Order, Parcel, TrackingEvent
from intercepts.tracking.polling import parcels_claim_due, parcels_poll, poll_chunk_size
from intercepts.tracking.pushes import flag_lower
from shops.models import Shop
from tests.benchmarks import _worker, at_least, equals
from tests.benchmarks._rawhttp import RawHttp
from tests.benchmarks._servers import celery_worker, web_server

LIMITS = {
    "updates_per_s": at_least(2000),
    "ratio_to_limit": at_least(0.45),
    "push_per_s": at_least(400),
    # A rate means nothing if the work failed: every poll and every push must have gone through.
    "poll_failures": equals(0),
    "pushes_all_applied": equals(True),
}

# Two per core, as a Celery worker would be configured here. The cores are the limit: 2, 4 and 8
# polling workers came within 10 % of each other, 1 worker reached half of that.
CONCURRENCY = 4
# Gateways push over many connections at once. With four, each push waiting for its commit to
# reach the disk, the server left a core idle: eight keep both busy (826 - 934 pushes/s against
# 613 on the same machine minutes apart).
PUSH_CONNECTIONS = 8
# gunicorn for the push phase: a process per core, and threads so that one connection waiting
# on the database does not hold up the others (1 thread: about half the rate of the trivial view).
WEB_WORKERS = 2
WEB_THREADS = 4
SF_BUDGET_S = 60.0
SF_PHONES_BUDGET_S = 20.0
SINGLE_BUDGET_S = 30.0
LIMIT_BUDGET_S = 20.0
PUSH_BUDGET_S = 15.0
TRIVIAL_BUDGET_S = 10.0

SHOP_CODE = "bench-tracking"
SEED = 20261123
# (group, courier code, parcels): loaded in this order, so each group is one range of ids.
GROUPS = (
    ("sf", "SF", 50_000),
    ("sf_phones", "SF", 10_000),
    ("single", "ZTO", 20_000),
    # Enough pushes to fill PUSH_BUDGET_S at well over 1,000 a second (more than the limit asks):
    # the drain's last batch after the final post is then a small part of the phase.
    ("push", "YTO", 20_000),
)
TOTAL_PARCELS = sum(count for _group, _code, count in GROUPS)
# SfAdapter sends one checkPhoneNo per route query, so it can only put waybills whose receivers'
# phones end in the same four digits into one request. The "sf" group's receivers all share
# them, so its polls really send 10 waybills a request (the batched figure asked for); the
# "sf_phones" group has receivers as they come, one phone each, to show what that costs.
SHARED_PHONE_TAIL = "6688"
# Waybill serials start far above the changelist benchmark's and the demo's.
WAYBILL_BASE = 300_000_000
START_STAGE = ParcelStage.PICKED_UP
# Each group is due in its own day of 2000, one parcel a second; a phase claims with the end of
# its day as ``now``. Leases end five minutes after that, still before the next group's day.
DUE_AT = datetime(2000, 1, 1, tzinfo=UTC)
GROUP_DAY = {"sf": 0, "sf_phones": 2, "single": 4, "push": 6}
PARK_BEFORE = DUE_AT + timedelta(days=30)
# The gateway accounts this benchmark points its couriers at while it runs.
ACCOUNTS = {
    "sf": ("bench·顺丰", ("SF",), SF_BATCH),
    "kuaidi100": ("bench·快递100", ("ZTO", "YTO"), 1),
}
# High enough that the shared token bucket never waits (the column is a smallint: 32767 at most);
# the Redis round trip per request is still made, as in production.
REQUESTS_PER_SECOND = 30_000

PROFILE = os.environ.get("BENCH_TRACKING_PROFILE", "").strip().lower()
PROFILE = "" if PROFILE == "0" else PROFILE  # "wall", "cpu", or off
OUT_DIR = Path(__file__).resolve().parents[2] / "var" / "bench"


# --- Loading and resetting ------------------------------------------------------------------


def _serial(index: int) -> int:
    """The index-th waybill serial, skipping those ending in 0.

    The sandbox picks a parcel's stage by the last digit: 1-9 are picked up ... returning, all
    with scans in every protocol; 0 is a bare label, which SF reports nothing about.
    """
    return WAYBILL_BASE + (index // 9) * 10 + index % 9 + 1


def _ts(value: datetime | None) -> str:
    return r"\N" if value is None else value.isoformat()


def _columns(model, names: str) -> str:
    return ", ".join(model._meta.get_field(name).column for name in names.split())


ORDER_COLUMNS = "id shop order_no status buyer_name buyer_phone total_fen paid_at created_at"
PARCEL_COLUMNS = (
    "id shop order courier waybill_no declared_value_fen receiver_name receiver_phone "
    "receiver_address stage shipped_at picked_up_at signed_at next_poll_at poll_failures "
    "created_at updated_at"
)


def _next_id(cursor, model) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {model._meta.db_table}")
    return cursor.fetchone()[0]


def _wipe(shop: Shop) -> None:
    """Delete the shop's orders, parcels and events (the shop is this benchmark's own)."""
    parcels = f"SELECT id FROM {Parcel._meta.db_table} WHERE shop_id = %s"
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (TrackingEvent._meta.db_table, Parcel.lines.through._meta.db_table):
            cursor.execute(f"DELETE FROM {table} WHERE parcel_id IN ({parcels})", [shop.pk])
        for model in (Parcel, Order):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE shop_id = %s", [shop.pk])


def _load(shop: Shop, couriers: dict[str, Courier]) -> float:
    """COPY the orders and parcels unless they are there as GROUPS says; returns the seconds."""
    if _ranges(shop, couriers) is not None:
        return 0.0
    started = time.perf_counter()
    _wipe(shop)  # nothing, or the parcels of a run with other groups
    print(f"Loading {TOTAL_PARCELS:,} in-flight parcels with their orders ...", flush=True)
    rng = random.Random(SEED)
    now = timezone.now().astimezone(UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        # Nobody else writes the benchmark database; the lock only guards the explicit ids.
        for model in (Order, Parcel):
            cursor.execute(f"LOCK TABLE {model._meta.db_table} IN EXCLUSIVE MODE")
        order_id, parcel_id = _next_id(cursor, Order), _next_id(cursor, Parcel)
        orders, parcels = [], []
        index = 0
        for group, code, count in GROUPS:
            courier = couriers[code]
            for rank in range(count):
                buyer = NAMES[int(rng.random() * len(NAMES))]
                phone = f"1{'3589'[int(rng.random() * 4)]}{int(rng.random() * 1e9):09d}"
                if group == "sf":
                    phone = phone[:-4] + SHARED_PHONE_TAIL
                shipped = now - timedelta(hours=20, seconds=rng.uniform(0, 7200))
                paid = _ts(shipped - timedelta(hours=2))
                orders.append(
                    f"{order_id}\t{shop.pk}\t9{index:011d}\tshipped\t{buyer}\t{phone}\t"
                    f"12900\t{paid}\t{paid}\n"
                )
                due = DUE_AT + timedelta(days=GROUP_DAY[group], seconds=rank)
                city = CITIES[int(rng.random() * len(CITIES))]
                parcels.append(
                    f"{parcel_id}\t{shop.pk}\t{order_id}\t{courier.pk}\t"
                    f"{demo_waybill(courier, _serial(index))}\t12900\t{buyer}\t{phone}\t"
                    f"{city}幸福路{1 + int(rng.random() * 999)}号\t{START_STAGE}\t{_ts(shipped)}\t"
                    f"{_ts(shipped + timedelta(hours=3))}\t\\N\t{_ts(due)}\t0\t"
                    f"{_ts(shipped)}\t{_ts(shipped)}\n"
                )
                order_id += 1
                parcel_id += 1
                index += 1
        for model, columns, rows in (
            (Order, ORDER_COLUMNS, orders),
            (Parcel, PARCEL_COLUMNS, parcels),
        ):
            table = model._meta.db_table
            with cursor.copy(f"COPY {table} ({_columns(model, columns)}) FROM STDIN") as copy:
                for start in range(0, len(rows), 10_000):
                    copy.write("".join(rows[start : start + 10_000]))
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                [table, (order_id if model is Order else parcel_id) - 1],
            )
    for courier in couriers.values():
        sample = Parcel.objects.filter(shop=shop, courier=courier).values_list(
            "waybill_no", flat=True
        )[:1]
        assert all(courier.waybill_matches(number) for number in sample), courier.code
    elapsed = time.perf_counter() - started
    print(f"  copied in {elapsed:.1f} s", flush=True)
    return elapsed


def _ranges(shop: Shop, couriers: dict[str, Courier]) -> dict[str, tuple[int, int]] | None:
    """Each group's first and last parcel id (the groups were loaded in order, one id after
    another), or None if the shop's parcels are not laid out as GROUPS says."""
    parcels = Parcel.objects.filter(shop=shop)
    first = parcels.order_by("pk").values_list("pk", flat=True).first()
    if first is None or parcels.count() != TOTAL_PARCELS:
        return None
    ranges = {}
    for group, code, count in GROUPS:
        ranges[group] = (first, first + count - 1)
        in_group = parcels.filter(courier=couriers[code], pk__range=ranges[group])
        if group == "sf":
            in_group = in_group.filter(receiver_phone__endswith=SHARED_PHONE_TAIL)
        if in_group.count() != count:
            return None
        first += count
    return ranges


def _vacuum(*models) -> None:
    # As autovacuum would after a bulk change: the dead rows of the previous run or phase are
    # cleaned and statistics are fresh, so every run starts from the same table state.
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")


def _checkpoint() -> None:
    """Write back what earlier phases left dirty, so a phase does not pay for its predecessor's
    writes (a phase of pushes after a phase of polls would otherwise commit while the
    checkpointer writes the polls' pages). Needs a superuser or ``pg_checkpoint``; skipped
    without."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as exc:
        print(f"  (no CHECKPOINT before the phase: {exc})", flush=True)


def _reset(ranges: dict[str, tuple[int, int]], push_account: CourierAccount) -> float:
    """Put this benchmark's parcels back as loaded: no events, first stage, due again."""
    started = time.perf_counter()
    low, high = min(r[0] for r in ranges.values()), max(r[1] for r in ranges.values())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {TrackingEvent._meta.db_table} WHERE parcel_id BETWEEN %s AND %s",
            [low, high],
        )
        for group, (first, last) in ranges.items():
            _restore(cursor, first, last, DUE_AT + timedelta(days=GROUP_DAY[group]), first)
    CourierPush.objects.filter(account=push_account).delete()
    _vacuum(Parcel, TrackingEvent, CourierPush)
    return time.perf_counter() - started


def _restore(cursor, first: int, last: int, due_from: datetime | None, due_base: int) -> None:
    """The loaded state of parcels ``first``..``last``; due one a second from ``due_from``."""
    due = "NULL" if due_from is None else "%s + (id - %s) * interval '1 second'"
    cursor.execute(
        f"UPDATE {Parcel._meta.db_table} SET stage = %s, picked_up_at = shipped_at + "
        f"interval '3 hours', signed_at = NULL, poll_failures = 0, poll_leased_until = NULL, "
        f"updated_at = created_at, "
        f"next_poll_at = {due} WHERE id BETWEEN %s AND %s",
        [START_STAGE, *([] if due_from is None else [due_from, due_base]), first, last],
    )


def _park_still_due(first: int, last: int) -> None:
    """Take a phase's leftovers (not reached within its budget) out of the next phase's day."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Parcel._meta.db_table} SET next_poll_at = NULL "
            "WHERE id BETWEEN %s AND %s AND next_poll_at < %s",
            [first, last, PARK_BEFORE],
        )


def _updated(first: int, last: int, source: str) -> int:
    """Parcels in the range that got scans stored by ``source`` (events were cleared at reset)."""
    return (
        TrackingEvent.objects.filter(parcel__id__range=(first, last), source=source)
        .values("parcel_id")
        .distinct()
        .count()
    )


# --- The courier accounts ---------------------------------------------------------------------


def _point_couriers(sandbox_url: str, previous: dict[str, int | None]) -> dict:
    """Create (or update) the benchmark's accounts on the sandbox and point the couriers at
    them; ``previous`` gets the accounts the couriers had, to give back at the end."""
    accounts = {}
    for protocol, (name, codes, batch_size) in ACCOUNTS.items():
        config = sandbox_account(protocol, sandbox_url)
        account, _created = CourierAccount.objects.update_or_create(
            name=name,
            defaults={
                "protocol": protocol,
                "base_url": config.base_url,
                "requests_per_second": REQUESTS_PER_SECOND,
                "batch_size": batch_size,
                "is_active": True,
                **SANDBOX_ACCOUNTS[protocol],
            },
        )
        accounts[protocol] = account
        for code, account_id in Courier.objects.filter(code__in=codes).values_list(
            "code", "account_id"
        ):
            previous.setdefault(code, account_id)
        Courier.objects.filter(code__in=codes).update(account=account)
    return accounts


def _restore_couriers(previous: dict[str, int | None]) -> None:
    for code, account_id in previous.items():
        Courier.objects.filter(code=code).update(account_id=account_id)


class _CountingSandbox(SandboxServer):
    """The sandbox, counting gateway requests per protocol (its own log keeps only 1,000)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.request_counts: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def record_request(self, protocol: str, operation: str, form: dict[str, str]) -> None:
        super().record_request(protocol, operation, form)
        with self._count_lock:
            self.request_counts[protocol] += 1


# --- Worker processes -------------------------------------------------------------------------


def _run_workers(job: str, shares: list, options: dict, *, phase: str) -> dict:
    """Run ``job`` in one spawned process per share; returns the summed figures and seconds."""
    _checkpoint()
    context = multiprocessing.get_context("spawn")  # no fork of a process running threads
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    if PROFILE:
        options = {
            **options,
            "profile_path": str(OUT_DIR / f"tracking-{phase}.prof"),
            "profile_timer": PROFILE,
        }
    processes = [
        context.Process(
            target=_worker.main,
            args=(f"{__name__}:{job}", index, share, options, ready, go, results),
            name=f"bench-{phase}-{index}",
            daemon=True,
        )
        for index, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    finished = False
    try:
        for _ in processes:
            index, error = _worker.receive(ready, processes, timeout=300)
            if error:
                raise RuntimeError(f"{phase} worker {index} failed to start:\n{error}")
        machine, own = _machine_cpu_s(), _own_cpu_s()
        go.set()
        reports = [
            _worker.receive(results, processes, timeout=options["budget_s"] + 300)
            for _ in processes
        ]
        machine, own = _machine_cpu_s() - machine, _own_cpu_s() - own
        finished = True
    finally:
        for process in processes:
            if finished:
                process.join(timeout=60)
            if process.is_alive():
                process.terminate()
            process.join()
    errors = [report["error"] for report in reports if "error" in report]
    if errors:
        raise RuntimeError(f"{phase} worker failed:\n{errors[0]}")
    totals: dict = {}
    for report in reports:
        for key, value in report.items():
            if key in ("index", "started", "finished"):
                continue
            if isinstance(value, str):  # a note, such as the first wrong answer: keep one
                totals[key] = totals.get(key) or value
            else:
                totals[key] = totals.get(key, 0) + value
    started_at = min(r["started"] for r in reports)
    finished_at = max(r["finished"] for r in reports)
    seconds = finished_at - started_at
    # Where the two cores went: the workers, this process (the sandbox or the web server), and
    # the rest (PostgreSQL, Redis, the kernel), as shares of the CPU time the window offered.
    offered = seconds * (os.cpu_count() or 1) / 100
    totals["cpu_workers_pct"] = round(totals.pop("cpu_s") / offered, 1)
    totals["cpu_this_process_pct"] = round(own / offered, 1)
    totals["cpu_rest_pct"] = round((machine - own) / offered - totals["cpu_workers_pct"], 1)
    if PROFILE:
        print(f"\n-- {phase}: worker 0 under cProfile, by cumulative time --")
        pstats.Stats(options["profile_path"]).sort_stats("cumulative").print_stats(30)
    return {**totals, "seconds": seconds, "started_at": started_at, "finished_at": finished_at}


def _machine_cpu_s() -> float:
    """CPU seconds all cores spent busy since boot, from /proc/stat: user, nice, system, irq,
    softirq and steal (guest time is already counted in user and nice)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _spread(items: list, parts: int) -> list[list]:
    """Deal ``items`` round-robin, so concurrent workers work on neighbouring rows as pollers do."""
    return [items[index::parts] for index in range(parts)]


# Jobs: each runs in a worker process (see _worker.py); it prepares, then returns run(deadline).


def poll_job(_share, options: dict):
    """Loop claim → poll as the poll tasks do, a task's worth at a time (``poll_chunk_size``
    of the group's gateway account), until nothing is due or the deadline passes."""
    connection.ensure_connection()

    def run(deadline: float) -> dict:
        polled = failed = claims = 0
        while time.monotonic() < deadline:
            claimed = parcels_claim_due(limit=options["chunk"], now=options["now"])
            if not claimed:
                break
            claims += 1
            for courier_id, parcel_ids in claimed.items():
                result = parcels_poll(courier_id=courier_id, parcel_ids=parcel_ids)
                polled += result["polled"]
                failed += result["failed"]
        return {"polled": polled, "failed": failed, "claims": claims}

    return run


def sf_routes_job(share: list[tuple[list[str], str]], options: dict):
    """SF route queries from a bare client, built and signed as ``SfAdapter`` builds them."""
    client = httpx.Client(timeout=10)
    partner, check_word = options["partner_id"], options["check_word"]

    def run(deadline: float) -> dict:
        waybills = requests = 0
        try:
            for numbers, phone_tail in share:
                if time.monotonic() >= deadline:
                    break
                fields = {
                    "language": "zh-CN",
                    "trackingType": "1",
                    "trackingNumber": numbers,
                    "methodType": "1",
                    "checkPhoneNo": phone_tail,
                }
                msg_data = compact_json(fields)
                timestamp = str(int(time.time() * 1000))
                response = client.post(
                    options["url"],
                    data={
                        "partnerID": partner,
                        "requestID": uuid.uuid4().hex,
                        "serviceCode": SEARCH_ROUTES,
                        "timestamp": timestamp,
                        "msgDigest": signing.sf_msg_digest(msg_data, timestamp, check_word),
                        "msgData": msg_data,
                    },
                )
                answer = response.json()
                assert answer["apiResultCode"] == "A1000", answer
                result = json.loads(answer["apiResultData"])
                assert result["success"], result
                requests += 1
                waybills += sum(1 for item in result["msgData"]["routeResps"] if item["routes"])
        finally:
            client.close()
        return {"waybills": waybills, "requests": requests}

    return run


UPDATE_COLUMNS = "stage picked_up_at signed_at next_poll_at poll_failures"


def db_updates_job(share: list[list[tuple]], options: dict):
    """The polls' parcel changes as one UPDATE ... FROM (VALUES ...) per batch, each committed.

    A bare psycopg connection with its defaults (parameters bound by the server, the statement
    prepared after a few runs): the cheapest way to send these rows, as a floor should be.
    """
    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    table = Parcel._meta.db_table
    row = "(%s::bigint, %s::varchar, %s::timestamptz, %s::timestamptz, %s::timestamptz, %s::int)"
    assignments = ", ".join(f"{name} = v.{name}" for name in UPDATE_COLUMNS.split())

    def sql(rows: int) -> str:
        return (
            f"UPDATE {table} AS p SET {assignments}, updated_at = %s "
            f"FROM (VALUES {', '.join([row] * rows)}) "
            f"AS v(id, {', '.join(UPDATE_COLUMNS.split())}) WHERE p.id = v.id"
        )

    statements = {len(batch): sql(len(batch)) for batch in share}

    def run(deadline: float) -> dict:
        updated = statements_run = 0
        try:
            for batch in share:
                if time.monotonic() >= deadline:
                    break
                params = [datetime.now(UTC)] + [value for values in batch for value in values]
                updated += conn.execute(statements[len(batch)], params).rowcount
                statements_run += 1
        finally:
            conn.close()
        return {"rows": updated, "statements": statements_run}

    return run


def post_job(share: list[dict[str, str]], options: dict):
    """POST each prepared form once (or, with ``repeat``, the first one again and again until the
    deadline), checking that every answer is ``expect``; see ``_rawhttp.RawHttp`` for the client."""
    content_type = b"application/x-www-form-urlencoded"
    bodies = [urlencode(form).encode() for form in share]
    client = RawHttp(options["host"], options["port"])
    # Connected and answered once before the clock starts.
    client.request("POST", options["warmup_path"], bodies[0], content_type=content_type)
    expect = options["expect"].encode()

    def run(deadline: float) -> dict:
        answered = wrong = 0
        first_wrong = ""
        path = options["path"]
        try:
            for body in itertools.cycle(bodies[:1]) if options.get("repeat") else bodies:
                if time.monotonic() >= deadline:
                    break
                status, _headers, text = client.request(
                    "POST", path, body, content_type=content_type
                )
                if status == 200 and text == expect:
                    answered += 1
                else:
                    wrong += 1
                    first_wrong = first_wrong or f"{status} {text[:200]!r}"
        finally:
            client.close()
        return {"answered": answered, "wrong": wrong, "first_wrong": first_wrong}

    return run


# --- Phases -----------------------------------------------------------------------------------


def _poll_phase(group: str, first: int, last: int, budget_s: float, sandbox) -> dict:
    """Poll one group with CONCURRENCY workers; counts the parcels that got their scans."""
    now = DUE_AT + timedelta(days=GROUP_DAY[group] + 1)  # the end of the group's day
    requests_before = sum(sandbox.request_counts.values())
    courier = Parcel.objects.select_related("courier__account").get(pk=first).courier
    chunk = poll_chunk_size(courier.account)
    result = _run_workers(
        "poll_job",
        [None] * CONCURRENCY,
        {"now": now, "budget_s": budget_s, "chunk": chunk},
        phase=group,
    )
    _park_still_due(first, last)
    updated = _updated(first, last, "poll")
    return {
        **result,
        "chunk": chunk,
        "updated": updated,
        "requests": sum(sandbox.request_counts.values()) - requests_before,
    }


def _db_limit_phase(first: int, last: int) -> dict:
    """Write back what the SF polls wrote, from the loaded state again."""
    names = ["id", *UPDATE_COLUMNS.split()]
    rows = list(
        Parcel.objects.filter(pk__range=(first, last), tracking_events__isnull=False)
        .distinct()
        .order_by("pk")
        .values_list(*names)
    )
    with connection.cursor() as cursor:
        _restore(cursor, first, last, None, first)
    _vacuum(Parcel)  # the polls found a vacuumed table too
    batches = [rows[start : start + SF_BATCH] for start in range(0, len(rows), SF_BATCH)]
    result = _run_workers(
        "db_updates_job",
        _spread(batches, CONCURRENCY),
        {"budget_s": LIMIT_BUDGET_S},
        phase="db-limit",
    )
    return result


def _sandbox_limit_phase(first: int, last: int, sandbox_url: str) -> dict:
    """The SF polls' route queries again, grouped by phone tail within each batch as the adapter
    does (one checkPhoneNo per request), from bare clients."""
    parcels = list(
        Parcel.objects.filter(pk__range=(first, last))
        .order_by("pk")
        .values_list("waybill_no", "receiver_phone")
    )
    requests = []
    for start in range(0, len(parcels), SF_BATCH):
        batch = sorted(parcels[start : start + SF_BATCH], key=lambda item: item[1][-4:])
        for tail, group in groupby(batch, key=lambda item: item[1][-4:]):
            requests.append(([number for number, _phone in group], tail))
    account = SANDBOX_ACCOUNTS["sf"]
    options = {
        "url": sandbox_account("sf", sandbox_url).base_url + "/std/service",
        "partner_id": account["partner_id"],
        "check_word": account["check_word"],
        "budget_s": LIMIT_BUDGET_S,
    }
    return _run_workers(
        "sf_routes_job", _spread(requests, CONCURRENCY), options, phase="sandbox-limit"
    )


def _push_forms(waybills: list[str], salt: str) -> list[dict[str, str]]:
    """Kuaidi100 tracking pushes (picked up, then in transit) signed with the account's salt."""
    now = datetime.now(SHANGHAI)
    picked, moved = format_local_time(now - timedelta(hours=6)), format_local_time(now)
    forms = []
    for number in waybills:
        param = compact_json(
            {
                "status": "polling",
                "billstatus": "polling",
                "message": "",
                "lastResult": {
                    "message": "ok",
                    "nu": number,
                    "com": "yuantong",
                    "state": "1002",
                    "data": [
                        {
                            "time": moved,
                            "ftime": moved,
                            "context": "快件已从【杭州转运中心】发出，正发往【上海转运中心】",
                            "location": "杭州",
                            "statusCode": "1002",
                        },
                        {
                            "time": picked,
                            "ftime": picked,
                            "context": "【杭州】快递员已揽收",
                            "location": "杭州",
                            "statusCode": "103",
                        },
                    ],
                },
            }
        )
        forms.append({"param": param, "sign": signing.kuaidi100_push_sign(param, salt)})
    return forms


def _push_phase(first: int, last: int, account: CourierAccount) -> dict:
    waybills = list(
        Parcel.objects.filter(pk__range=(first, last))
        .order_by("pk")
        .values_list("waybill_no", flat=True)
    )
    forms = _push_forms(waybills, account.salt)
    push_url_path = reverse("courier-push", args=[account.pk])
    with override_settings(ROOT_URLCONF="tests.benchmarks._tracking_urls"):
        trivial_path = reverse("bench-trivial")
    flag_lower()
    with (
        web_server("tests.benchmarks._wsgi:application", WEB_WORKERS, WEB_THREADS) as address,
        celery_worker(queues=("celery",)),
    ):
        push = _run_workers(
            "post_job",
            _spread(forms, PUSH_CONNECTIONS),
            {
                **address,
                "path": push_url_path,
                "warmup_path": trivial_path,
                "expect": KUAIDI100_ACK,
                "budget_s": PUSH_BUDGET_S,
            },
            phase="push",
        )
        # Acknowledged is not yet applied: the clock runs until the drain has applied them all.
        deadline = time.monotonic() + 120
        received = CourierPush.objects.filter(account=account, status=CourierPush.Status.RECEIVED)
        while received.exists():
            assert time.monotonic() < deadline, "pushes still waiting to be applied after 2 min"
            time.sleep(0.02)
        push["drain_tail_s"] = max(0.0, time.monotonic() - push["finished_at"])
        push["seconds"] += push["drain_tail_s"]
        # The same form body to a view that does nothing, as often as the budget allows.
        trivial = _run_workers(
            "post_job",
            [forms[:1]] * PUSH_CONNECTIONS,
            {
                **address,
                "path": trivial_path,
                "warmup_path": trivial_path,
                "expect": "ok",
                "repeat": True,
                "budget_s": TRIVIAL_BUDGET_S,
            },
            phase="trivial",
        )
    # Every acknowledged push must have been applied: both its events stored, the stage moved,
    # and the raw push kept as accepted.
    applied = Parcel.objects.filter(pk__range=(first, last), stage=ParcelStage.IN_TRANSIT).annotate(
        events=Count("tracking_events", filter=Q(tracking_events__source="kuaidi100"))
    )
    return {
        "push": push,
        "trivial": trivial,
        "applied": applied.filter(events=2).count(),
        "accepted": CourierPush.objects.filter(
            account=account, status=CourierPush.Status.ACCEPTED
        ).count(),
    }


# --- The benchmark ----------------------------------------------------------------------------


def _polling(ranges: dict, couriers: dict[str, Courier], previous: dict) -> dict:
    """The polling phases and their floors, with the sandbox running; returns their results."""
    sandbox = _CountingSandbox(
        speed=1.0,
        # The clock thread walks every known parcel each tick under the world lock; with
        # 90,000 parcels that would take most of a core. At real-time speed nothing is due to
        # move for hours, and a query brings its parcel up to date by itself.
        tick_s=3600.0,
    )
    sandbox_url = sandbox.start()
    try:
        accounts = _point_couriers(sandbox_url, previous)
        results: dict = {"accounts": accounts}
        results["reset_seconds"] = _reset(ranges, accounts["kuaidi100"])
        # The courier knows its parcels before it is asked (a real one scanned them), so
        # neither the polls nor the bare clients pay for the sandbox creating them.
        started = time.perf_counter()
        for group, protocol, courier_code in (
            ("sf", "", ""),
            ("sf_phones", "", ""),
            ("single", "kuaidi100", couriers["ZTO"].kuaidi100_code),
        ):
            for number in Parcel.objects.filter(pk__range=ranges[group]).values_list(
                "waybill_no", flat=True
            ):
                sandbox.world.parcel(number, protocol=protocol, courier_code=courier_code)
        results["seed_seconds"] = time.perf_counter() - started

        print("Polling SF ...", flush=True)
        results["sf"] = _poll_phase("sf", *ranges["sf"], SF_BUDGET_S, sandbox)
        print("PostgreSQL floor ...", flush=True)
        results["db"] = _db_limit_phase(*ranges["sf"])
        print("Sandbox floor ...", flush=True)
        results["raw"] = _sandbox_limit_phase(*ranges["sf"], sandbox_url)
        print("Polling SF, receivers with phones of their own ...", flush=True)
        results["sf_phones"] = _poll_phase(
            "sf_phones", *ranges["sf_phones"], SF_PHONES_BUDGET_S, sandbox
        )
        print("Polling Kuaidi100 ...", flush=True)
        results["single"] = _poll_phase("single", *ranges["single"], SINGLE_BUDGET_S, sandbox)
        return results
    finally:
        sandbox.stop()


def run() -> dict:
    couriers = {courier.code: courier for courier in Courier.objects.all()}
    shop, _created = Shop.objects.get_or_create(
        code=SHOP_CODE, defaults={"name": "基准·物流跟踪", "return_contact": "售后仓"}
    )
    load_seconds = _load(shop, couriers)
    ranges = _ranges(shop, couriers)
    assert ranges is not None, "the parcels just loaded are not laid out as GROUPS says"
    previous: dict[str, int | None] = {}
    try:
        polls = _polling(ranges, couriers, previous)
        # The sandbox's 90,000 simulated parcels are gone with it; collect them now.
        gc.collect()
        print("Pushes ...", flush=True)
        pushes = _push_phase(*ranges["push"], polls["accounts"]["kuaidi100"])
    finally:
        _restore_couriers(previous)
    sf, db, raw = polls["sf"], polls["db"], polls["raw"]
    sf_phones, single = polls["sf_phones"], polls["single"]
    reset_seconds, seed_seconds = polls["reset_seconds"], polls["seed_seconds"]

    updates_per_s = sf["updated"] / sf["seconds"]
    limit_sandbox = raw["waybills"] / raw["seconds"]
    limit_db = db["rows"] / db["seconds"]
    push, trivial = pushes["push"], pushes["trivial"]
    push_per_s = push["answered"] / push["seconds"]
    trivial_per_s = trivial["answered"] / trivial["seconds"]
    figures = {
        "updates_per_s": round(updates_per_s, 1),
        "updates_per_s_single": round(single["updated"] / single["seconds"], 1),
        "limit_sandbox_per_s": round(limit_sandbox, 1),
        "limit_db_per_s": round(limit_db, 1),
        "ratio_to_limit": round(updates_per_s / min(limit_sandbox, limit_db), 3),
        "push_per_s": round(push_per_s, 1),
        "push_ratio_to_trivial_view": round(push_per_s / trivial_per_s, 3),
        "updates_per_s_sf_own_phones": round(sf_phones["updated"] / sf_phones["seconds"], 1),
        "poll_failures": sf["failed"] + sf_phones["failed"] + single["failed"],
        "pushes_all_applied": (
            push["wrong"] == 0
            and pushes["applied"] == push["answered"]
            and pushes["accepted"] == push["answered"]
        ),
        # Details.
        "parcels": TOTAL_PARCELS,
        "concurrency": CONCURRENCY,
        "push_connections": PUSH_CONNECTIONS,
        "sf_batch_size": SF_BATCH,
        "sf_poll_chunk": polls["sf"]["chunk"],
        "single_poll_chunk": polls["single"]["chunk"],
        "sf_parcels_updated": sf["updated"],
        "sf_parcels_polled": sf["polled"],
        "sf_seconds": round(sf["seconds"], 2),
        "sf_requests": sf["requests"],
        "sf_waybills_per_request": round(sf["polled"] / max(sf["requests"], 1), 2),
        "sf_own_phones_parcels_updated": sf_phones["updated"],
        "sf_own_phones_waybills_per_request": round(
            sf_phones["polled"] / max(sf_phones["requests"], 1), 2
        ),
        "single_parcels_updated": single["updated"],
        "single_seconds": round(single["seconds"], 2),
        "single_requests": single["requests"],
        "limit_sandbox_requests_per_s": round(raw["requests"] / raw["seconds"], 1),
        "limit_sandbox_waybills": raw["waybills"],
        "limit_sandbox_seconds": round(raw["seconds"], 2),
        "limit_db_rows": db["rows"],
        "limit_db_statements_per_s": round(db["statements"] / db["seconds"], 1),
        "limit_db_seconds": round(db["seconds"], 2),
        "pushes": push["answered"],
        "pushes_wrong": push["wrong"],
        "push_first_wrong": push["first_wrong"],
        "pushes_applied": pushes["applied"],
        "push_seconds": round(push["seconds"], 2),
        "push_drain_tail_s": round(push["drain_tail_s"], 2),
        "trivial_view_per_s": round(trivial_per_s, 1),
        **{
            f"{name}_{key}": phase[key]
            for name, phase in (
                ("sf", sf),
                ("single", single),
                ("limit_db", db),
                ("limit_sandbox", raw),
                ("push", push),
                ("trivial", trivial),
            )
            for key in ("cpu_workers_pct", "cpu_this_process_pct", "cpu_rest_pct")
        },
        "load_seconds": round(load_seconds, 1),
        "reset_seconds": round(reset_seconds, 1),
        "sandbox_seed_seconds": round(seed_seconds, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    return figures
