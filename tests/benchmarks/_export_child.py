"""The export benchmark's measurements, each run in a fresh process (see ``export.py``).

Imports nothing from Django at module level: a spawned process sets Django up first.
"""

import os
import time
import traceback


def main(job: str, form: dict, queue) -> None:
    try:
        import django

        django.setup()
        queue.put({"export": _export, "copy": _copy}[job](form))
    except BaseException:
        queue.put({"error": traceback.format_exc()})


def _export(form: dict) -> dict:
    """In a fresh process: download the CSV as finance and report time, bytes, lines, RSS."""
    import resource

    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(User.objects.get(username="bench-export-finance"))
    url = reverse("admin:billing_export_run")
    started = time.perf_counter()
    response = client.post(url, form)
    assert response.status_code == 200 and response.streaming, response.status_code
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    response.close()
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "bytes": size, "lines": lines, "peak_rss_mb": peak_kb / 1024}


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
