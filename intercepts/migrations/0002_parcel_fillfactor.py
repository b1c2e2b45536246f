"""Free room in each page of the parcels' table lets the poll lease be a heap-only update
(PostgreSQL only)."""

from django.db import migrations


def parcel_fillfactor(apps, schema_editor, value="80"):
    if schema_editor.connection.vendor == "postgresql":
        table = apps.get_model("intercepts", "Parcel")._meta.db_table
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {value})")


def parcel_fillfactor_reset(apps, schema_editor):
    parcel_fillfactor(apps, schema_editor, value="100")


class Migration(migrations.Migration):
    dependencies = [("intercepts", "0001_initial")]
    operations = [migrations.RunPython(parcel_fillfactor, parcel_fillfactor_reset)]
