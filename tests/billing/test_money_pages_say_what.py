"""Money pages that say what they mean: the limit a huge top-up broke, the total an invoice
request covers, and fee statements and exports that name each fee by its order and waybill."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from openpyxl import load_workbook

from billing import exports, services
from billing.exports import ExportSpec
from billing.models import Export, InvoiceRequest, TopUp
from billing.statements import statement_html
from couriers.models import Courier
from intercepts.models import InterceptRequest
from tests.factories import make_after_sale, make_intercept

USCC = "91330100716105852F"


@pytest.fixture(autouse=True)
def _chinese():
    with translation.override("zh-hans"):
        yield


def _charged_intercept(world, parcel, after_sale) -> InterceptRequest:
    S = InterceptRequest.Status
    return make_intercept(world.owner, parcel, after_sale, S.SUBMITTED, S.SUCCEEDED)


@pytest.mark.parametrize("typed", ["1000000000000", "99999999999999999999", "9" * 40])
def test_a_huge_top_up_is_refused_with_the_maximum(world, wallet_a, login, typed):
    url = reverse("admin:billing_wallet_top_up", args=[wallet_a.pk])
    response = login(world.finance).post(
        url, {"amount_fen": typed, "external_reference": "BANK-HUGE-1"}
    )
    page = response.content.decode()
    assert "金额不能超过 100,000,000.00 元" in page
    assert "请输入以元为单位的金额" not in page
    refused = TopUp.objects.get(wallet=wallet_a, status=TopUp.Status.REFUSED)
    assert "100,000,000.00" in refused.reason


def test_the_invoice_form_shows_the_total_it_will_invoice(world, wallet_a, fund, login):
    fund(wallet_a, 10_000)
    _charged_intercept(world, world.parcel_a, world.after_sale_a)
    after_sale, parcel = make_after_sale(world.shop_a)
    parcel.courier = Courier.objects.get(code="YTO")  # YTO's return costs 4 yuan
    parcel.save(update_fields=["courier"])
    _charged_intercept(world, parcel, after_sale)
    url = reverse("admin:billing_wallet_invoice", args=[wallet_a.pk])
    page = login(world.owner).get(url).content.decode()
    assert "共 2 笔已扣费用尚未开票，合计 7.00 元：全部申请即开票 7.00 元" in page
    # What choosing one courier would invoice.
    assert "按快递公司：" in page
    assert "中通快递 3.00 元" in page and "圆通速递 4.00 元" in page


def test_fees_already_on_an_invoice_are_not_in_the_total(world, wallet_a, fund, login):
    fund(wallet_a, 10_000)
    _charged_intercept(world, world.parcel_a, world.after_sale_a)
    services.invoice_request(
        actor=world.owner,
        wallet=wallet_a,
        invoice_type=InvoiceRequest.Type.DIGITAL_NORMAL,
        title="杭州甲店电子商务有限公司",
        taxpayer_id=USCC,
    )
    url = reverse("admin:billing_wallet_invoice", args=[wallet_a.pk])
    page = login(world.owner).get(url).content.decode()
    assert 'id="form-summary"' in page and "没有可开票的已扣费用" in page


def test_the_fee_statement_names_each_fee_by_order_and_waybill(world, wallet_a, fund):
    fund(wallet_a, 10_000)
    intercept = _charged_intercept(world, world.parcel_a, world.after_sale_a)
    invoice = services.invoice_request(
        actor=world.owner,
        wallet=wallet_a,
        invoice_type=InvoiceRequest.Type.DIGITAL_NORMAL,
        title="杭州甲店电子商务有限公司",
        taxpayer_id=USCC,
    )
    html = statement_html(invoice)
    assert "订单号" in html and "运单号" in html
    assert f'<td class="order-no">{world.after_sale_a.order.order_no}</td>' in html
    assert f'<td class="waybill-no">{world.parcel_a.waybill_no}</td>' in html
    assert intercept.hold_reference not in html


def test_the_statement_by_order_renders_as_a_page_to_look_at(world, wallet_a, fund):
    """Rendered to var/screenshots/fee_statement_by_order.png, as a person would check it."""
    pytest.importorskip("weasyprint")
    import pypdfium2

    from billing.statements import statement_pdf
    from tests.e2e.conftest import SCREENSHOTS

    fund(wallet_a, 10_000)
    _charged_intercept(world, world.parcel_a, world.after_sale_a)
    after_sale, parcel = make_after_sale(world.shop_a)
    _charged_intercept(world, parcel, after_sale)
    invoice = services.invoice_request(
        actor=world.owner,
        wallet=wallet_a,
        invoice_type=InvoiceRequest.Type.DIGITAL_NORMAL,
        title="杭州甲店电子商务有限公司",
        taxpayer_id=USCC,
    )
    image = pypdfium2.PdfDocument(statement_pdf(invoice))[0].render(scale=1.5).to_pil()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SCREENSHOTS / "fee_statement_by_order.png")
    assert image.convert("L").getextrema()[0] < 100


@pytest.fixture
def two_charged(world, wallet_a, fund):
    """Two intercept fees charged through the services, and a fee whose reference names no
    intercept (a shape the export must leave alone)."""
    fund(wallet_a, 10_000)
    first = _charged_intercept(world, world.parcel_a, world.after_sale_a)
    after_sale, parcel = make_after_sale(world.shop_a)
    second = _charged_intercept(world, parcel, after_sale)
    zto = Courier.objects.get(code="ZTO")
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:x9", amount_fen=300, courier=zto
    )
    services.wallet_capture(reference="intercept:x9")
    return [(first, world.parcel_a), (second, parcel)]


def _fee_spec() -> ExportSpec:
    today = timezone.localdate()
    return ExportSpec(kind=Export.Kind.FEES, date_from=today, date_to=today)


def _expected(two_charged):
    return [
        (intercept.hold_reference, parcel.order.order_no, parcel.waybill_no)
        for intercept, parcel in two_charged
    ] + [("intercept:x9", "", "")]


@pytest.mark.parametrize("how", ["copy", "python"])
def test_the_fees_export_names_each_fee_by_order_and_waybill(two_charged, how):
    spec = _fee_spec()
    assert exports.headers(spec.kind)[-2:] == ["订单号", "运单号"]
    if how == "copy" and connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    # csv_chunks streams through COPY on PostgreSQL; csv_chunks_python is the other path.
    chunks = exports.csv_chunks(spec) if how == "copy" else exports.csv_chunks_python(spec)
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig"))))
    body = rows[1:] if how == "copy" else rows
    assert [(r[4], r[6], r[7]) for r in body] == _expected(two_charged)


def test_the_fees_workbook_names_each_fee_by_order_and_waybill(
    world, two_charged, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        export = exports.export_request(actor=world.finance, spec=_fee_spec())
    export.refresh_from_db()
    with export.file.open("rb") as handle:
        sheet = load_workbook(handle, read_only=True).worksheets[0]
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0][-2:] == ["订单号", "运单号"]
    assert [(r[4], r[6] or "", r[7] or "") for r in rows[1:]] == _expected(two_charged)


def test_the_invoice_page_names_its_fees_by_order_and_waybill_in_flat_queries(
    world, wallet_a, fund, login
):
    fund(wallet_a, 10_000)
    charged = [(world.parcel_a, _charged_intercept(world, world.parcel_a, world.after_sale_a))]

    def request_invoice():
        return services.invoice_request(
            actor=world.owner,
            wallet=wallet_a,
            invoice_type=InvoiceRequest.Type.DIGITAL_NORMAL,
            title="杭州甲店电子商务有限公司",
            taxpayer_id=USCC,
        )

    def page_of(invoice):
        url = reverse("admin:billing_invoicerequest_change", args=[invoice.pk])
        client = login(world.owner)
        client.get(url)  # once before counting: the process's caches (content types) filled
        with CaptureQueriesContext(connection) as queries:
            html = client.get(url).content.decode()
        return html, len(queries.captured_queries)

    few_html, few = page_of(request_invoice())
    assert world.parcel_a.waybill_no in few_html
    assert world.after_sale_a.order.order_no in few_html
    for _ in range(5):
        after_sale, parcel = make_after_sale(world.shop_a)
        charged.append((parcel, _charged_intercept(world, parcel, after_sale)))
    # A second request takes only the five new fees.
    many_html, many = page_of(request_invoice())
    for parcel, _intercept in charged[1:]:
        assert parcel.waybill_no in many_html and parcel.order.order_no in many_html
    assert many == few
