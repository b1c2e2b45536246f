"""The evidence a merchant sends with an answer to a shipment anomaly: checked before anything
is written, and deleted again when the transaction that stored it does not commit."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from intercepts.models import ShipmentAnomaly, ShipmentAnomalyEvidence
from intercepts.services.anomaly_evidence import (
    discard_on_rollback,
    evidence_check,
    evidence_store,
)
from tests.intercepts import anomaly_helpers
from tests.intercepts.anomaly_helpers import (
    EXECUTABLE,
    jpeg_bytes,
    pdf_bytes,
    shipped,
    stall_10d,
    stalls_found,
    stored_files,
    upload,
)

pytestmark = pytest.mark.django_db
uploads_dir = anomaly_helpers.uploads_dir


@pytest.fixture
def stall_a(world, uploads_dir):
    order = shipped(world.shop_a, world.owner, days_ago=11)
    stalls_found()
    return stall_10d(order)


def test_a_photo_and_a_pdf_pass_the_check():
    checked = evidence_check(
        [upload("a.jpg", jpeg_bytes(), "image/jpeg"), upload("b.pdf", pdf_bytes())]
    )
    assert [item.content_type for item in checked] == ["image/jpeg", "application/pdf"]


def test_a_renamed_executable_is_refused_by_its_bytes():
    with pytest.raises(ValidationError) as exc:
        evidence_check([upload("invoice.pdf", EXECUTABLE, "application/pdf")])
    assert exc.value.messages == [
        "“invoice.pdf”不是照片（JPEG、PNG、WebP）或 PDF（无论文件名如何），凭证只接受这几种文件。"
    ]


def test_the_generic_size_limit_holds(settings):
    settings.EVIDENCE_MAX_BYTES = 1024 * 1024
    big = upload("big.jpg", jpeg_bytes() + b"\0" * (1024 * 1024), "image/jpeg")
    with pytest.raises(ValidationError) as exc:
        evidence_check([big])
    assert exc.value.messages == ["“big.jpg”太大：每个文件最大 1 MB。"]


def test_the_generic_count_limit_holds(settings):
    settings.EVIDENCE_MAX_FILES = 1
    with pytest.raises(ValidationError) as exc:
        evidence_check([upload(f"{n}.jpg", jpeg_bytes(), "image/jpeg") for n in range(2)])
    assert exc.value.messages == ["一次说明最多附 1 个文件，当前选择了 2 个。"]


def test_stored_files_are_deleted_when_the_transaction_rolls_back(world, stall_a, uploads_dir):
    checked = evidence_check([upload("a.jpg", jpeg_bytes(), "image/jpeg")])
    with pytest.raises(RuntimeError), discard_on_rollback(), transaction.atomic():
        evidence_store(anomaly=stall_a, files=checked, actor=world.owner)
        raise RuntimeError("the commit failed")
    assert (ShipmentAnomalyEvidence.objects.count(), stored_files(uploads_dir)) == (0, [])


def test_a_failing_row_deletes_the_files_this_call_wrote(world, stall_a, uploads_dir):
    checked = evidence_check(
        [upload("a.jpg", jpeg_bytes(), "image/jpeg"), upload("b.jpg", jpeg_bytes(), "image/jpeg")]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        evidence_store(anomaly=stall_a, files=checked, actor=None)
    assert stored_files(uploads_dir) == []


def test_the_answer_stores_its_evidence_once_committed(world, stall_a, uploads_dir):
    from intercepts.services import shipment_checks

    shipment_checks.anomaly_answer(
        actor=world.agent,
        anomaly=stall_a,
        explanation="包裹已到驿站",
        files=[upload("驿站.jpg", jpeg_bytes(), "image/jpeg")],
    )
    assert (stall_a.status, len(stored_files(uploads_dir))) == (
        ShipmentAnomaly.Status.ANSWERED,
        1,
    )
