"""Run the benchmarks: ``python -m tests.benchmarks`` runs them all, ``... changelist`` runs one.

Benchmarks measure the production database, so PostgreSQL is required: the runner uses
BENCH_DATABASE_URL (default: a local ``intercepts_bench`` database, created if missing),
BENCH_REDIS_URL (default: Redis db 15) and BENCH_BROKER_URL (default: Redis db 14), never the
shell's settings, and it always migrates before running. Django runs with DEBUG off unless
DJANGO_DEBUG says otherwise.
Each benchmark's figures are printed beside their limits and written as flat JSON to
``var/bench/<name>.json``; the exit status is 1 if any figure misses its limit.
"""

import argparse
import importlib
import json
import os
import pkgutil
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/intercepts_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"


def configure_environment() -> None:
    # Benchmarks load a million rows and demo users with public passwords: they never use the
    # shell's DATABASE_URL, only a database of their own.
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["CELERY_BROKER_URL"] = os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    # Measure what production runs: DEBUG off (no query log, no template debug data). The test
    # client's host must then be allowed, and settings insist on a real-looking secret key.
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    # The benchmarks sign their users in directly: no second step to pass.
    os.environ.setdefault("WORKBENCH_REQUIRE_2FA", "0")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist yet."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(f"Benchmarks need PostgreSQL; DATABASE_URL is {url!r}.")
    name = conninfo_to_dict(url).get("dbname")
    if not name:
        sys.exit("DATABASE_URL names no database.")
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"Created database {name}.")


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def discover() -> dict[str, str]:
    """Benchmark name -> module name, for every public module in this package."""
    found = {}
    for info in pkgutil.iter_modules([str(PACKAGE_DIR)]):
        if info.name.startswith("_") or info.ispkg:
            continue
        found[info.name.removeprefix("bench_")] = info.name
    return found


def report(name: str, figures: dict, limits: dict) -> bool:
    """Print each figure beside its limit; True if every limit is met."""
    ok = True
    width = max(len(key) for key in figures) if figures else 0
    print(f"\n== {name} ==")
    for key, value in figures.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        limit = limits.get(key)
        if limit is None:
            print(f"  {key:<{width}}  {shown:>12}")
            continue
        passed = limit.passes(value)
        ok &= passed
        print(f"  {key:<{width}}  {shown:>12}  limit {limit!s:<10} {'PASS' if passed else 'FAIL'}")
    for key in limits.keys() - figures.keys():
        ok = False
        print(f"  {key:<{width}}  {'missing':>12}  limit {limits[key]!s:<10} FAIL")
    return ok


def main(argv: list[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(available)}")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in available]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; have {', '.join(available)}")

    configure_environment()
    ensure_database(os.environ["DATABASE_URL"])
    setup_django()

    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    all_ok = True
    for name in args.names or sorted(available):
        # Imported only now: benchmark modules import models, which need django.setup().
        module = importlib.import_module(f"{__package__}.{available[name]}")
        started = time.perf_counter()
        figures = module.run()
        print(f"\n{name}: finished in {time.perf_counter() - started:.1f} s")
        (out_dir / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
        all_ok &= report(name, figures, getattr(module, "LIMITS", {}))
    print("\nAll benchmarks within their limits." if all_ok else "\nSome figures missed limits.")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
