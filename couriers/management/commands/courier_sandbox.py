"""Run the sandbox courier (couriers/sandbox.py) until interrupted.

    python manage.py courier_sandbox --port 8765 --hours-per-second 1 --seed 42
    python manage.py courier_sandbox --error-rate 0.1 --latency-ms 300
    python manage.py courier_sandbox --paced --hours-per-second 0.0167   # the demo's pace

Accounts pointing at it: kuaidi100 ``http://127.0.0.1:8765/kuaidi100``, SF
``http://127.0.0.1:8765/sf``, Kdniao ``http://127.0.0.1:8765/kdniao/Ebusiness/EbusinessOrderHandle.aspx``,
with the credentials of ``couriers.sandbox.SANDBOX_ACCOUNTS``.
"""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from couriers.sandbox import GATEWAY_PATHS, SANDBOX_ACCOUNTS, FaultOptions, SandboxServer


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError("a rate is between 0 and 1")
    return value


class Command(BaseCommand):
    help = "Run the sandbox courier: Kuaidi100, SF and Kdniao gateways over simulated parcels."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port",
            type=int,
            default=settings.SANDBOX_PORT,
            help="Default SANDBOX_PORT (8765), the port the demo's accounts name.",
        )
        parser.add_argument(
            "--hours-per-second",
            type=float,
            default=1.0,
            help="Simulated hours that pass per real second (default 1).",
        )
        parser.add_argument(
            "--paced",
            action="store_true",
            help="Date scans at the real time and shorten the waits instead of running the "
            "clock ahead, so no scan lies in the future (the demo runs it so).",
        )
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--latency-ms", type=int, default=0)
        parser.add_argument("--error-rate", type=_rate, default=0.0, help="HTTP 500 answers.")
        parser.add_argument("--timeout-rate", type=_rate, default=0.0, help="Hung requests.")
        parser.add_argument("--reset-rate", type=_rate, default=0.0, help="Reset connections.")
        parser.add_argument("--malformed-rate", type=_rate, default=0.0, help="Cut JSON bodies.")
        parser.add_argument(
            "--ratelimit-rate", type=_rate, default=0.0, help="The protocols' rate-limit answers."
        )
        parser.add_argument(
            "--hang-seconds", type=float, default=30.0, help="How long a hung request hangs."
        )
        parser.add_argument(
            "--intercept-success",
            type=_rate,
            default=None,
            help="Override every eligible stage's intercept success probability.",
        )
        parser.add_argument("--sf-push-url", default="", help="SF's portal-registered push URL.")
        parser.add_argument(
            "--kdniao-push-url", default="", help="Kdniao's portal-registered push URL."
        )

    def handle(self, *args, **options):
        if options["hours_per_second"] <= 0:
            raise CommandError("--hours-per-second must be positive")
        if options["verbosity"] >= 2:
            logging.getLogger("couriers.sandbox").setLevel(logging.DEBUG)
        faults = FaultOptions(
            latency_ms=options["latency_ms"],
            error_rate=options["error_rate"],
            timeout_rate=options["timeout_rate"],
            reset_rate=options["reset_rate"],
            malformed_rate=options["malformed_rate"],
            ratelimit_rate=options["ratelimit_rate"],
            hang_s=options["hang_seconds"],
        )
        push_urls = {
            protocol: options[f"{protocol}_push_url"]
            for protocol in ("sf", "kdniao")
            if options[f"{protocol}_push_url"]
        }
        server = SandboxServer(
            host=options["host"],
            port=options["port"],
            speed=options["hours_per_second"] * 3600,
            seed=options["seed"],
            faults=faults,
            intercept_success=options["intercept_success"],
            push_urls=push_urls,
            paced=options["paced"],
        )
        try:
            url = server.start()
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {options['host']}:{options['port']}: {exc}; set SANDBOX_PORT "
                "(or --port) to a free port."
            ) from exc
        done = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: done.set())
        self.stdout.write(f"Sandbox courier at {url} (seed {options['seed']}):")
        for protocol, path in GATEWAY_PATHS.items():
            credentials = ", ".join(f"{k}={v}" for k, v in SANDBOX_ACCOUNTS[protocol].items())
            self.stdout.write(f"  {protocol}: {url}{path}  ({credentials})")
        self.stdout.write(f"  truth: {url}/sandbox/parcels/<waybill>")
        self.stdout.flush()
        try:
            # A timed wait, so the main thread gets to run the signal handlers.
            while not done.wait(0.5):
                pass
        finally:
            server.stop()
            self.stdout.write("Sandbox courier stopped.")
