"""Intercepts created through the ERP API by 8 clients at once, against the sandbox courier.

The app runs as in production: gunicorn (``WEB_WORKERS`` processes of ``WEB_THREADS`` threads)
serving the app plus one trivial API view (``_api_wsgi`` / ``_api_urls``, for this benchmark
only), a Celery worker (prefork, 2 processes) on the ZTO courier queue, Redis as broker, and
the sandbox courier (in this process) answering at once. The benchmark's shop has ``CLIENTS``
API keys and enough money in its wallet; every key has ``PER_CLIENT`` after-sales of its own,
each with one ZTO parcel in transit. The per-key throttle is raised for the run
(``API_RATE_PER_KEY``).

``CLIENTS`` client processes (see ``_worker.py``: spawned processes keep the clients off the
sandbox's GIL; each is one client on one kept-alive connection) start on a common signal and,
for ``BUDGET_S`` seconds, POST ``/api/v1/intercepts/`` one after another, each with its own
``Idempotency-Key``; every ``RETRY_EVERY``-th create is sent a second time, as an ERP retries
after a lost answer, and must be the replay of the first (same intercept, ``Idempotent-Replayed``).

- ``creates_per_s``: intercepts created (201) over the time from the signal to the last
  client's end; ``create_p95_ms``: the 95th percentile of a create's round trip.
- ``double_charges`` (afterwards, from the ledger): parcels of the run with more than one fee
  held, holds whose reference names no intercept, and intercepts both charged and released.
- ``lost_requests``: answers 201 whose intercept is not in the database, or was never asked of
  the courier once the worker drained (the sandbox's own truth about the waybill, over HTTP:
  ``GET /sandbox/parcels/<waybill>``).
- ``trivial_view_per_s``: the same clients, keys and server, GETting a DRF view that answers a
  constant for ``TRIVIAL_BUDGET_S`` seconds, right after (for information).
"""

import multiprocessing
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import httpx
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Count, Q

from billing import services as billing_services
from billing.models import LedgerTransaction, PaymentPassword, Wallet
from couriers.models import Courier, CourierAccount
from couriers.sandbox import SANDBOX_ACCOUNTS, SandboxServer, sandbox_account
from couriers.stages import ParcelStage
from intercepts.models import AfterSale, InterceptPolicy, InterceptRequest, Order, OrderLine, Parcel
from intercepts.services.policy import shop_sign_agreement
from intercepts.tracking.polling import courier_queue
from shops.api_keys import api_key_create
from shops.models import PLATFORM_FINANCE, EwaybillAccount, Shop, ShopMembership
from tests.benchmarks import _worker, at_least, at_most, equals, p95
from tests.benchmarks._rawhttp import RawHttp
from tests.benchmarks._servers import celery_worker, web_server

CLIENTS = int(os.environ.get("BENCH_API_CLIENTS", "8"))  # 8 is what the limits are for
BUDGET_S = float(os.environ.get("BENCH_API_BUDGET_S", "30"))
TRIVIAL_BUDGET_S = 10.0
# More after-sales than the clients can use in the budget: a client that ran out would stop.
PER_CLIENT = int(os.environ.get("BENCH_API_PER_CLIENT", "1500"))
RETRY_EVERY = 25
WEB_WORKERS = 2
WEB_THREADS = 4
FEE_FEN = 300  # ZTO return, seeded
DRAIN_TIMEOUT_S = 180
SHOP_CODE = "bench-api"
PIN = "246810"
# Dated long ago, as in the intercept benchmark: lists sorted by time never reach them.
PLACED_AT = datetime(2000, 1, 1, tzinfo=UTC)

LIMITS = {
    "creates_per_s": at_least(100),
    "create_p95_ms": at_most(150),
    "double_charges": equals(0),
    "lost_requests": equals(0),
}


def _shop() -> tuple[Shop, User]:
    """The benchmark's shop, ready to intercept: agreement, e-waybill, a payment password."""
    shop, _created = Shop.objects.get_or_create(code=SHOP_CODE, defaults={"name": "压测接口店"})
    owner, _created = User.objects.get_or_create(username="bench-api-owner")
    ShopMembership.objects.get_or_create(
        user=owner, shop=shop, defaults={"role": ShopMembership.Role.OWNER}
    )
    shop_sign_agreement(actor=owner, shop=shop, version=InterceptPolicy.current().agreement_version)
    EwaybillAccount.objects.get_or_create(
        shop=shop, courier=Courier.objects.get(code="ZTO"), defaults={"account_no": "BENCH-API"}
    )
    billing_services.wallet_open(actor=owner, shop_id=shop.pk)
    if not PaymentPassword.objects.filter(shop_id=shop.pk).exists():
        billing_services.payment_password_set(actor=owner, shop_id=shop.pk, pin=PIN)
    return shop, owner


def _fund(shop: Shop, amount_fen: int) -> None:
    """Top the wallet up to at least ``amount_fen`` available, in top-ups one finance user may
    apply alone."""
    wallet = Wallet.objects.get(shop=shop)
    finance, _created = User.objects.get_or_create(username="bench-api-finance")
    finance.groups.add(Group.objects.get(name=PLATFORM_FINANCE))
    step = 4_000_000
    while amount_fen > 0:
        billing_services.wallet_top_up(
            actor=finance,
            wallet=wallet,
            amount_fen=min(step, amount_fen),
            external_reference=f"BENCH-API-{uuid.uuid4().hex}",
        )
        amount_fen -= step


def _after_sales(shop: Shop, zto: Courier, count: int, run: str) -> list[tuple[int, int, str]]:
    """``count`` refund-only after-sales, each with one ZTO parcel in transit (a new waybill
    whose last digit tells the sandbox it is in transit too): (after-sale, parcel, waybill)."""
    with transaction.atomic():
        orders = Order.objects.bulk_create(
            Order(
                shop=shop,
                order_no=f"A{run}{index:05d}",
                buyer_name="压测买家",
                buyer_phone="13800001234",
                paid_at=PLACED_AT,
                created_at=PLACED_AT,
            )
            for index in range(count)
        )
        lines = OrderLine.objects.bulk_create(
            OrderLine(order=order, goods_name="压测商品", unit_price_fen=9900, quantity=1)
            for order in orders
        )
        parcels = Parcel.objects.bulk_create(
            Parcel(
                shop=shop,
                order=order,
                courier=zto,
                waybill_no=f"78{run[-6:]}{index:05d}2",
                declared_value_fen=9900,
                receiver_name="压测买家",
                receiver_phone="13800001234",
                receiver_address="上海市浦东新区",
                stage=ParcelStage.IN_TRANSIT,
            )
            for index, order in enumerate(orders)
        )
        Parcel.lines.through.objects.bulk_create(
            Parcel.lines.through(parcel_id=parcel.pk, orderline_id=line.pk)
            for parcel, line in zip(parcels, lines, strict=True)
        )
        after_sales = AfterSale.objects.bulk_create(
            AfterSale(
                shop=shop,
                order=order,
                kind=AfterSale.Kind.REFUND_ONLY,
                refund_amount_fen=9900,
                created_at=PLACED_AT,
            )
            for order in orders
        )
    return [
        (after_sale.pk, parcel.pk, parcel.waybill_no)
        for after_sale, parcel in zip(after_sales, parcels, strict=True)
    ]


# --- The clients (one spawned process each; see _worker.py) ------------------------------------


def create_job(share: list[tuple[int, int, str]], options: dict):
    """Create an intercept for each (after-sale, parcel) of this client's share, in order, until
    the deadline; every ``RETRY_EVERY``-th is sent twice with the same key."""
    import json

    client = RawHttp(
        options["host"], options["port"], {"Authorization": f"Bearer {options['key']}"}
    )
    client.request("GET", options["trivial_path"])  # connected and answered before the clock
    bodies = [
        (
            json.dumps({"after_sale": after_sale, "parcel": parcel, "action": "return"}).encode(),
            f"{options['run']}-{parcel}",
        )
        for after_sale, parcel, _waybill in share
    ]

    def run(deadline: float) -> dict:
        latencies, created, statuses = [], [], Counter()
        replays = replays_wrong = 0
        first_wrong = ""
        try:
            for index, (body, key) in enumerate(bodies):
                if time.monotonic() >= deadline:
                    break
                started = time.perf_counter()
                status, _headers, content = client.request(
                    "POST", "/api/v1/intercepts/", body, {"Idempotency-Key": key}
                )
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[str(status)] += 1
                if status != 201:
                    first_wrong = first_wrong or f"{status} {content[:300]!r}"
                    continue
                intercept_id = json.loads(content)["id"]
                created.append([intercept_id, share[index][1], share[index][2]])
                if index % RETRY_EVERY == 0:
                    again, headers, content = client.request(
                        "POST", "/api/v1/intercepts/", body, {"Idempotency-Key": key}
                    )
                    replays += 1
                    if (
                        again != 201
                        or headers.get(b"idempotent-replayed") != b"true"
                        or json.loads(content)["id"] != intercept_id
                    ):
                        replays_wrong += 1
                        first_wrong = first_wrong or f"replay {again} {content[:300]!r}"
        finally:
            client.close()
        return {
            "latencies": latencies,
            "created": created,
            "statuses": dict(statuses),
            "replays": replays,
            "replays_wrong": replays_wrong,
            "first_wrong": first_wrong,
        }

    return run


def trivial_job(_share, options: dict):
    client = RawHttp(
        options["host"], options["port"], {"Authorization": f"Bearer {options['key']}"}
    )
    client.request("GET", options["trivial_path"])

    def run(deadline: float) -> dict:
        answered, wrong, first_wrong = 0, 0, ""
        try:
            while time.monotonic() < deadline:
                status, _headers, content = client.request("GET", options["trivial_path"])
                if status == 200 and content == b'{"ok":true}':
                    answered += 1
                else:
                    wrong += 1
                    first_wrong = first_wrong or f"{status} {content[:300]!r}"
        finally:
            client.close()
        return {"answered": answered, "wrong": wrong, "first_wrong": first_wrong}

    return run


def _run_clients(job: str, shares: list, options: list[dict], budget_s: float) -> tuple:
    """Run ``job`` in one spawned process per share; returns the reports and the seconds from
    the common start to the last client's end."""
    context = multiprocessing.get_context("spawn")  # no fork of a process running threads
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(
            target=_worker.main,
            args=(
                f"{__name__}:{job}",
                index,
                share,
                {**opts, "budget_s": budget_s},
                ready,
                go,
                results,
            ),
            name=f"bench-api-{job}-{index}",
            daemon=True,
        )
        for index, (share, opts) in enumerate(zip(shares, options, strict=True))
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            index, error = _worker.receive(ready, processes, timeout=300)
            if error:
                raise RuntimeError(f"client {index} failed to start:\n{error}")
        go.set()
        reports = [_worker.receive(results, processes, timeout=budget_s + 300) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
                process.join()
    errors = [report["error"] for report in reports if "error" in report]
    if errors:
        raise RuntimeError(f"client failed:\n{errors[0]}")
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    return reports, seconds


# --- Afterwards: the ledger and the sandbox ---------------------------------------------------


def _double_charges(shop: Shop, parcel_ids: list[int], since: datetime) -> int:
    wallet = Wallet.objects.get(shop=shop)
    made = InterceptRequest.objects.filter(parcel_id__in=parcel_ids)
    references = {intercept.hold_reference: intercept.parcel_id for intercept in made}
    holds = LedgerTransaction.objects.filter(
        wallet=wallet, kind=LedgerTransaction.Kind.HOLD, created_at__gte=since
    ).values_list("reference", flat=True)
    held_per_parcel = Counter(references[ref] for ref in holds if ref in references)
    orphans = sum(1 for ref in holds if ref not in references)
    twice = sum(1 for count in held_per_parcel.values() if count > 1)
    settled = (
        LedgerTransaction.objects.filter(wallet=wallet, reference__in=list(references))
        .values("reference")
        .annotate(
            captures=Count("pk", filter=Q(kind=LedgerTransaction.Kind.CAPTURE)),
            releases=Count("pk", filter=Q(kind=LedgerTransaction.Kind.RELEASE)),
        )
        .filter(captures__gt=0, releases__gt=0)
        .count()
    )
    return twice + orphans + settled


def _drain(created_ids: list[int]) -> float:
    """Wait until the worker has sent every created intercept; returns the seconds it took."""
    started = time.monotonic()
    waiting = InterceptRequest.objects.filter(
        pk__in=created_ids, status=InterceptRequest.Status.CREATED
    )
    while waiting.exists() and time.monotonic() - started < DRAIN_TIMEOUT_S:
        time.sleep(0.2)
    return time.monotonic() - started


def _lost(created: list[list], sandbox_url: str) -> tuple[int, str]:
    """201 answers whose intercept is missing, or that the sandbox never received."""
    stored = dict(
        InterceptRequest.objects.filter(pk__in=[c[0] for c in created]).values_list(
            "pk", "parcel_id"
        )
    )
    lost, first = 0, ""
    with httpx.Client(base_url=sandbox_url, timeout=30) as client:
        for intercept_id, parcel_id, waybill in created:
            if stored.get(intercept_id) != parcel_id:
                lost += 1
                first = first or f"intercept {intercept_id} not stored"
                continue
            truth = client.get(f"/sandbox/parcels/{waybill}")
            if truth.status_code != 200 or truth.json().get("intercept") is None:
                lost += 1
                first = first or f"{waybill}: the sandbox has no intercept ({truth.status_code})"
    return lost, first


def run() -> dict:
    run_id = time.strftime("%y%m%d%H%M%S")
    since = datetime.now(UTC)
    zto = Courier.objects.get(code="ZTO")
    previous_account = zto.account_id
    shop, owner = _shop()
    _fund(shop, CLIENTS * PER_CLIENT * FEE_FEN)
    pairs = _after_sales(shop, zto, CLIENTS * PER_CLIENT, run_id)
    shares = [pairs[index::CLIENTS] for index in range(CLIENTS)]
    keys = [
        api_key_create(actor=owner, shop=shop, name=f"bench-{run_id}-{index}")[1]
        for index in range(CLIENTS)
    ]
    with SandboxServer(speed=1, seed=int(run_id[-6:])) as sandbox:
        config = sandbox_account("kuaidi100", sandbox.url)
        account = CourierAccount.objects.create(
            name=f"bench·接口·{run_id}",
            protocol="kuaidi100",
            base_url=config.base_url,
            callback_url="http://127.0.0.1:9/unheard",
            requests_per_second=1000,
            **SANDBOX_ACCOUNTS["kuaidi100"],
        )
        Courier.objects.filter(pk=zto.pk).update(account=account)
        os.environ["API_RATE_PER_KEY"] = "1000000/min"
        try:
            with (
                web_server(
                    "tests.benchmarks._api_wsgi:application", WEB_WORKERS, WEB_THREADS
                ) as address,
                celery_worker(queues=(courier_queue("ZTO"),), pool="prefork", concurrency=2),
            ):
                options = [
                    {**address, "key": key, "run": run_id, "trivial_path": "/bench/api-trivial/"}
                    for key in keys
                ]
                reports, seconds = _run_clients("create_job", shares, options, BUDGET_S)
                created = [row for report in reports for row in report["created"]]
                drain_s = _drain([row[0] for row in created])
                trivial, trivial_s = _run_clients(
                    "trivial_job", [None] * CLIENTS, options, TRIVIAL_BUDGET_S
                )
            lost, first_lost = _lost(created, sandbox.url)
        finally:
            os.environ.pop("API_RATE_PER_KEY", None)
            Courier.objects.filter(pk=zto.pk).update(account=previous_account)
    latencies = [ms for report in reports for ms in report["latencies"]]
    statuses = Counter()
    for report in reports:
        statuses.update(report["statuses"])
    wrong = next((r["first_wrong"] for r in reports if r["first_wrong"]), "")
    sent = InterceptRequest.objects.filter(pk__in=[row[0] for row in created])
    return {
        "creates_per_s": round(len(created) / seconds, 1),
        "create_p95_ms": round(p95(latencies), 1) if latencies else None,
        "create_median_ms": round(statistics.median(latencies), 1) if latencies else None,
        "double_charges": _double_charges(shop, [pair[1] for pair in pairs], since),
        "lost_requests": lost,
        "trivial_view_per_s": round(sum(r["answered"] for r in trivial) / trivial_s, 1),
        "created": len(created),
        "answered_201": statuses.get("201", 0),
        "answered_other": sum(n for status, n in statuses.items() if status != "201"),
        "replays": sum(r["replays"] for r in reports),
        "replays_wrong": sum(r["replays_wrong"] for r in reports),
        "trivial_wrong": sum(r["wrong"] for r in trivial),
        "seconds": round(seconds, 1),
        "drain_s": round(drain_s, 1),
        "sent_to_courier": sent.exclude(status=InterceptRequest.Status.CREATED).count(),
        "first_wrong_answer": wrong or next((r["first_wrong"] for r in trivial), "") or "",
        "first_lost": first_lost,
    }
