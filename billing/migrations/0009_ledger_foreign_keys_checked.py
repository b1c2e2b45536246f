"""The ledger's references are foreign keys the database checks again."""

import django.db.models.deletion
from django.db import migrations, models

TABLES = ("billing_wallet", "billing_account", "billing_hold")


def drop_delete_triggers(apps, schema_editor):
    # The foreign keys refuse those deletes now; 0007's triggers stood in for them.
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_kept ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS billing_refuse_delete()")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0008_top_ups'),
    ]

    operations = [
        migrations.RunPython(drop_delete_triggers, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='hold',
            name='wallet',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='holds', to='billing.wallet', verbose_name='wallet'),
        ),
        migrations.AlterField(
            model_name='holdevent',
            name='hold',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='events', to='billing.hold', verbose_name='fee hold'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='billing.account', verbose_name='account'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='transaction',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='billing.ledgertransaction', verbose_name='transaction'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='wallet',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='billing.wallet', verbose_name='wallet'),
        ),
        migrations.AlterField(
            model_name='ledgertransaction',
            name='wallet',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='transactions', to='billing.wallet', verbose_name='wallet'),
        ),
    ]
