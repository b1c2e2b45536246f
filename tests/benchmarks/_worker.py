"""The entry point of a benchmark's worker processes (``multiprocessing`` with ``spawn``).

A spawned process starts a fresh interpreter, so it must set Django up before it can import a
benchmark module (they import models at the top). This module imports nothing from Django at
import time; the parent's environment, which the runner pointed at the benchmark database and
Redis, is inherited.

A job is named ``"package.module:function"``; ``function(share, options)`` prepares everything
that is not part of the work measured (connections, clients, request bodies) and returns
``run(deadline) -> dict``. The process reports ready, waits for the common start signal, runs,
and reports its figures with the monotonic times it started and finished (CLOCK_MONOTONIC is
system-wide on Linux, so the parent can compare them across processes).
"""

import importlib
import logging
import time
import traceback
from queue import Empty


def main(job: str, index: int, share, options: dict, ready, go, results) -> None:
    try:
        import django

        django.setup()
        # httpx logs every request at INFO: thousands of lines that would bury the figures.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        module_name, _, function_name = job.partition(":")
        run = getattr(importlib.import_module(module_name), function_name)(share, options)
    except BaseException:
        ready.put((index, traceback.format_exc()))
        return
    ready.put((index, None))
    go.wait()
    started, cpu_started = time.monotonic(), time.process_time()
    try:
        profile_path = options.get("profile_path")
        if profile_path and index == 0:
            # One worker under cProfile tells where the time goes without slowing the others.
            import cProfile

            # "cpu" times the process's CPU (what the two cores are short of); anything else,
            # the wall clock (which also shows the waits on HTTP and PostgreSQL).
            cpu = options.get("profile_timer") == "cpu"
            timer = time.process_time if cpu else time.perf_counter
            profiler = cProfile.Profile(timer)
            figures = profiler.runcall(run, started + options["budget_s"])
            profiler.dump_stats(profile_path)
        else:
            figures = run(started + options["budget_s"])
        finished, cpu = time.monotonic(), time.process_time() - cpu_started
        results.put(
            {"index": index, "started": started, "finished": finished, "cpu_s": cpu, **figures}
        )
    except BaseException:
        results.put({"index": index, "error": traceback.format_exc()})
    finally:
        from django.db import connections

        connections.close_all()


def receive(queue, processes, *, timeout: float):
    """The next message on ``queue``, failing fast if a worker died without sending one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return queue.get(timeout=1)
        except Empty:
            dead = [p.name for p in processes if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"worker process {dead[0]} died") from None
            if time.monotonic() > deadline:
                raise
