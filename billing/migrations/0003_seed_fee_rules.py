"""Seed the return-to-sender fees published by Douyin: ZTO 3 yuan, Yunda 3 yuan, YTO 4 yuan
(courier service plus return freight, charged only on success)."""

from datetime import UTC, datetime

from django.db import migrations

# Courier codes as seeded by couriers/migrations/0002_seed_couriers.py.
FEES = [("ZTO", "return", 300), ("YUNDA", "return", 300), ("YTO", "return", 400)]
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def seed(apps, schema_editor):
    Courier = apps.get_model("couriers", "Courier")
    FeeRule = apps.get_model("billing", "FeeRule")
    for code, action, amount_fen in FEES:
        courier = Courier.objects.filter(code=code).first()
        if courier is None:
            continue
        FeeRule.objects.get_or_create(
            courier=courier,
            action=action,
            valid_from=SINCE,
            defaults={"amount_fen": amount_fen},
        )


def unseed(apps, schema_editor):
    FeeRule = apps.get_model("billing", "FeeRule")
    for code, action, _amount in FEES:
        FeeRule.objects.filter(courier__code=code, action=action, valid_from=SINCE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_append_only_ledger"),
        ("couriers", "0002_seed_couriers"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
