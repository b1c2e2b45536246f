"""Shipments: a 100,000-row batch upload read and judged, and the overdue scan over 1,000,000
shipped orders, against the same scan written as plain SQL.

Upload (``upload_100k_s``): 100,000 paid orders of a shop of its own, each with its receiver and
one line, are loaded with COPY; a 100,000-row xlsx is written beforehand with openpyxl (kept in
``var/bench/`` and reused while its recipe is unchanged): mostly valid rows, and rows whose
waybill does not fit the courier (4009), of unknown orders, repeating an earlier row, and
waybills shared by a second receiver (flagged) or a third (refused). The figure is the wall time
of ``shipment_upload_create`` with Celery eager, so it stores the file and then runs the parse
task on commit: the file read, every row judged, the rows written, the upload at preview.
``upload_cpu_s`` is this process's CPU time in it (the database's is not counted), and
``upload_read_s`` the time reading the file's cells alone takes afterwards (calamine).

Scan (``scan_1m_s``): 1,000,000 orders shipped over the 20 days before a fixed instant, each with
its parcel and shipment, loaded with COPY into a second shop of its own: parcels shipped in the
last three days are mostly still on their way, older ones mostly delivered, and a few in every
age are stalled, so a minority is past 6 and past 10 days with no final stage. The figure is
``shipment_checks.shipments_scan_overdue`` at that instant: anomalies, their history rows, the
held settlements and postponed receipt confirmations written. ``scan_ratio_to_raw_sql`` is its
time over the same writes done by one SQL statement per kind (INSERT ... SELECT of the
anomalies, of their history rows and UPDATE of the orders, chained by RETURNING) run in the same
run on the same data:
before each run the flags are deleted, the tables vacuumed and the scanned tables read once, so
both start alike. The SQL lives here only, as the yardstick.
"""

import cProfile
import io
import os
import pstats
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.contrib.auth.models import User
from django.core.files import File
from django.db import connection, transaction
from django.db.models import F

from couriers.models import Courier
from couriers.stages import SHIPMENT_FINAL_STAGES, ParcelStage
from intercepts.demo import CITIES, NAMES, demo_waybill
from intercepts.models import (
    InterceptPolicy,
    InterceptRequest,
    Order,
    OrderLine,
    Parcel,
    Shipment,
    ShipmentAnomaly,
    ShipmentAnomalyEvent,
    ShipmentUpload,
)
from intercepts.services import shipment_checks
from intercepts.services.shipment_uploads import _read_rows, shipment_upload_create
from intercepts.services.shipping import receiver_key
from shops.models import Shop, ShopMembership
from tests.benchmarks import at_most, equals

LIMITS = {
    "upload_100k_s": at_most(15),
    "scan_1m_s": at_most(20),
    "scan_ratio_to_raw_sql": at_most(2),
    # A fast run means nothing unless both wrote the same flags.
    "scan_flags_match": equals(True),
}

OUT_DIR = Path(__file__).resolve().parents[2] / "var" / "bench"
PROFILE = os.environ.get("BENCH_SHIPMENTS_PROFILE", "").strip() not in ("", "0")
SEED = 20261208
# Everything happens at and before this instant, in the benchmark's own past.
NOW = datetime(2025, 7, 1, 4, tzinfo=UTC)

UPLOAD_SHOP = "bench-ship-upload"
UPLOAD_ROWS = 100_000
UPLOAD_ORDER_PREFIX = "BU"
# What the file's rows are, per 100: (kind, share).
UPLOAD_MIX = (
    ("valid", 86),
    ("mismatch", 3),  # the waybill does not fit the courier: 4009
    ("unknown", 3),  # no order of the shop has the number
    ("duplicate", 2),  # an earlier row again
    ("second", 4),  # an earlier row's waybill for another receiver: flagged
    ("third", 2),  # a waybill already carrying two receivers: refused
)
UPLOAD_FILE = OUT_DIR / f"shipments-upload-{UPLOAD_ROWS}-{SEED}.xlsx"

SCAN_SHOP = "bench-ship-scan"
SCAN_ORDERS = 1_000_000
SCAN_ORDER_PREFIX = "BS"
SCAN_DAYS = 20
SCAN_WAYBILL_BASE = 600_000_000
CHUNK_ROWS = 50_000
RUNS = 2


# --- Loading --------------------------------------------------------------------------------


def _ts(value: datetime | None) -> str:
    return r"\N" if value is None else value.isoformat()


def _shop(code: str, name: str) -> tuple[Shop, User]:
    shop, _created = Shop.objects.get_or_create(
        code=code, defaults={"name": name, "return_contact": "仓库"}
    )
    owner, _created = User.objects.get_or_create(username=f"{code}-owner")
    ShopMembership.objects.get_or_create(
        shop=shop, user=owner, defaults={"role": ShopMembership.Role.OWNER}
    )
    return shop, owner


def _copy(cursor, model, columns: str, rows) -> None:
    table = model._meta.db_table
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = []
        for row in rows:
            buffer.append(row)
            if len(buffer) == CHUNK_ROWS:
                copy.write("".join(buffer))
                buffer = []
        copy.write("".join(buffer))
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM " + table + "))",
        [table],
    )


def _next_id(cursor, model) -> int:
    cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {model._meta.db_table}")
    return cursor.fetchone()[0]


def _person(rng: random.Random) -> tuple[str, str, str]:
    name = NAMES[int(rng.random() * len(NAMES))]
    phone = f"1{'3589'[int(rng.random() * 4)]}{int(rng.random() * 1e9):09d}"
    address = f"{CITIES[int(rng.random() * len(CITIES))]}幸福路{1 + int(rng.random() * 9999)}号"
    return name, phone, address


def _vacuum(*models) -> None:
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")


ORDER_COLUMNS = (
    "id, shop_id, order_no, status, buyer_name, buyer_phone, total_fen, paid_at, "
    "receiver_name, receiver_phone, receiver_address, shipped_at, receipt_confirm_at, "
    "settlement_held_at, created_at"
)


def _load_upload_orders(shop: Shop) -> float:
    """The shop's 100,000 paid orders with one line each, unless a run left them."""
    if Order.objects.filter(shop=shop).count() == UPLOAD_ROWS:
        return 0.0
    started = time.perf_counter()
    print(f"Loading {UPLOAD_ROWS:,} paid orders to ship ...", flush=True)
    rng = random.Random(SEED)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {OrderLine._meta.db_table} WHERE order_id IN "
            f"(SELECT id FROM {Order._meta.db_table} WHERE shop_id = %s)",
            [shop.pk],
        )
        cursor.execute(f"DELETE FROM {Order._meta.db_table} WHERE shop_id = %s", [shop.pk])
        for model in (Order, OrderLine):
            cursor.execute(f"LOCK TABLE {model._meta.db_table} IN EXCLUSIVE MODE")
        first = _next_id(cursor, Order)
        orders, lines = [], []
        paid = _ts(NOW - timedelta(days=1))
        for index in range(UPLOAD_ROWS):
            name, phone, address = _person(rng)
            orders.append(
                f"{first + index}\t{shop.pk}\t{UPLOAD_ORDER_PREFIX}{index:010d}\tpaid\t{name}\t"
                f"{phone}\t12900\t{paid}\t{name}\t{phone}\t{address}\t\\N\t\\N\t\\N\t{paid}\n"
            )
            lines.append(f"{first + index}\t纯棉T恤\t\t12900\t1\n")
        _copy(cursor, Order, ORDER_COLUMNS, orders)
        _copy(
            cursor,
            OrderLine,
            "order_id, goods_name, category, unit_price_fen, quantity",
            lines,
        )
    _vacuum(Order, OrderLine)
    return time.perf_counter() - started


def _upload_rows(zto: Courier) -> list[tuple[str, str, str]]:
    """The file's rows, as a shop would type them."""
    rng = random.Random(SEED)
    kinds = [kind for kind, share in UPLOAD_MIX for _ in range(share)]
    names = (zto.code, zto.name_zh)
    rows: list[tuple[str, str, str]] = []
    valid: list[int] = []  # indexes of valid rows, whose waybill a second receiver may reuse
    seconds: list[int] = []  # waybills already carrying two receivers
    next_order = 0
    serial = 500_000_000
    for index in range(UPLOAD_ROWS):
        kind = kinds[int(rng.random() * len(kinds))] if index >= 100 else "valid"
        if (kind == "second" and not valid) or (kind == "third" and not seconds):
            kind = "valid"
        courier = names[index % 2]
        if kind in ("valid", "second", "third"):
            order_no = f"{UPLOAD_ORDER_PREFIX}{next_order:010d}"
            next_order += 1
        if kind == "valid":
            serial += 1
            rows.append((order_no, courier, demo_waybill(zto, serial)))
            valid.append(index)
        elif kind == "mismatch":
            rows.append(
                (f"{UPLOAD_ORDER_PREFIX}{rng.randrange(UPLOAD_ROWS):010d}", courier, f"ZT{index}")
            )
        elif kind == "unknown":
            rows.append((f"NO{index:010d}", courier, demo_waybill(zto, 900_000_000 + index)))
        elif kind == "duplicate":
            rows.append(rows[valid[int(rng.random() * len(valid))]])
        elif kind == "second":
            earlier = valid.pop(int(rng.random() * len(valid)))
            rows.append((order_no, courier, rows[earlier][2]))
            seconds.append(index)
        else:  # third
            earlier = seconds.pop(int(rng.random() * len(seconds)))
            rows.append((order_no, courier, rows[earlier][2]))
    return rows


def _upload_file(zto: Courier) -> Path:
    if UPLOAD_FILE.exists():
        return UPLOAD_FILE
    from openpyxl import Workbook

    print(f"Writing the {UPLOAD_ROWS:,}-row workbook ...", flush=True)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("发货")
    sheet.append(["订单号", "物流公司", "运单号"])
    for row in _upload_rows(zto):
        sheet.append(list(row))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    partial = UPLOAD_FILE.with_suffix(".partial")
    book.save(partial)
    partial.rename(UPLOAD_FILE)
    return UPLOAD_FILE


def _load_scan(shop: Shop, zto: Courier) -> float:
    """1,000,000 shipped orders with their parcels and shipments, unless a run left them."""
    if Shipment.objects.filter(shop=shop).count() == SCAN_ORDERS:
        return 0.0
    started = time.perf_counter()
    print(f"Loading {SCAN_ORDERS:,} shipped orders with parcels and shipments ...", flush=True)
    _wipe_scan(shop)
    rng = random.Random(SEED + 1)
    confirm = timedelta(days=InterceptPolicy.current().receipt_confirm_days)
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (Order, Parcel, Shipment):
            cursor.execute(f"LOCK TABLE {model._meta.db_table} IN EXCLUSIVE MODE")
        order_id, parcel_id = _next_id(cursor, Order), _next_id(cursor, Parcel)
        orders, parcels, shipments = [], [], []
        for index in range(SCAN_ORDERS):
            name, phone, address = _person(rng)
            age = timedelta(seconds=rng.uniform(0, SCAN_DAYS * 86400))
            shipped = NOW - age
            paid = shipped - timedelta(hours=rng.uniform(1, 30))
            # On the way in the first days; then nearly all reach a final stage.
            if age < timedelta(days=3):
                stage = ParcelStage.IN_TRANSIT if rng.random() < 0.7 else ParcelStage.DELIVERED
            elif rng.random() < 0.05:
                stage = ParcelStage.IN_TRANSIT
            else:
                stage = ParcelStage.DELIVERED
            signed = shipped + timedelta(days=2) if stage == ParcelStage.DELIVERED else None
            oid, pid = order_id + index, parcel_id + index
            orders.append(
                f"{oid}\t{shop.pk}\t{SCAN_ORDER_PREFIX}{index:010d}\tshipped\t{name}\t{phone}\t"
                f"12900\t{_ts(paid)}\t{name}\t{phone}\t{address}\t{_ts(shipped)}\t"
                f"{_ts(shipped + confirm)}\t\\N\t{_ts(paid)}\n"
            )
            parcels.append(
                f"{pid}\t{shop.pk}\t{oid}\t{zto.pk}\t"
                f"{demo_waybill(zto, SCAN_WAYBILL_BASE + index)}\t12900\t{name}\t{phone}\t"
                f"{address}\t{stage}\t{_ts(shipped)}\t{_ts(shipped + timedelta(hours=3))}\t"
                f"{_ts(signed)}\t\\N\t\\N\t\\N\t0\t{_ts(shipped)}\t{_ts(shipped)}\n"
            )
            shipments.append(
                f"{shop.pk}\t{oid}\t{pid}\t{receiver_key(phone, address)}\t{address}\tf\t"
                f"workbench\t\\N\t\\N\t{_ts(shipped)}\n"
            )
        _copy(cursor, Order, ORDER_COLUMNS, orders)
        del orders
        _copy(
            cursor,
            Parcel,
            "id, shop_id, order_id, courier_id, waybill_no, declared_value_fen, receiver_name, "
            "receiver_phone, receiver_address, stage, shipped_at, picked_up_at, signed_at, "
            "next_poll_at, poll_leased_until, subscribed_at, poll_failures, created_at, "
            "updated_at",
            parcels,
        )
        del parcels
        _copy(
            cursor,
            Shipment,
            "shop_id, order_id, parcel_id, receiver_key, receiver_address, flagged, channel, "
            "upload_id, actor_id, shipped_at",
            shipments,
        )
    _vacuum(Order, Parcel, Shipment)
    elapsed = time.perf_counter() - started
    print(f"  loaded in {elapsed:.1f} s", flush=True)
    return elapsed


def _wipe_scan(shop: Shop) -> None:
    _reset_flags(shop)
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (Shipment, Parcel, Order):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE shop_id = %s", [shop.pk])


# --- The upload -----------------------------------------------------------------------------


def _measure_upload() -> dict:
    from config.celery import app

    shop, owner = _shop(UPLOAD_SHOP, "基准·批量发货")
    zto = Courier.objects.get(code="ZTO")
    load_seconds = _load_upload_orders(shop)
    path = _upload_file(zto)
    # Earlier runs' uploads: their rows and files (the orders stay as loaded: nothing shipped).
    for old in ShipmentUpload.objects.filter(shop=shop):
        old.file.delete(save=False)
        old.delete()
    _vacuum(ShipmentUpload)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the parse task runs on commit, in this process
    profiler = cProfile.Profile() if PROFILE else None
    try:
        with path.open("rb") as handle:
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            upload = shipment_upload_create(
                actor=owner, shop=shop, upload=File(handle, name=path.name)
            )
            if profiler:
                profiler.disable()
            seconds = time.perf_counter() - started
    finally:
        app.conf.task_always_eager = previous
    if profiler:
        _print_profile(profiler, "upload")
    cpu_seconds = time.process_time() - cpu_started
    upload.refresh_from_db()
    assert upload.status == ShipmentUpload.Status.PREVIEW, (upload.status, upload.error)
    # For information: how much of it is reading the workbook's cells.
    started = time.perf_counter()
    for _row in _read_rows(path.read_bytes()):
        pass
    read_seconds = time.perf_counter() - started
    codes = _codes(upload)
    return {
        "upload_100k_s": round(seconds, 2),
        "upload_rows": upload.total_rows,
        "upload_rows_per_s": round(upload.total_rows / seconds),
        "upload_cpu_s": round(cpu_seconds, 2),
        "upload_read_s": round(read_seconds, 2),
        "upload_valid_rows": upload.valid_rows,
        "upload_flagged_rows": upload.flagged_rows,
        "upload_failed_rows": upload.failed_rows,
        **{f"upload_failed_{code}": n for code, n in sorted(codes.items())},
        "upload_file_mb": round(path.stat().st_size / 2**20, 2),
        "upload_load_seconds": round(load_seconds, 1),
    }


def _codes(upload: ShipmentUpload) -> dict[str, int]:
    from django.db.models import Count

    return dict(
        upload.rows.exclude(code="")
        .values_list("code")
        .annotate(n=Count("pk"))
        .values_list("code", "n")
    )


# --- The scan -------------------------------------------------------------------------------


def _reset_flags(shop: Shop) -> None:
    """The scan shop as loaded: no anomalies, nothing held, receipt confirmations as set."""
    days = InterceptPolicy.current().receipt_confirm_days
    anomalies = f"SELECT id FROM {ShipmentAnomaly._meta.db_table} WHERE shop_id = %s"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {ShipmentAnomalyEvent._meta.db_table} WHERE anomaly_id IN ({anomalies})",
            [shop.pk],
        )
        cursor.execute(
            f"DELETE FROM {ShipmentAnomaly._meta.db_table} WHERE shop_id = %s", [shop.pk]
        )
        cursor.execute(
            f"UPDATE {Order._meta.db_table} SET settlement_held_at = NULL, "
            f"receipt_confirm_at = shipped_at + make_interval(days => %s) "
            f"WHERE shop_id = %s AND (settlement_held_at IS NOT NULL "
            f"OR receipt_confirm_at <> shipped_at + make_interval(days => %s))",
            [days, shop.pk, days],
        )


def _prepare(shop: Shop) -> None:
    """Both runs start alike: no flags, tables vacuumed, the scanned tables read once."""
    _reset_flags(shop)
    _vacuum(ShipmentAnomaly, ShipmentAnomalyEvent, Order, Parcel, Shipment)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), sum(length(p.stage)), sum(length(o.order_no)) "
            f"FROM {Shipment._meta.db_table} s "
            f"JOIN {Parcel._meta.db_table} p ON p.id = s.parcel_id "
            f"JOIN {Order._meta.db_table} o ON o.id = s.order_id"
        )
        cursor.fetchone()


# One statement per kind: the due shipments' anomalies inserted (the unique (order, parcel,
# kind) skips those already raised: a NOT EXISTS there is planned against the table as it was,
# empty, and rescans it for every row inserted), the history rows of the rows inserted, the
# holds.
RAW_SCAN = """
WITH opened AS (
    INSERT INTO intercepts_shipmentanomaly
        (shop_id, order_id, parcel_id, kind, status, reason, detected_at, explanation)
    SELECT s.shop_id, s.order_id, s.parcel_id, %(kind)s, 'open', %(reason)s, %(now)s, ''
    FROM intercepts_shipment s
    JOIN intercepts_parcel p ON p.id = s.parcel_id
    WHERE p.shipped_at <= %(cutoff)s AND s.shipped_at <= %(cutoff)s
      AND NOT (p.stage = ANY(%(final)s))
      AND NOT EXISTS (
          SELECT 1 FROM intercepts_interceptrequest i
          WHERE i.parcel_id = s.parcel_id AND i.status = ANY(%(caught)s)
      )
    ON CONFLICT DO NOTHING
    RETURNING id, order_id
), history AS (
    INSERT INTO intercepts_shipmentanomalyevent
        (anomaly_id, from_status, to_status, note, created_at)
    SELECT id, '', 'open', %(reason)s, %(now)s FROM opened
)
UPDATE intercepts_order o
SET settlement_held_at = %(now)s,
    receipt_confirm_at = coalesce(o.receipt_confirm_at, %(now)s) + %(extend)s
FROM opened
WHERE %(hold)s AND o.id = opened.order_id AND o.settlement_held_at IS NULL
"""


def _raw_scan(now: datetime) -> None:
    policy = InterceptPolicy.current()
    Kind = ShipmentAnomaly.Kind
    for kind, days in (
        (Kind.STALLED_6D, policy.shipment_notice_days),
        (Kind.STALLED_10D, policy.shipment_hold_days),
    ):
        params = {
            "kind": kind,
            "reason": shipment_checks._stall_reason(kind, days),
            "now": now,
            "cutoff": now - timedelta(days=days),
            "final": sorted(SHIPMENT_FINAL_STAGES),
            "caught": list(InterceptRequest.CAUGHT),
            "hold": kind == Kind.STALLED_10D,
            "extend": timedelta(days=policy.receipt_extend_days),
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(RAW_SCAN, params)
    # What the scan ends with: open stalls whose parcel reached a final stage (none here).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id FROM intercepts_shipmentanomaly a "
            "JOIN intercepts_parcel p ON p.id = a.parcel_id "
            "WHERE a.kind = ANY(%s) AND a.status = ANY(%s) AND p.stage = ANY(%s)",
            [
                list(ShipmentAnomaly.STALLS),
                list(ShipmentAnomaly.OPEN_STATUSES),
                sorted(SHIPMENT_FINAL_STAGES),
            ],
        )
        cursor.fetchall()


def _flags(shop: Shop) -> dict[str, int]:
    policy = InterceptPolicy.current()
    days = policy.receipt_confirm_days + policy.receipt_extend_days
    postponed = F("shipped_at") + timedelta(days=days)  # as loaded, then put back once
    anomalies = ShipmentAnomaly.objects.filter(shop=shop)
    return {
        "stalled_6d": anomalies.filter(kind=ShipmentAnomaly.Kind.STALLED_6D).count(),
        "stalled_10d": anomalies.filter(kind=ShipmentAnomaly.Kind.STALLED_10D).count(),
        "events": ShipmentAnomalyEvent.objects.filter(anomaly__shop=shop).count(),
        "held": Order.objects.filter(shop=shop, settlement_held_at__isnull=False).count(),
        "postponed": Order.objects.filter(shop=shop, receipt_confirm_at=postponed).count(),
    }


def _measure_scan() -> dict:
    shop, _owner = _shop(SCAN_SHOP, "基准·发货巡检")
    zto = Courier.objects.get(code="ZTO")
    load_seconds = _load_scan(shop, zto)
    ours, raws = [], []
    flags_ours = flags_raw = None
    for _run in range(RUNS):
        # Alternated, so a busy moment of the machine falls on both alike.
        _prepare(shop)
        started = time.perf_counter()
        _raw_scan(NOW)
        raws.append(time.perf_counter() - started)
        flags_raw = _flags(shop)

        _prepare(shop)
        profiler = cProfile.Profile() if PROFILE and not ours else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        opened = shipment_checks.shipments_scan_overdue(now=NOW)
        if profiler:
            profiler.disable()
        ours.append(time.perf_counter() - started)
        if profiler:
            _print_profile(profiler, "scan")
        flags_ours = _flags(shop)
    scan_s, raw_s = statistics.median(ours), statistics.median(raws)
    print(f"  the scan wrote {flags_ours} (opened {opened})", flush=True)
    return {
        "scan_1m_s": round(scan_s, 2),
        "scan_raw_sql_s": round(raw_s, 2),
        "scan_ratio_to_raw_sql": round(scan_s / raw_s, 2),
        "scan_flags_match": flags_ours == flags_raw,
        "scan_shipments": SCAN_ORDERS,
        **{f"scan_flags_{name}": n for name, n in flags_ours.items()},
        "scan_runs_s": " ".join(f"{s:.2f}" for s in ours),
        "scan_raw_runs_s": " ".join(f"{s:.2f}" for s in raws),
        "scan_load_seconds": round(load_seconds, 1),
    }


def _print_profile(profiler: cProfile.Profile, name: str) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(OUT_DIR / f"shipments-{name}.prof")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    print(out.getvalue(), flush=True)


def run() -> dict:
    figures = _measure_upload()
    figures |= _measure_scan()
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    return figures
