"""Invoice requests over charged fees: snapshot lines, one live invoice per fee, the taxpayer
number checked, finance's review, issue, rejection and red-letter reversal."""

import threading

import pytest
from django.db import connection
from django.utils import translation

from billing import services
from billing.models import InvoiceEvent, InvoiceLine, InvoiceRequest, LedgerTransaction
from billing.services import BillingError

USCC = "91330100716105852F"


@pytest.fixture(autouse=True)
def _speak_chinese():
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def charged(world, wallet_a, fund, zto):
    """Shop A with three charged fees (3.00 each) and one fee still held."""
    fund(wallet_a, 10_000)
    for i in (1, 2, 3, 4):
        services.wallet_hold(
            shop_id=world.shop_a.pk, reference=f"intercept:{i}", amount_fen=300, courier=zto
        )
    for i in (1, 2, 3):
        services.wallet_capture(reference=f"intercept:{i}")
    return wallet_a


def request(world, wallet, **kwargs):
    defaults = {
        "actor": world.owner,
        "wallet": wallet,
        "invoice_type": InvoiceRequest.Type.DIGITAL_NORMAL,
        "title": "杭州某某电子商务有限公司",
        "taxpayer_id": USCC,
    }
    return services.invoice_request(**{**defaults, **kwargs})


def counts():
    return InvoiceRequest.objects.count(), InvoiceLine.objects.count(), InvoiceEvent.objects.count()


def test_request_snapshots_every_charged_fee_not_yet_invoiced(world, charged):
    invoice = request(world, charged)
    lines = list(invoice.lines.values_list("reference", "courier_name", "amount_fen", "live"))
    assert lines == [(f"intercept:{i}", "中通快递", 300, True) for i in (1, 2, 3)]
    assert invoice.amount_fen == 900
    assert invoice.status == InvoiceRequest.Status.REQUESTED
    # Nothing left to invoice: the held fee is not charged yet, the others are taken.
    with pytest.raises(BillingError, match="没有可开票"):
        request(world, charged)


def test_request_for_one_courier_and_period(world, charged, zto):
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Hold
    from couriers.models import Courier

    yto = Courier.objects.get(code="YTO")
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:9", amount_fen=400, courier=yto
    )
    services.wallet_capture(reference="intercept:9")
    assert Hold.objects.get(reference="intercept:9").courier == yto
    now = timezone.now()
    # A period that ended before any fee was charged has nothing to invoice.
    with pytest.raises(BillingError, match="没有可开票"):
        request(world, charged, charged_until=now - timedelta(days=1))
    only_yto = request(world, charged, courier=yto, charged_from=now - timedelta(days=1))
    assert list(only_yto.lines.values_list("reference", "courier_name")) == [
        ("intercept:9", "圆通速递")
    ]
    assert only_yto.amount_fen == 400
    rest = request(world, charged, courier=zto)
    assert rest.amount_fen == 900


def test_wrong_check_digit_is_refused_and_nothing_written(world, charged):
    before = counts()
    with pytest.raises(BillingError, match="校验位"):
        request(world, charged, taxpayer_id=USCC[:17] + "G")
    assert counts() == before


def test_fee_already_on_a_live_invoice_is_refused_and_nothing_written(world, charged):
    first_fee = LedgerTransaction.objects.filter(kind="capture").order_by("pk").first()
    request(world, charged, capture_ids=[first_fee.pk])
    before = counts()
    with pytest.raises(BillingError, match="intercept:1"):
        request(world, charged, capture_ids=[first_fee.pk])
    assert counts() == before


def test_another_wallets_fee_cannot_be_invoiced(world, charged, wallet_b):
    fee = LedgerTransaction.objects.filter(kind="capture").first()
    with pytest.raises(BillingError):
        request(world, wallet_b, actor=world.other, capture_ids=[fee.pk])
    assert not InvoiceRequest.objects.exists()


def test_special_invoice_needs_address_and_bank(world, charged):
    with pytest.raises(BillingError, match="专用发票"):
        request(world, charged, invoice_type=InvoiceRequest.Type.PAPER_SPECIAL)
    invoice = request(
        world,
        charged,
        invoice_type=InvoiceRequest.Type.PAPER_SPECIAL,
        address_phone="杭州市余杭区文一西路969号 0571-85022088",
        bank_account="招商银行杭州分行 571905000000000",
    )
    assert invoice.get_invoice_type_display() == "增值税专用发票（纸质）"


def test_finance_issues_then_reverses_and_the_fees_are_free_again(world, charged):
    invoice = request(world, charged)
    with pytest.raises(BillingError):
        services.invoice_issue(actor=world.owner, invoice=invoice, invoice_number="1")
    services.invoice_issue(
        actor=world.finance, invoice=invoice, invoice_number="24332000000012345678"
    )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.invoice_number) == ("issued", "24332000000012345678")
    with pytest.raises(BillingError, match="原因"):
        services.invoice_reverse(actor=world.finance, invoice=invoice, reason="")
    services.invoice_reverse(actor=world.finance, invoice=invoice, reason="抬头有误")
    assert not InvoiceLine.objects.filter(live=True).exists()
    again = request(world, charged, title="杭州某某科技有限公司")
    assert again.lines.count() == 3
    history = list(invoice.events.values_list("from_status", "to_status"))
    assert history == [("", "requested"), ("requested", "issued"), ("issued", "reversed")]


def test_rejected_request_frees_its_fees_and_cannot_be_issued(world, charged):
    invoice = request(world, charged)
    services.invoice_reject(actor=world.finance, invoice=invoice, reason="抬头与营业执照不符")
    with pytest.raises(BillingError, match="不能从"):
        services.invoice_issue(actor=world.finance, invoice=invoice, invoice_number="123")
    assert request(world, charged).lines.count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_parallel_requests_over_the_same_fees_make_one_invoice(world, charged):
    barrier = threading.Barrier(6)
    outcomes = []

    def ask():
        try:
            barrier.wait(timeout=30)
            with translation.override("zh-hans"):
                outcomes.append(request(world, charged).pk)
        except BillingError as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(isinstance(o, int) for o in outcomes) == 1
    assert InvoiceLine.objects.filter(live=True).count() == 3


def test_invoice_number_is_kept_in_one_form(world, charged):
    invoice = request(world, charged)
    # Typed with an input method: full-width digits and letters, blanks, lower case.
    services.invoice_issue(
        actor=world.finance, invoice=invoice, invoice_number=" ２４３３ 20ab1\u3000"
    )
    invoice.refresh_from_db()
    assert invoice.invoice_number == "243320AB1"


def test_the_wallet_and_invoice_pages_name_people_without_linking_to_user_pages(
    world, charged, login
):
    # A user's admin page answers 403 to every merchant: the pages say the name only.
    from django.urls import reverse

    invoice = request(world, charged)
    client = login(world.owner)
    for url in (
        reverse("admin:billing_wallet_change", args=[charged.pk]),
        reverse("admin:billing_invoicerequest_change", args=[invoice.pk]),
    ):
        html = client.get(url).content.decode()
        assert "/admin/auth/user/" not in html, url
        assert ">owner<" in html.replace(" ", "").replace("\n", ""), url
