"""Migrate the demo's embedded SQLite database, starting it afresh if an older layout made it.

The demo database (``var/db.sqlite3``) holds only the seeded demo. When its migration history
names migrations this checkout no longer has (the history was rebuilt when the shops moved to
their own app), it is moved aside and a new one is made, with one line saying so, instead of
a traceback from ``migrate``. Any other database is migrated as it is.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone


class Command(BaseCommand):
    help = "Migrate; a demo SQLite database from an older layout is moved aside and remade."

    def handle(self, *args, **options):
        if self._stale_demo_database():
            path = settings.DATABASES["default"]["NAME"]
            connection.close()
            aside = path.with_name(f"{path.name}.{timezone.now():%Y%m%d%H%M%S}.old")
            path.rename(aside)
            self.stdout.write(
                f"The demo database was made by an older version; it is kept as {aside.name} "
                "and a new one is made."
            )
        call_command("migrate", interactive=False, verbosity=options["verbosity"])

    def _stale_demo_database(self) -> bool:
        path = settings.DATABASES["default"]["NAME"]
        if connection.vendor != "sqlite" or not path or not str(path).endswith("db.sqlite3"):
            return False
        if not path.exists():
            return False
        loader = MigrationLoader(connection)
        ours = {"shops", "billing", "intercepts", "claims", "couriers"}
        return any(
            key not in loader.disk_migrations for key in loader.applied_migrations if key[0] in ours
        )
