"""Run web, Celery worker, Celery beat and the sandbox courier together; one Ctrl-C stops all."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from couriers.models import Courier
from intercepts.tracking.polling import courier_queue


class Command(BaseCommand):
    help = (
        "Start web, Celery worker, Celery beat and the sandbox courier in the foreground; "
        "Ctrl-C stops all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--sandbox-port", default="8765")
        parser.add_argument(
            "--hours-per-second",
            default="0.5",
            help="The sandbox courier's clock: simulated hours per real second.",
        )

    def handle(self, *args, host, port, sandbox_port, hours_per_second, **options):
        python = sys.executable
        codes = Courier.objects.values_list("code", flat=True)
        queues = ",".join(["celery", *(courier_queue(code) for code in codes)])
        # Polling keeps pace with the sandbox's accelerated clock (2 h in transit -> seconds).
        scale = 1 / (3600 * float(hours_per_second))
        # The sandbox dates its scans on that clock, far ahead of ours: accept them.
        env = {
            **os.environ,
            "TRACKING_POLL_SCALE": str(scale),
            "COURIER_SCAN_FUTURE_SKEW_S": "off",
        }
        commands = {
            "sandbox": [
                python, "manage.py", "courier_sandbox",
                "--port", sandbox_port, "--hours-per-second", hours_per_second,
            ],
            "web": [python, "manage.py", "runserver", "--noreload", f"{host}:{port}"],
            "worker": [
                python, "-m", "celery", "-A", "config", "worker",
                "-l", "INFO", "--concurrency", "2", "-Q", queues,
            ],
            "beat": [python, "-m", "celery", "-A", "config", "beat", "-l", "INFO"],
        }  # fmt: skip
        processes = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}
        self.stdout.write(f"Workbench: http://{host}:{port}/admin/  (Ctrl-C stops everything)")

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with {process.returncode}; stopping.")
                        stopping = True
                time.sleep(0.5)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
