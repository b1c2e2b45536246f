"""Ledger rows refer to wallets, accounts, transactions and holds without constraint checks;
the database refuses to delete those rows instead (PostgreSQL).

Every posting derives the ids it writes from rows it reads or writes in the same statement, so
the checks could never fail, yet they ran at commit inside the wallet's critical section.
TRUNCATE (what the test suite's flush uses) is not a row operation and stays possible.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLES = ("billing_wallet", "billing_account", "billing_hold")

FUNCTION = """
CREATE OR REPLACE FUNCTION billing_refuse_delete() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows refer to this row: DELETE on % refused', TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_kept BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION billing_refuse_delete()"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_kept ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS billing_refuse_delete()")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_finance_exports"),
    ]

    operations = [
        migrations.AlterField(
            model_name="hold",
            name="wallet",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="holds",
                to="billing.wallet",
                verbose_name="wallet",
            ),
        ),
        migrations.AlterField(
            model_name="holdevent",
            name="hold",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="events",
                to="billing.hold",
                verbose_name="fee hold",
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="billing.account",
                verbose_name="account",
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="transaction",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="billing.ledgertransaction",
                verbose_name="transaction",
            ),
        ),
        migrations.AlterField(
            model_name="ledgertransaction",
            name="wallet",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="transactions",
                to="billing.wallet",
                verbose_name="wallet",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
