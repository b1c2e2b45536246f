"""The production processes a benchmark runs against: gunicorn serving the app, and a Celery
worker on the benchmark's own Redis broker."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def web_server(application: str, workers: int, threads: int):
    """gunicorn serving ``application`` as in production: ``workers`` processes of ``threads``
    threads that keep connections alive. Yields its address once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            application,
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=gthread",
            f"--threads={threads}",
            "--keep-alive=60",
            "--log-level=warning",
        ],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the benchmark's web server did not start") from None
                time.sleep(0.2)
        yield {"host": "127.0.0.1", "port": port}
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def celery_worker(*, queues: tuple[str, ...], pool: str = "solo", concurrency: int = 1):
    """A Celery worker on these queues, as production runs one, on the benchmark's own Redis
    broker, emptied first."""
    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "--app=config",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)
