"""Orders shipped before shipments were recorded: their receiver and shipping time from their
first parcel, and a shipment per parcel, so the rules count the addresses already used."""

import re
import unicodedata

from django.db import migrations


def _receiver_key(phone: str, address: str) -> str:
    # As ``intercepts.services.shipping.receiver_key`` wrote it when this migration was made.
    digits = re.sub(r"\D", "", phone or "")[-11:]
    text = unicodedata.normalize("NFKC", address or "").upper()
    text = re.sub(r"[\s,，.。;；:：#＃\-—_/\\()（）]+", "", text)
    return f"{digits}|{text}"[:300]


def forwards(apps, schema_editor):
    Order = apps.get_model("intercepts", "Order")
    Parcel = apps.get_model("intercepts", "Parcel")
    Shipment = apps.get_model("intercepts", "Shipment")
    shipments = []
    for parcel in Parcel.objects.order_by("order_id", "id").iterator(chunk_size=2000):
        order = Order.objects.get(pk=parcel.order_id)
        shipped_at = parcel.shipped_at or parcel.created_at
        changed = []
        if not order.receiver_address:
            order.receiver_name = parcel.receiver_name
            order.receiver_phone = parcel.receiver_phone
            order.receiver_address = parcel.receiver_address
            changed += ["receiver_name", "receiver_phone", "receiver_address"]
        if order.shipped_at is None or shipped_at < order.shipped_at:
            order.shipped_at = shipped_at
            changed.append("shipped_at")
        if changed:
            order.save(update_fields=changed)
        shipments.append(
            Shipment(
                shop_id=parcel.shop_id,
                order_id=parcel.order_id,
                parcel_id=parcel.pk,
                receiver_key=_receiver_key(parcel.receiver_phone, parcel.receiver_address),
                receiver_address=parcel.receiver_address,
                channel="workbench",
                shipped_at=shipped_at,
            )
        )
    Shipment.objects.bulk_create(shipments, batch_size=2000, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("intercepts", "0010_shipment_checks")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
