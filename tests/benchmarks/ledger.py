"""The ledger under contention: hold + capture pairs on one wallet from 8 concurrent clients.

Every pair is two postings on the same wallet, so all 8 clients queue for the same account rows:
this measures the ledger's critical section (lock, entries, balances, commit), not the machine's
parallelism. The yardstick is the rate of a bare single-row UPDATE of that wallet's available
account (one statement, autocommit) from 8 clients on the same database in the same run, which
is what any design that keeps a balance on a row is bounded by. ``ratio_to_limit`` (for
information) is pairs per second over bare updates per second; the bare rate is measured before
and after the pairs and the higher one is used, so background load lowers the ratio rather than
flattering it. Then the same clients run pairs spread over 1,000 wallets
(``spread_pairs_per_s``), as a platform's many shops do: few row locks are shared.

Clients are processes (``_worker.py``), as web workers and Celery workers are, each with its own
connection. The machine's load average is recorded with the figures, since another engineer may
be using the same two cores.
"""

import multiprocessing
import os
import time

from django.contrib.auth.models import User
from django.db import connection

from billing import selectors, services
from billing.models import Account, Hold, HoldEvent, LedgerEntry, LedgerTransaction, Wallet
from couriers.models import Courier
from shops.models import Shop
from tests.benchmarks import _worker, at_least, equals, p95

LIMITS = {
    # Far above what one shop or the whole platform needs on two cores: regression guards.
    "pairs_per_s": at_least(150),
    "spread_pairs_per_s": at_least(300),
    "ledger_sound": equals(True),
    "captures_match_pairs": equals(True),
}

CLIENTS = int(os.environ.get("BENCH_LEDGER_CLIENTS", "8"))
BUDGET_S = float(os.environ.get("BENCH_LEDGER_SECONDS", "10"))
BARE_BUDGET_S = BUDGET_S / 2
SHOP_CODE = "bench-ledger"
SPREAD_WALLETS = 1_000
FEE_FEN = 300
FUNDING_FEN = 1_000_000_000  # ten million yuan: far more than any run holds


# --- Jobs (run in the worker processes) -------------------------------------------------------


def bare_update_job(share: dict, options: dict):
    """A raw psycopg connection in autocommit: one UPDATE per transaction, nothing else."""
    import psycopg

    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    table = Account._meta.db_table
    sql = f"UPDATE {table} SET balance_fen = balance_fen WHERE id = %s"
    account_id = share["account_id"]

    def run(deadline: float) -> dict:
        count = 0
        try:
            with conn.cursor() as cursor:
                while time.monotonic() < deadline:
                    cursor.execute(sql, [account_id], prepare=True)
                    count += 1
        finally:
            conn.close()
        return {"updates": count}

    return run


def pairs_job(share: dict, options: dict):
    """Hold then capture, each through the services, with a fresh reference per pair."""
    connection.ensure_connection()
    courier_id, shop_ids = share["courier_id"], share["shop_ids"]
    prefix, offset = share["prefix"], share.get("offset", 0)

    def run(deadline: float) -> dict:
        pairs, latencies = 0, []
        while time.monotonic() < deadline:
            reference = f"{prefix}:{pairs}"
            shop_id = shop_ids[(offset + pairs) % len(shop_ids)]
            started = time.perf_counter()
            services.wallet_hold(
                shop_id=shop_id, reference=reference, amount_fen=FEE_FEN, courier=courier_id
            )
            services.wallet_capture(reference=reference)
            latencies.append((time.perf_counter() - started) * 1000)
            pairs += 1
        return {"pairs": pairs, "latencies_ms": latencies}

    return run


# --- The parent -------------------------------------------------------------------------------


def _run_workers(job: str, shares: list[dict], budget_s: float) -> tuple[dict, float]:
    """Run ``job`` in one spawned process per share, started together; summed figures (lists
    concatenated) and the seconds from the first start to the last finish."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(
            target=_worker.main,
            args=(f"{__name__}:{job}", index, share, {"budget_s": budget_s}, ready, go, results),
            daemon=True,
        )
        for index, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            index, error = _worker.receive(ready, processes, timeout=120)
            if error:
                raise RuntimeError(f"{job} worker {index} failed to start:\n{error}")
        machine = _machine_cpu_s()
        go.set()
        reports = [_worker.receive(results, processes, timeout=budget_s + 120) for _ in processes]
        machine = _machine_cpu_s() - machine
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
    errors = [report["error"] for report in reports if "error" in report]
    if errors:
        raise RuntimeError(f"{job} worker failed:\n{errors[0]}")
    totals: dict = {}
    for report in reports:
        for key, value in report.items():
            if key in ("index", "started", "finished"):
                continue
            totals[key] = totals.get(key, [] if isinstance(value, list) else 0) + value
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    totals["machine_cpu_s"] = machine
    return totals, seconds


def _machine_cpu_s() -> float:
    """CPU seconds all cores have been busy since boot (user, nice, system, irq, softirq,
    steal), from /proc/stat."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _prepare(code: str = SHOP_CODE) -> tuple[Shop, int, int]:
    """A benchmark shop with an open, well-funded wallet; returns it, the available
    account's id and a courier id."""
    finance, _ = User.objects.get_or_create(
        username="bench-ledger-finance", defaults={"is_staff": True, "is_superuser": True}
    )
    shop, _ = Shop.objects.get_or_create(code=code, defaults={"name": f"基准测试店铺 {code}"})
    wallet = services.wallet_open(actor=finance, shop_id=shop.pk)
    balances = selectors.wallet_balances(shop_id=shop.pk)
    if balances.available_fen < FUNDING_FEN // 2:
        # A top-up this large waits for a second finance user's approval.
        approver, _ = User.objects.get_or_create(
            username="bench-ledger-finance-2", defaults={"is_staff": True, "is_superuser": True}
        )
        top_up = services.top_up_request(
            actor=finance,
            wallet=wallet,
            amount_fen=FUNDING_FEN,
            external_reference=f"bench-ledger-{time.time_ns()}",
        )
        services.top_up_approve(actor=approver, top_up=top_up)
    available_id = Account.objects.get(wallet=wallet, kind=Account.Kind.AVAILABLE).pk
    courier_id = Courier.objects.get(code="ZTO").pk
    return shop, available_id, courier_id


def _vacuum() -> None:
    """VACUUM the ledger's tables as autovacuum would between runs (a database for benchmarks
    may run with it off): every run leaves thousands of dead versions of one wallet's rows."""
    models = (Account, Hold, HoldEvent, LedgerEntry, LedgerTransaction, Wallet)
    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")


def run() -> dict:
    shop, available_id, courier_id = _prepare()
    _vacuum()
    wallet_id = shop.wallet.pk
    run_id = time.time_ns()
    connection.close()  # the workers need every connection slot more than the parent does

    load_before = os.getloadavg()[0]
    bare_shares = [{"account_id": available_id}] * CLIENTS
    bare_before, bare_before_s = _run_workers("bare_update_job", bare_shares, BARE_BUDGET_S)

    pair_shares = [
        {"shop_ids": [shop.pk], "courier_id": courier_id, "prefix": f"bench:{run_id}:{i}"}
        for i in range(CLIENTS)
    ]
    captures_before = LedgerTransaction.objects.filter(
        wallet_id=wallet_id, kind=LedgerTransaction.Kind.CAPTURE
    ).count()
    connection.close()
    pairs, pairs_s = _run_workers("pairs_job", pair_shares, BUDGET_S)

    bare_after, bare_after_s = _run_workers("bare_update_job", bare_shares, BARE_BUDGET_S)
    load_after = os.getloadavg()[0]

    # The same clients over many wallets, each starting at its own place among them.
    spread_ids = [_prepare(f"{SHOP_CODE}-spread-{i}")[0].pk for i in range(SPREAD_WALLETS)]
    spread_shares = [
        {
            "shop_ids": spread_ids,
            "offset": i * SPREAD_WALLETS // CLIENTS,
            "courier_id": courier_id,
            "prefix": f"bench:{run_id}:spread:{i}",
        }
        for i in range(CLIENTS)
    ]
    connection.close()
    spread, spread_s = _run_workers("pairs_job", spread_shares, BUDGET_S)

    bare_rates = (bare_before["updates"] / bare_before_s, bare_after["updates"] / bare_after_s)
    pairs_per_s = pairs["pairs"] / pairs_s
    captures = (
        LedgerTransaction.objects.filter(
            wallet_id=wallet_id, kind=LedgerTransaction.Kind.CAPTURE
        ).count()
        - captures_before
    )
    held = Hold.objects.filter(wallet_id=wallet_id, status=Hold.Status.HELD).exists()
    return {
        "clients": CLIENTS,
        "seconds": round(pairs_s, 2),
        "pairs": pairs["pairs"],
        "pairs_per_s": round(pairs_per_s, 1),
        "postings_per_s": round(2 * pairs_per_s, 1),
        "pair_p95_ms": round(p95(pairs["latencies_ms"]), 2),
        "bare_updates_per_s_before": round(bare_rates[0], 1),
        "bare_updates_per_s_after": round(bare_rates[1], 1),
        "ratio_to_limit": round(pairs_per_s / max(bare_rates), 3),
        # Every wallet of the database: the one busy wallet and the spread ones.
        "ledger_sound": selectors.ledger_discrepancies() == {} and not held,
        "captures_match_pairs": captures == pairs["pairs"],
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(load_after, 2),
        "cpu_count": os.cpu_count(),
        # Where the CPU went while the pairs ran: the clients' Python, and everything on the
        # machine (PostgreSQL, the clients, anyone else), per pair and as a share of all cores.
        "client_cpu_ms_per_pair": round(1000 * pairs["cpu_s"] / pairs["pairs"], 3),
        "machine_cpu_ms_per_pair": round(1000 * pairs["machine_cpu_s"] / pairs["pairs"], 3),
        "machine_busy_pct": round(100 * pairs["machine_cpu_s"] / (pairs_s * os.cpu_count()), 1),
        "spread_pairs_per_s": round(spread["pairs"] / spread_s, 1),
        "spread_machine_cpu_ms_per_pair": round(
            1000 * spread["machine_cpu_s"] / spread["pairs"], 3
        ),
        "machine_cpu_ms_per_bare_update": round(
            1000
            * (bare_before["machine_cpu_s"] + bare_after["machine_cpu_s"])
            / (bare_before["updates"] + bare_after["updates"]),
            3,
        ),
    }
