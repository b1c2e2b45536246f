"""The export benchmark's measurements, each run in a fresh process (see ``export.py``).

Imports nothing from Django at module level: a spawned process sets Django up first.
"""

import os
import time
import traceback


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), which starts afresh at exec. (getrusage's
    ru_maxrss does not: it keeps the size of the process this one was forked from.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(job: str, form: dict, queue) -> None:
    try:
        import django

        django.setup()
        queue.put({"export": _export, "copy": _copy}[job](form))
    except BaseException:
        queue.put({"error": traceback.format_exc()})


def _export(form: dict) -> dict:
    """In a fresh process: download the CSV as finance and report time, bytes, lines, RSS."""
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(User.objects.get(username="bench-export-finance"))
    url = reverse("admin:billing_export_run")
    before_mb = _peak_rss_mb()  # Django and the app loaded, nothing exported yet
    started = time.perf_counter()
    response = client.post(url, form)
    assert response.status_code == 200 and response.streaming, response.status_code
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    response.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bytes": size,
        "lines": lines,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_export_mb": before_mb,
    }


def _copy(form: dict) -> dict:
    """In a fresh process: COPY (the export's own query) TO STDOUT, read to the end."""
    from datetime import date

    import psycopg

    from billing.exports import ExportSpec, export_rows

    spec = ExportSpec(
        kind="fees",
        date_from=date.fromisoformat(form["date_from"]),
        date_to=date.fromisoformat(form["date_to"]),
        shop_id=int(form["shop"]),
    )
    from django.db import connection as django_connection

    with django_connection.cursor() as cursor:
        inner = cursor.mogrify(*export_rows(spec).query.sql_with_params())
    conn = psycopg.connect(os.environ["DATABASE_URL"])
    started = time.perf_counter()
    size = lines = 0
    with conn.cursor() as cursor, cursor.copy(f"COPY ({inner}) TO STDOUT") as copy:
        for block in copy:
            size += len(block)
            lines += bytes(block).count(b"\n")
    seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds, "bytes": size, "lines": lines}
