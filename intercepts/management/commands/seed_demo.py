"""Load the demo data (safe to run twice) and print the demo logins."""

from django.core.management.base import BaseCommand

from intercepts.demo import seed_demo


class Command(BaseCommand):
    help = "Create two demo shops, a user per role and a few hundred orders; safe to run twice."

    def handle(self, *args, **options):
        result = seed_demo()
        self.stdout.write(
            f"Demo data: {result['shops']} new shop(s), {result['orders']} new order(s)."
        )
        self.stdout.write("Demo logins (username / password):")
        for username, password, description in result["users"]:
            self.stdout.write(f"  {username:<9} {password:<18} {description}")
