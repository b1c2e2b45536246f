"""Filing a claim: on a succeeded intercept only, within the ceiling its parcel's own order
lines set, once per intercept, with evidence judged by its content."""

import re

import pytest

from billing.money import format_fen
from claims import services
from claims.models import Claim, ClaimEvidence
from claims.services import ClaimError
from intercepts.models import InterceptRequest
from tests.claims.conftest import (
    intercept_succeeded,
    jpeg_bytes,
    pdf_bytes,
    png_bytes,
    stored_files,
    upload,
)
from tests.factories import OrderLineFactory, ParcelFactory, make_intercept

pytestmark = pytest.mark.django_db

Status = InterceptRequest.Status


def _file(world, intercept, amount_fen, files=(), **kwargs):
    return services.claim_file(
        actor=world.owner,
        intercept=intercept,
        reason=kwargs.pop("reason", Claim.Reason.LOST),
        amount_claimed_fen=amount_fen,
        files=files,
        **kwargs,
    )


# --- The ceiling -----------------------------------------------------------------------------


def test_goods_worth_1500_yuan_are_capped_at_1000(world, wallet_a, evidence_dir):
    parcel = ParcelFactory(order__shop=world.shop_a)
    parcel.lines.set([OrderLineFactory(order=parcel.order, unit_price_fen=150_000)])
    intercept = intercept_succeeded(world, parcel=parcel, after_sale=None)

    assert services.claim_ceiling_fen(parcel) == (150_000, 100_000)
    with pytest.raises(ClaimError, match=re.escape("最高 1,000.00 元")):
        _file(world, intercept, 100_001)
    claim = _file(world, intercept, 100_000)
    assert (claim.goods_value_fen, claim.ceiling_fen, claim.amount_claimed_fen) == (
        150_000,
        100_000,
        100_000,
    )


def test_goods_worth_300_yuan_are_capped_at_300(world, wallet_a, evidence_dir):
    parcel = ParcelFactory(order__shop=world.shop_a)
    parcel.lines.set(
        [
            OrderLineFactory(order=parcel.order, unit_price_fen=10_000, quantity=2),
            OrderLineFactory(order=parcel.order, unit_price_fen=10_000),
        ]
    )
    intercept = intercept_succeeded(world, parcel=parcel, after_sale=None)

    assert services.claim_ceiling_fen(parcel) == (30_000, 30_000)
    with pytest.raises(ClaimError, match=re.escape(format_fen(30_000))):
        _file(world, intercept, 30_001)
    assert _file(world, intercept, 30_000).ceiling_fen == 30_000


def test_two_parcels_of_one_order_are_each_capped_by_their_own_lines(world, wallet_a, evidence_dir):
    first = ParcelFactory(order__shop=world.shop_a)
    order = first.order
    second = ParcelFactory(order=order)
    dear = OrderLineFactory(order=order, unit_price_fen=80_000)
    cheap = OrderLineFactory(order=order, unit_price_fen=5_000)
    first.lines.set([dear])
    second.lines.set([cheap])
    one = intercept_succeeded(world, parcel=first, after_sale=None)
    two = intercept_succeeded(world, parcel=second, after_sale=None)

    with pytest.raises(ClaimError, match=re.escape(format_fen(5_000))):
        _file(world, two, 5_001)
    assert _file(world, two, 5_000).ceiling_fen == 5_000
    assert _file(world, one, 80_000).ceiling_fen == 80_000


def test_the_ceiling_ignores_the_declared_value_typed_on_the_parcel(world, wallet_a, evidence_dir):
    # The stored declared value is no source: only the order lines the platform reported are.
    parcel = ParcelFactory(order__shop=world.shop_a, declared_value_fen=99_999_999)
    parcel.lines.set([OrderLineFactory(order=parcel.order, unit_price_fen=2_000)])
    intercept = intercept_succeeded(world, parcel=parcel, after_sale=None)

    with pytest.raises(ClaimError, match=re.escape(format_fen(2_000))):
        _file(world, intercept, 2_001)


def test_zero_and_negative_amounts_are_refused(world, caught_a):
    for amount in (0, -100):
        with pytest.raises(ClaimError, match="须大于 0 元"):
            _file(world, caught_a, amount)
    assert not Claim.objects.exists()


# --- Which intercepts, and who --------------------------------------------------------------


@pytest.mark.parametrize(
    "statuses",
    [
        (),
        (Status.SUBMITTED,),
        (Status.SUBMITTED, Status.ACCEPTED),
        (Status.SUBMITTED, Status.REJECTED),
        (Status.SUBMITTED, Status.ACCEPTED, Status.FAILED),
        (Status.SUBMITTED, Status.CANCELLED),
    ],
    ids=["created", "submitted", "accepted", "rejected", "failed", "cancelled"],
)
def test_a_claim_on_an_intercept_that_did_not_succeed_is_refused(world, wallet_a, statuses):
    intercept = make_intercept(world.owner, world.parcel_a, world.after_sale_a, *statuses)
    with pytest.raises(ClaimError, match="只有拦截成功的包裹才能申请索赔"):
        _file(world, intercept, 1000)
    assert not Claim.objects.exists()


def test_a_completed_intercept_may_be_claimed_for_damage(world, caught_a):
    from intercepts.models import InterceptEvent
    from intercepts.services.intercept_requests import intercept_set_status

    intercept_set_status(
        intercept=caught_a, to_status=Status.COMPLETED, source=InterceptEvent.Source.POLL
    )
    claim = _file(world, caught_a, 6000, reason=Claim.Reason.DAMAGED)
    assert claim.status == Claim.Status.SUBMITTED


def test_one_claim_per_intercept_and_a_withdrawn_one_may_be_filed_again(world, claim_a):
    with pytest.raises(ClaimError, match=f"此拦截已申请过索赔 #{claim_a.pk}"):
        _file(world, claim_a.intercept, 1000)
    services.claim_withdraw(actor=world.owner, claim=claim_a)
    again = _file(world, claim_a.intercept, 1000)
    assert again.pk != claim_a.pk
    assert list(Claim.objects.values_list("status", flat=True).order_by("pk")) == [
        "withdrawn",
        "submitted",
    ]


@pytest.mark.parametrize("name", ["viewer", "other", "cs", "finance"])
def test_only_the_shops_owner_and_agents_file_online(world, caught_a, name):
    with pytest.raises(ClaimError, match="您无权"):
        services.claim_file(
            actor=world.user(name),
            intercept=caught_a,
            reason=Claim.Reason.LOST,
            amount_claimed_fen=1000,
        )
    assert not Claim.objects.exists()


def test_an_agent_files_online(world, caught_a):
    claim = services.claim_file(
        actor=world.agent, intercept=caught_a, reason=Claim.Reason.LOST, amount_claimed_fen=1000
    )
    assert (claim.channel, claim.filed_by) == (Claim.Channel.ONLINE, world.agent)


@pytest.mark.parametrize("name", ["owner", "agent", "viewer", "other", "finance"])
def test_only_customer_service_records_offline_claims(world, caught_a, name):
    with pytest.raises(ClaimError, match="您无权"):
        services.claim_file(
            actor=world.user(name),
            intercept=caught_a,
            reason=Claim.Reason.LOST,
            amount_claimed_fen=1000,
            offline=True,
            contact_note="电话",
        )


def test_customer_service_records_an_offline_claim_with_how_it_came(world, caught_a):
    with pytest.raises(ClaimError, match="联系客服"):
        services.claim_file(
            actor=world.cs,
            intercept=caught_a,
            reason=Claim.Reason.LOST,
            amount_claimed_fen=1000,
            offline=True,
        )
    claim = services.claim_file(
        actor=world.cs,
        intercept=caught_a,
        reason=Claim.Reason.LOST,
        amount_claimed_fen=1000,
        offline=True,
        contact_note="商家来电 2026-12-01",
    )
    assert (claim.channel, claim.shop_id, claim.contact_note) == (
        Claim.Channel.OFFLINE,
        world.shop_a.pk,
        "商家来电 2026-12-01",
    )


def test_never_reached_the_new_address_is_for_a_change_of_address_only(world, caught_a):
    with pytest.raises(ClaimError, match="仅适用于拦截改址"):
        _file(world, caught_a, 1000, reason=Claim.Reason.NOT_DELIVERED)


# --- Evidence --------------------------------------------------------------------------------


def test_photos_and_pdfs_are_stored_under_random_names_with_their_detected_type(
    world, caught_a, evidence_dir
):
    claim = _file(
        world,
        caught_a,
        1000,
        files=[
            upload("破损照片.JPG", jpeg_bytes()),
            # A real PNG named .jpg is a PNG: named by what it is.
            upload("screenshot.jpg", png_bytes()),
            upload("快递单.pdf", pdf_bytes()),
        ],
    )
    rows = list(claim.evidence.values_list("original_name", "content_type"))
    assert rows == [
        ("破损照片.JPG", "image/jpeg"),
        ("screenshot.jpg", "image/png"),
        ("快递单.pdf", "application/pdf"),
    ]
    names = [path.name for path in stored_files(evidence_dir)]
    assert sorted(name.rsplit(".", 1)[1] for name in names) == ["jpg", "pdf", "png"]
    assert not any("破损" in name or "screenshot" in name for name in names)


EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
HTML_PAGE = b"<!DOCTYPE html><html><head><title>invoice</title></head><body>pay</body></html>"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("photo.jpg", EXECUTABLE, "不是照片（JPEG、PNG、WebP）或 PDF"),
        ("scan.png", HTML_PAGE, "不是照片（JPEG、PNG、WebP）或 PDF"),
        ("invoice.pdf", HTML_PAGE, "不是照片（JPEG、PNG、WebP）或 PDF"),
        ("empty.jpg", b"", "是空文件"),
        ("half.jpg", jpeg_bytes()[:200], "已损坏或不完整"),
    ],
    ids=["executable-as-jpg", "html-as-png", "html-as-pdf", "zero-bytes", "truncated-jpeg"],
)
def test_a_file_that_is_not_what_a_claim_takes_is_refused_in_chinese_and_nothing_is_stored(
    world, caught_a, evidence_dir, name, data, message
):
    with pytest.raises(ClaimError) as refused:
        _file(world, caught_a, 1000, files=[upload("good.jpg", jpeg_bytes()), upload(name, data)])
    assert message in str(refused.value)
    assert name in str(refused.value)
    assert not Claim.objects.exists()
    assert not ClaimEvidence.objects.exists()
    assert stored_files(evidence_dir) == []


def test_an_oversized_photo_is_refused_in_chinese_and_nothing_is_stored(
    world, caught_a, evidence_dir, settings
):
    from django.utils import translation

    photo = jpeg_bytes(size=(800, 600))
    settings.CLAIM_EVIDENCE_MAX_BYTES = len(photo) - 1
    with translation.override("zh-hans"), pytest.raises(ClaimError) as refused:
        _file(world, caught_a, 1000, files=[upload("big.jpg", photo)])
    assert "“big.jpg”太大" in str(refused.value)
    assert not Claim.objects.exists()
    assert stored_files(evidence_dir) == []


def test_a_claim_holds_a_limited_number_of_files(world, claim_a, evidence_dir, settings):
    settings.CLAIM_EVIDENCE_MAX_FILES = 2
    with pytest.raises(ClaimError, match="最多 2 个文件"):
        services.claim_add_evidence(
            actor=world.owner,
            claim=claim_a,
            files=[upload("a.jpg", jpeg_bytes()), upload("b.jpg", jpeg_bytes())],
        )
    added = services.claim_add_evidence(
        actor=world.owner, claim=claim_a, files=[upload("b.png", png_bytes())]
    )
    assert [row.original_name for row in added] == ["b.png"]
    assert claim_a.evidence.count() == 2
    assert len(stored_files(evidence_dir)) == 2


def test_a_parcel_back_with_the_sender_may_only_be_claimed_for_damage(world, caught_a):
    from intercepts.models import InterceptEvent
    from intercepts.services.intercept_requests import intercept_set_status

    intercept_set_status(
        intercept=caught_a, to_status=Status.COMPLETED, source=InterceptEvent.Source.POLL
    )
    with pytest.raises(ClaimError, match="包裹已退回寄件人，只能申请破损索赔"):
        _file(world, caught_a, 6000, reason=Claim.Reason.LOST)
    assert not Claim.objects.exists()


def test_a_rejected_claim_withdrawn_after_its_appeal_cannot_be_filed_again(world, claim_a):
    # Otherwise withdrawing and filing again would be a second appeal.
    services.claim_send_to_courier(actor=world.cs, claim=claim_a)
    services.claim_reject(actor=world.cs, claim=claim_a, reason="签收时未注明")
    services.claim_appeal(actor=world.owner, claim=claim_a, note="有开箱视频")
    services.claim_withdraw(actor=world.owner, claim=claim_a)
    with pytest.raises(ClaimError, match=f"快递公司已驳回此拦截的索赔 #{claim_a.pk}"):
        _file(world, claim_a.intercept, 1000)
    assert list(Claim.objects.values_list("status", flat=True)) == ["withdrawn"]
