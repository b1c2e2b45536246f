"""The demo's traffic: new orders and refund requests at a steady pace until interrupted."""

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from intercepts.demo import DEMO_TICK_SECONDS, demo_tick

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Keep the demo busy: each demo shop gets a new order and a refund request per step."

    def add_arguments(self, parser):
        parser.add_argument(
            "--every", type=float, default=DEMO_TICK_SECONDS, help="Seconds between steps."
        )

    def handle(self, *args, every, **options):
        if every <= 0:
            raise CommandError("--every must be positive")
        done = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: done.set())
        self.stdout.write(
            f"Demo traffic: a new order and refund request per shop every {every:g} s."
        )
        self.stdout.flush()
        while True:
            try:
                made = demo_tick()
            except Exception:
                # One bad step must not stop the demo (runall stops everything when one exits).
                logger.exception("demo traffic step failed")
            else:
                self.stdout.write(
                    f"Demo traffic: {made['orders']} new order(s), "
                    f"{made['after_sales']} refund request(s)."
                )
                self.stdout.flush()
            if done.wait(every):
                break
