"""Run web, Celery worker, Celery beat, the sandbox courier and the demo's traffic together;
one Ctrl-C stops all."""

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from couriers.models import Courier
from intercepts.demo import DEMO_HOURS_PER_SECOND, DEMO_TICK_SECONDS, repoint_sandbox_accounts
from intercepts.tracking.polling import courier_queue


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (a lingering closed socket does not
    count: the servers reuse such an address too)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port_after(host: str, port: int, *, avoid: set[int]) -> int | None:
    """The first port above ``port`` nobody listens on and no other server of ours takes."""
    for candidate in range(port + 1, min(port + 100, 65536)):
        if candidate not in avoid and not port_taken(host, candidate):
            return candidate
    return None


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class Command(BaseCommand):
    help = (
        "Start web, Celery worker, Celery beat, the sandbox courier and the demo's traffic in "
        "the foreground; Ctrl-C stops all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
        parser.add_argument("--sandbox-port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument(
            "--hours-per-second",
            type=float,
            default=DEMO_HOURS_PER_SECOND,
            help="The sandbox courier's pace: simulated hours per real second (default one "
            "simulated minute per second, so a parcel stays interceptable for many minutes).",
        )
        parser.add_argument(
            "--check-ports",
            action="store_true",
            help="Only check that both ports are free, and stop (make run does this first, "
            "before the demo's accounts are pointed at them).",
        )
        parser.add_argument(
            "--traffic-every",
            type=float,
            default=DEMO_TICK_SECONDS,
            help="Seconds between the demo's new orders and refund requests (0: none).",
        )

    @staticmethod
    def check_ports(host: str, *, port: int, sandbox_port: int) -> None:
        """One line naming what to change, with a port that is free, not a traceback from
        whichever server starts second."""
        if port == sandbox_port:
            raise CommandError(f"PORT and SANDBOX_PORT are both {port}; give them two ports.")
        ports = {"PORT": port, "SANDBOX_PORT": sandbox_port}
        for variable, number in ports.items():
            if port_taken(host, number):
                free = free_port_after(host, number, avoid=set(ports.values()))
                hint = f" (make run {variable}={free})" if free else ""
                raise CommandError(
                    f"Port {number} on {host} is already in use; set {variable} to a free "
                    f"port{hint}."
                )

    def handle(
        self,
        *args,
        host,
        port,
        sandbox_port,
        hours_per_second,
        traffic_every,
        check_ports=False,
        **options,
    ):
        if hours_per_second <= 0:
            raise CommandError("--hours-per-second must be positive")
        self.check_ports(host, port=port, sandbox_port=sandbox_port)
        if check_ports:
            return
        python = sys.executable
        codes = Courier.objects.values_list("code", flat=True)
        queues = ",".join(["celery", *(courier_queue(code) for code in codes)])
        # Polling keeps pace with the sandbox's clock (2 h in transit -> 2 min at the default).
        scale = 1 / (3600 * hours_per_second)
        # Every process agrees on the ports, so the settings built from them do too.
        env = {
            **os.environ,
            "PORT": str(port),
            "SANDBOX_PORT": str(sandbox_port),
            "TRACKING_POLL_SCALE": str(scale),
        }
        # The demo's gateway accounts name the sandbox and our push URL: point them here.
        repoint_sandbox_accounts(
            sandbox_url=os.environ.get("COURIER_SANDBOX_URL") or f"http://127.0.0.1:{sandbox_port}",
            site_url=os.environ.get("SITE_URL") or f"http://{_local(host)}:{port}",
        )
        commands = {
            "sandbox": [
                python, "manage.py", "courier_sandbox", "--paced",
                "--port", str(sandbox_port), "--hours-per-second", str(hours_per_second),
            ],
            "web": [python, "manage.py", "runserver", "--noreload", f"{host}:{port}"],
            "worker": [
                python, "-m", "celery", "-A", "config", "worker",
                "-l", "INFO", "--concurrency", "2", "-Q", queues,
            ],
            "beat": [python, "-m", "celery", "-A", "config", "beat", "-l", "INFO"],
        }  # fmt: skip
        if traffic_every > 0:
            commands["traffic"] = [
                python, "manage.py", "demo_traffic", "--every", str(traffic_every),
            ]  # fmt: skip
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
