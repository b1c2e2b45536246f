"""Shipment anomalies for the workbench tests: shipped orders, stalls found by the overdue scan,
evidence files under the test's own folder."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from couriers.models import Courier
from intercepts.models import Order, ShipmentAnomaly
from intercepts.services import shipment_checks
from intercepts.services.shipping import ship_order
from tests.intercepts.shipping_helpers import new_waybill, paid_order

Kind = ShipmentAnomaly.Kind
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 255, 255)).save(buffer, format="PDF")
    return buffer.getvalue()


def upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def stored_files(location) -> list:
    return sorted(path for path in location.rglob("*") if path.is_file())


@pytest.fixture
def uploads_dir(settings, tmp_path):
    """Shipment uploads and anomaly evidence written under the test's own folder."""
    location = tmp_path / "shipment-uploads"
    settings.STORAGES = {
        **settings.STORAGES,
        "shipment_uploads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location), "base_url": None},
        },
    }
    from django.core.files.storage import storages

    from intercepts.models import ShipmentAnomalyEvidence, ShipmentUpload

    # The fields resolved their storage when the models loaded; point them at the test's.
    fields = [
        ShipmentAnomalyEvidence._meta.get_field("file"),
        ShipmentUpload._meta.get_field("file"),
    ]
    previous = [field.storage for field in fields]
    for field in fields:
        field.storage = storages["shipment_uploads"]
    yield location
    for field, storage in zip(fields, previous, strict=True):
        field.storage = storage


def shipped(shop, actor, *, days_ago: int = 0, total_fen: int | None = None, **order) -> Order:
    """A paid order shipped ``days_ago`` days ago (paid a day before), through the service."""
    at = timezone.now() - timedelta(days=days_ago)
    paid = paid_order(shop, paid_at=at - timedelta(days=1), **order)
    if total_fen is not None:
        Order.objects.filter(pk=paid.pk).update(total_fen=total_fen)
    ship_order(
        actor=actor,
        order=paid,
        courier=Courier.objects.get(code="ZTO"),
        waybill_no=new_waybill(),
        channel="workbench",
        now=at,
    )
    paid.refresh_from_db()
    return paid


def stalls_found() -> None:
    """The hourly scan, run now."""
    shipment_checks.shipments_scan_overdue(now=timezone.now())


def stall_10d(order: Order) -> ShipmentAnomaly:
    return ShipmentAnomaly.objects.get(order=order, kind=Kind.STALLED_10D)
