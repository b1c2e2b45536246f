"""The after-sales changelist against a million after-sales.

Loads 1,000,000 after-sales (one order each, ~10% of orders with two parcels) into the two demo
shops with COPY, then requests ``/admin/intercepts/aftersale/`` as a merchant owner and as
platform CS: page 1, a filtered page and page 500. Every page is rendered whole on every
request; nothing is kept between requests. For each page it records the p95 wall time and the
number of queries.

The same pages are timed through a stock admin (``_changelist_urls.StockAfterSaleAdmin``): a
plain ``ModelAdmin`` with the same columns, as a Django developer would first write it.
``ratio_to_stock_admin_max`` is ours over stock on the worst page. For information only,
``ratio_to_raw_sql_max`` compares each page with running exactly its SQL through a bare
psycopg cursor.
"""

import gc
import os
import random
import re
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.contrib import admin
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from couriers.models import Courier
from couriers.stages import IN_FLIGHT_STAGES, TERMINAL_STAGES, ParcelStage
from intercepts.demo import CITIES, NAMES, demo_waybill, seed_demo
from intercepts.models import AfterSale, Order, Parcel
from shops.models import Shop
from tests.benchmarks import at_most, equals, p95

LIMITS = {
    "p95_ms_max": at_most(150),
    "queries_per_page_max": at_most(10),
    "queries_constant_in_page_size": equals(True),
    "ratio_to_stock_admin_max": at_most(0.5),
}

TARGET_ROWS = 1_000_000
SHOP_ROWS = {"demo-apparel": 700_000, "demo-tea": 300_000}
DAYS = 90
SEED = 20261122
# Waybill serials start far above the demo's (tens of thousands) so the two never collide.
WAYBILL_BASE = 100_000_000
CHUNK_ROWS = 20_000

# Rough market shares: the filtered page uses the rarest courier, the hardest filter to fill.
COURIER_WEIGHTS = {
    "ZTO": 22,
    "YTO": 17,
    "YUNDA": 15,
    "JT": 13,
    "STO": 12,
    "SF": 10,
    "JD": 7,
    "EMS": 4,
}
FILTER_COURIER = "EMS"
KIND_WEIGHTS = {
    AfterSale.Kind.REFUND_ONLY: 40,
    AfterSale.Kind.RETURN_AND_REFUND: 45,
    AfterSale.Kind.CANCEL_ORDER: 15,
}
# Fresh after-sales are mostly still open; old ones are mostly settled, a few are stuck.
STATUS_WEIGHTS_BY_AGE = [
    (2, {"pending": 55, "approved": 10, "refunded": 20, "rejected": 10, "closed": 5}),
    (7, {"pending": 20, "approved": 8, "refunded": 50, "rejected": 10, "closed": 12}),
    (DAYS + 1, {"pending": 2, "approved": 1, "refunded": 72, "rejected": 8, "closed": 17}),
]
ARBITRATION_WEIGHTS = {
    "none": 940,
    "requested": 20,
    "in_progress": 15,
    "for_buyer": 15,
    "for_merchant": 10,
}
RECENT_STAGE_WEIGHTS = {stage: 10 for stage in IN_FLIGHT_STAGES} | {
    ParcelStage.NO_INFO: 3,
    ParcelStage.LABEL_CREATED: 5,
    ParcelStage.DELIVERED: 15,
    ParcelStage.INTERCEPTED: 4,
    ParcelStage.EXCEPTION: 2,
}
SETTLED_STAGE_WEIGHTS = {
    ParcelStage.DELIVERED: 550,
    ParcelStage.RETURNED: 120,
    ParcelStage.RETURNING: 50,
    ParcelStage.INTERCEPTED: 40,
    ParcelStage.REJECTED: 40,
    ParcelStage.IN_TRANSIT: 30,
    ParcelStage.EXCEPTION: 30,
    ParcelStage.AWAITING_COLLECTION: 20,
    ParcelStage.DELIVERY_FAILED: 20,
    ParcelStage.CANCELLED: 20,
    ParcelStage.STALE: 20,
    ParcelStage.LOST: 10,
    ParcelStage.REDIRECTING: 10,
    ParcelStage.HANDED_TO_OTHER_CARRIER: 10,
    ParcelStage.CUSTOMS: 10,
    ParcelStage.PICKED_UP: 10,
    ParcelStage.OUT_FOR_DELIVERY: 5,
}
REASONS = ["不想要了", "拍错了", "七天无理由", "商品与描述不符", "质量问题", "未按约定时间发货"]
PRICES = [1990, 5900, 12900, 29900, 89900, 159900]

USERS = ("owner", "cs")
REPEATS = 20
WARMUPS = 2
# Every order number the loader writes (and the demo's own) is 12 to 14 digits.
NUMBER_RE = re.compile(r"(?<![\d])\d{12,14}(?![\d])")


# --- Loading ---------------------------------------------------------------------------------


def _ts(value: datetime | None) -> str:
    return r"\N" if value is None else value.isoformat()


def _picker(rng: random.Random, weights: dict):
    """A fast weighted choice: draws from a pre-expanded population of 1,000 slots."""
    total = sum(weights.values())
    population = []
    for value, weight in weights.items():
        population += [value] * round(1000 * weight / total)
    return lambda: population[int(rng.random() * len(population))]


class _Ids:
    """Explicit ids, continuing each table's sequence, so rows can refer to each other."""

    def __init__(self, model):
        self.table = model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {self.table}")
            self.next = cursor.fetchone()[0] + 1

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value

    def sync_sequence(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [self.table, self.next - 1]
            )


def _columns(model, names: str) -> str:
    return ", ".join(model._meta.get_field(name).column for name in names.split())


ORDER_COLUMNS = "id shop order_no status buyer_name buyer_phone total_fen paid_at created_at"
PARCEL_COLUMNS = (
    "id shop order courier waybill_no declared_value_fen receiver_name receiver_phone "
    "receiver_address stage shipped_at picked_up_at signed_at next_poll_at poll_failures "
    "created_at updated_at"
)
AFTER_SALE_COLUMNS = (
    "id shop order kind status arbitration refund_amount_fen reason created_at updated_at"
)


def _generate(
    shops: list[Shop], couriers: dict[str, Courier], now: datetime, ids: dict[type, _Ids]
):
    """Yield (orders, parcels, after_sales) COPY text blocks, rows in time order.

    Rows are written oldest first, as a live system would have inserted them, so ids grow with
    created_at and the table's physical order matches production's. The loop runs a million
    times, so it works on plain ints and strings rather than model instances and enum members.
    """
    rng = random.Random(SEED)
    pick_courier = _picker(rng, {couriers[code]: w for code, w in COURIER_WEIGHTS.items()})
    pick_kind = _picker(rng, {str(kind): w for kind, w in KIND_WEIGHTS.items()})
    pick_arbitration = _picker(rng, ARBITRATION_WEIGHTS)
    pick_status = [(age, _picker(rng, weights)) for age, weights in STATUS_WEIGHTS_BY_AGE]
    pick_recent_stage = _picker(rng, {str(s): w for s, w in RECENT_STAGE_WEIGHTS.items()})
    pick_settled_stage = _picker(rng, {str(s): w for s, w in SETTLED_STAGE_WEIGHTS.items()})
    terminal = {str(stage) for stage in TERMINAL_STAGES}
    not_moving = {str(ParcelStage.NO_INFO), str(ParcelStage.LABEL_CREATED)}
    delivered, cancel_order = str(ParcelStage.DELIVERED), str(AfterSale.Kind.CANCEL_ORDER)

    shop_of_row = [index for index, shop in enumerate(shops) for _ in range(SHOP_ROWS[shop.code])]
    rng.shuffle(shop_of_row)
    shop_ids = [shop.pk for shop in shops]
    serial = [0] * len(shops)
    span = DAYS * 86400.0
    offsets = sorted(rng.random() * span for _ in range(len(shop_of_row)))
    start = now - timedelta(days=DAYS)
    order_ids, parcel_ids, after_sale_ids = ids[Order], ids[Parcel], ids[AfterSale]
    waybill = WAYBILL_BASE

    orders, parcels, after_sales = [], [], []
    for row, (shop_index, offset) in enumerate(zip(shop_of_row, offsets, strict=True)):
        shop_id = shop_ids[shop_index]
        applied_at = start + timedelta(seconds=offset)
        age_days = (span - offset) / 86400
        ordered_at = applied_at - timedelta(seconds=rng.uniform(3600, 7 * 86400))
        kind = pick_kind()
        shipped = not (kind == cancel_order and rng.random() < 0.6)
        parcel_count = (2 if rng.random() < 0.11 else 1) if shipped else 0

        serial[shop_index] += 1
        order_id = order_ids.take()
        order_no = f"8{shop_index}{serial[shop_index]:010d}"
        buyer = NAMES[int(rng.random() * len(NAMES))]
        phone = f"1{'3589'[int(rng.random() * 4)]}{int(rng.random() * 1e9):09d}"
        total = PRICES[int(rng.random() * len(PRICES))] * (1 + int(rng.random() * 3))
        if not shipped:
            order_status = "cancelled"
        elif age_days > 10:
            order_status = "completed"
        else:
            order_status = "shipped"
        ordered = _ts(ordered_at)
        orders.append(
            f"{order_id}\t{shop_id}\t{order_no}\t{order_status}\t{buyer}\t{phone}\t{total}\t"
            f"{ordered}\t{ordered}\n"
        )

        for _ in range(parcel_count):
            courier = pick_courier()
            waybill += 1
            stage = pick_recent_stage() if age_days < 5 else pick_settled_stage()
            shipped_at = ordered_at + timedelta(seconds=rng.uniform(1800, 86400))
            picked_up_at = None if stage in not_moving else shipped_at + timedelta(hours=3)
            signed_at = shipped_at + timedelta(days=2) if stage == delivered else None
            next_poll = (
                None if stage in terminal else now + timedelta(seconds=rng.uniform(60, 21600))
            )
            city = CITIES[int(rng.random() * len(CITIES))]
            shipped_text = _ts(shipped_at)
            parcels.append(
                f"{parcel_ids.take()}\t{shop_id}\t{order_id}\t{courier.pk}\t"
                f"{demo_waybill(courier, waybill)}\t{total // parcel_count}\t{buyer}\t{phone}\t"
                f"{city}幸福路{1 + int(rng.random() * 999)}号\t{stage}\t{shipped_text}\t"
                f"{_ts(picked_up_at)}\t{_ts(signed_at)}\t{_ts(next_poll)}\t0\t"
                f"{shipped_text}\t{shipped_text}\n"
            )

        status = next(pick for age, pick in pick_status if age_days < age)()
        arbitration = pick_arbitration() if status != "pending" else "none"
        refund = total if rng.random() < 0.8 else total // 2
        applied = _ts(applied_at)
        after_sales.append(
            f"{after_sale_ids.take()}\t{shop_id}\t{order_id}\t{kind}\t{status}\t{arbitration}\t"
            f"{refund}\t{REASONS[int(rng.random() * len(REASONS))]}\t{applied}\t{applied}\n"
        )

        if (row + 1) % CHUNK_ROWS == 0 or row + 1 == len(shop_of_row):
            yield "".join(orders), "".join(parcels), "".join(after_sales)
            orders, parcels, after_sales = [], [], []


def _copy_sql(model, columns: str) -> str:
    return f"COPY {model._meta.db_table} ({_columns(model, columns)}) FROM STDIN"


def _copy(cursor, model, columns: str, blocks: list[str]) -> None:
    with cursor.copy(_copy_sql(model, columns)) as copy:
        for block in blocks:
            copy.write(block)


def _check_waybills(couriers: dict[str, Courier]) -> None:
    """The loaded waybills must pass the courier patterns the app validates with."""
    for courier in couriers.values():
        sample = (
            Parcel.objects.filter(courier=courier, waybill_no__regex=r"\d{9}$")
            .order_by("-id")
            .values_list("waybill_no", flat=True)
            .first()
        )
        assert sample and courier.waybill_matches(sample), (courier.code, sample)


def _check_references() -> None:
    """Foreign keys were not checked row by row during the load; check them all at once."""
    order, parcel, after_sale = (
        Order._meta.db_table,
        Parcel._meta.db_table,
        AfterSale._meta.db_table,
    )
    with connection.cursor() as cursor:
        for table, column in ((parcel, "order_id"), (after_sale, "order_id")):
            cursor.execute(
                f"SELECT count(*) FROM {table} t LEFT JOIN {order} o ON o.id = t.{column} "
                "WHERE o.id IS NULL"
            )
            assert cursor.fetchone()[0] == 0, f"{table}.{column} has dangling references"


def _loaded(shops: list[Shop]) -> dict[str, int]:
    """Shop code -> how many of the loader's after-sales it has (its orders' numbers start with
    8; the demo's, the only other after-sales of these shops, start with 69)."""
    counts = (
        AfterSale.objects.filter(shop__in=shops, order__order_no__startswith="8")
        .values_list("shop__code")
        .annotate(rows=Count("id"))
    )
    return dict(counts)


def load() -> float:
    """Load the million after-sales unless they are there already; returns seconds spent."""
    seed_demo()
    shops = [Shop.objects.get(code=code) for code in SHOP_ROWS]
    loaded = _loaded(shops)
    if loaded == SHOP_ROWS:
        return 0.0
    if loaded:
        raise RuntimeError(
            f"the database holds another load ({loaded}, not {SHOP_ROWS}): drop it and run again"
        )
    started = time.perf_counter()
    couriers = {courier.code: courier for courier in Courier.objects.all()}
    now = timezone.now().astimezone(UTC)
    print(f"Loading {TARGET_ROWS:,} after-sales with their orders and parcels ...", flush=True)
    with transaction.atomic(), connection.cursor() as cursor:
        # Nobody else writes the benchmark database; the lock only guards the explicit ids.
        for model in (Order, Parcel, AfterSale):
            cursor.execute(f"LOCK TABLE {model._meta.db_table} IN EXCLUSIVE MODE")
        # Deferred foreign-key triggers would queue millions of row checks until commit;
        # replica mode skips them and _check_references verifies the whole load in one pass.
        cursor.execute("SET LOCAL session_replication_role = replica")
        # Ids are read before COPY starts: no other statement may run while it is open.
        ids = {model: _Ids(model) for model in (Order, Parcel, AfterSale)}
        orders, after_sales = [], []
        # Parcels, the widest table with the most indexes, stream to the server while the
        # rows are still being generated: a queued writer sends from its own thread, so
        # PostgreSQL works on the second core instead of waiting for Python.
        raw = cursor.cursor
        with raw.copy(
            _copy_sql(Parcel, PARCEL_COLUMNS), writer=QueuedLibpqWriter(raw)
        ) as parcel_copy:
            for order_block, parcel_block, after_sale_block in _generate(shops, couriers, now, ids):
                parcel_copy.write(parcel_block)
                orders.append(order_block)
                after_sales.append(after_sale_block)
        generated = time.perf_counter()
        print(f"  generated, parcels copied in {generated - started:.1f} s", flush=True)
        _copy(cursor, Order, ORDER_COLUMNS, orders)
        _copy(cursor, AfterSale, AFTER_SALE_COLUMNS, after_sales)
        print(f"  orders and after-sales copied in {time.perf_counter() - generated:.1f} s")
        for model_ids in ids.values():
            model_ids.sync_sequence()
        cursor.execute("SET LOCAL session_replication_role = origin")
        _check_references()
    _check_waybills(couriers)
    with connection.cursor() as cursor:
        # VACUUM as autovacuum would after a bulk insert: it sets hint bits and the visibility
        # map, so the first benchmark requests do not pay for them; ANALYZE gives the planner
        # statistics for the new rows.
        for model in (Order, Parcel, AfterSale):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
    elapsed = time.perf_counter() - started
    print(f"  loaded, vacuumed and analysed in {elapsed:.1f} s", flush=True)
    return elapsed


# --- Measuring -------------------------------------------------------------------------------


def _get(client: Client, url: str):
    response = client.get(url)
    assert response.status_code == 200, f"{url} returned {response.status_code}"
    return response


def _order_numbers_shown(response) -> int:
    """How many real order numbers the page lists (its rows), proving it is no error page."""
    candidates = set(NUMBER_RE.findall(response.content.decode()))
    return Order.objects.filter(order_no__in=candidates).values("order_no").distinct().count()


def _capture(client: Client, url: str, rows_expected: int) -> list[dict]:
    """The page's statements, after checking that it lists the rows expected."""
    with CaptureQueriesContext(connection) as context:
        response = _get(client, url)
    shown = _order_numbers_shown(response)
    assert shown == rows_expected, f"{url} shows {shown} order numbers, expected {rows_expected}"
    statements = context.captured_queries
    assert all("$1" not in query["sql"] for query in statements), "need client-side binding"
    return statements


def _time_page(client: Client, url: str) -> list[float]:
    """Wall times of the page, each request rendering it whole."""
    for _ in range(WARMUPS):
        _get(client, url)
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        _get(client, url)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _time_raw_sql(statements: list[str]) -> list[float]:
    """Run exactly the page's SQL through a bare psycopg cursor: the floor for the page."""
    connection.ensure_connection()
    raw = connection.connection
    samples = []
    try:
        for attempt in range(WARMUPS + REPEATS):
            started = time.perf_counter()
            with raw.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
                    if cursor.description is not None:
                        cursor.fetchall()
            if attempt >= WARMUPS:
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()  # hand the connection back to the pool, as a request does
    return samples


def _cpu_calibration_ms() -> float:
    """The best of three runs of a fixed pure-Python loop: tells a slow machine from a slow page."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(1_000_000):
            total += number
        runs.append((time.perf_counter() - started) * 1000)
    return min(runs)


@contextmanager
def _list_per_page(rows: int):
    model_admin = admin.site._registry[AfterSale]
    previous = model_admin.list_per_page
    model_admin.list_per_page = rows
    try:
        yield
    finally:
        model_admin.list_per_page = previous


def run() -> dict:
    load_seconds = load()
    # Collect the loader's garbage now rather than in the middle of a timed request.
    gc.collect()
    with override_settings(ROOT_URLCONF="tests.benchmarks._changelist_urls"):
        figures = _measure()
    return {"load_seconds": round(load_seconds, 1)} | figures


def _measure() -> dict:
    base = "/admin/intercepts/aftersale/"
    stock = "/stock/intercepts/aftersale/"
    courier_id = Courier.objects.get(code=FILTER_COURIER).pk
    pages = {
        "page1": (base, stock),
        "filtered": (
            f"{base}?status=pending&courier={courier_id}",
            f"{stock}?status__exact=pending&order__parcels__courier__id__exact={courier_id}",
        ),
        "page500": (f"{base}?p=500", f"{stock}?p=500"),
    }
    per_page = admin.site._registry[AfterSale].list_per_page
    figures: dict = {
        "rows": AfterSale.objects.count(),
        # Platform staff's pages offer every shop in their filter, so they grow with the shops.
        "shops": Shop.objects.count(),
        # Timings on a small machine move with whatever else runs on it; record how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu_calibration_ms": round(_cpu_calibration_ms(), 1),
    }
    details: dict = {}
    p95s, stock_p95s, stock_ratios, raw_ratios, query_counts = [], [], [], [], []
    constant = True

    for username in USERS:
        client = Client()
        client.force_login(User.objects.get(username=username))
        for page, (url, stock_url) in pages.items():
            samples = _time_page(client, url)
            statements = _capture(client, url, per_page)
            stock_samples = _time_page(client, stock_url)
            stock_statements = _capture(client, stock_url, per_page)
            raw_samples = _time_raw_sql([query["sql"] for query in statements])
            page_p95, stock_p95, raw_p95 = p95(samples), p95(stock_samples), p95(raw_samples)
            key = f"{username}_{page}"
            details[f"p95_ms_{key}"] = round(page_p95, 2)
            details[f"median_ms_{key}"] = round(sorted(samples)[len(samples) // 2], 2)
            details[f"queries_{key}"] = len(statements)
            details[f"db_ms_{key}"] = round(sum(float(q["time"]) for q in statements) * 1000, 2)
            details[f"stock_p95_ms_{key}"] = round(stock_p95, 2)
            details[f"stock_queries_{key}"] = len(stock_statements)
            details[f"ratio_to_stock_{key}"] = round(page_p95 / stock_p95, 3)
            details[f"raw_sql_p95_ms_{key}"] = round(raw_p95, 2)
            details[f"ratio_to_raw_sql_{key}"] = round(page_p95 / raw_p95, 2)
            p95s.append(page_p95)
            stock_p95s.append(stock_p95)
            stock_ratios.append(page_p95 / stock_p95)
            raw_ratios.append(page_p95 / raw_p95)
            query_counts.append(len(statements))

        # The same first page at 100 rows must cost the same number of queries as at 20.
        with _list_per_page(100):
            wide = len(_capture(client, base, 100))
        details[f"queries_{username}_page1_100rows"] = wide
        constant &= wide == details[f"queries_{username}_page1"]

    figures |= {
        "p95_ms_max": round(max(p95s), 2),
        "queries_per_page_max": max(query_counts),
        "queries_constant_in_page_size": constant,
        "stock_admin_p95_ms_max": round(max(stock_p95s), 2),
        "ratio_to_stock_admin_max": round(max(stock_ratios), 3),
        # For information, with no limit: the page over its own SQL run bare.
        "ratio_to_raw_sql_max": round(max(raw_ratios), 2),
    }
    return figures | details
