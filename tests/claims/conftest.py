"""Claims for the fixed cast: shop A's parcel intercepted successfully (its fee paid from a
funded wallet), photos and PDFs made in the test, and a claim filed through the service."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from billing import services as billing_services
from claims import services
from claims.models import Claim
from intercepts.models import InterceptRequest
from tests.factories import make_intercept

Status = InterceptRequest.Status


def jpeg_bytes(size=(64, 48), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def png_bytes(size=(32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (255, 255, 255)).save(buffer, format="PDF")
    return buffer.getvalue()


def upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def evidence_dir(settings, tmp_path):
    """Evidence written under the test's own folder, so a test can see what was stored."""
    location = tmp_path / "claim-evidence"
    settings.STORAGES = {
        **settings.STORAGES,
        "claim_evidence": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location), "base_url": None},
        },
    }
    from django.core.files.storage import storages

    from claims.models import ClaimEvidence

    # The field resolved its storage when the model loaded; point it at the test's.
    field = ClaimEvidence._meta.get_field("file")
    previous = field.storage
    field.storage = storages["claim_evidence"]
    yield location
    field.storage = previous


def stored_files(location) -> list:
    return sorted(path for path in location.rglob("*") if path.is_file())


@pytest.fixture
def wallet_a(world):
    wallet = billing_services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)
    billing_services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=100_000, external_reference="BANK-CLAIMS-A"
    )
    return wallet


def intercept_succeeded(world, parcel=None, after_sale=None):
    return make_intercept(
        world.owner,
        parcel or world.parcel_a,
        after_sale or world.after_sale_a,
        Status.SUBMITTED,
        Status.ACCEPTED,
        Status.SUCCEEDED,
    )


@pytest.fixture
def caught_a(world, wallet_a, evidence_dir):
    """Shop A's parcel (one line of 129.00 yuan), intercepted successfully."""
    return intercept_succeeded(world)


@pytest.fixture
def claim_a(world, caught_a) -> Claim:
    return services.claim_file(
        actor=world.owner,
        intercept=caught_a,
        reason=Claim.Reason.LOST,
        amount_claimed_fen=12900,
        description="退回途中丢失",
        files=[upload("photo.jpg", jpeg_bytes(), "image/jpeg")],
    )
