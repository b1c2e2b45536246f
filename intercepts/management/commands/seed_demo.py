"""Load the demo data (safe to run twice) and print the demo logins."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from intercepts.demo import seed_demo


class Command(BaseCommand):
    help = "Create two demo shops, a user per role and a few hundred orders; safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Load the demo even with debug off (its passwords are public).",
        )

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "Debug is off: this looks like a real deployment, and the demo users have "
                "public passwords. Use --force to load the demo anyway."
            )
        result = seed_demo()
        self.stdout.write(
            f"Demo data: {result['shops']} new shop(s), {result['orders']} new order(s)."
        )
        self.stdout.write("Demo logins (username / password):")
        for username, password, description in result["users"]:
            self.stdout.write(f"  {username:<9} {password:<18} {description}")
