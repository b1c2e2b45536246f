"""The fee statement PDF of an invoice request: Chinese text that can be extracted, the fees and
their total, and only for those who may read the request."""

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from billing import services
from billing.models import InvoiceRequest
from billing.statements import statement_pdf

USCC = "91330100716105852F"

try:  # WeasyPrint needs Pango from the system (CI installs it, see .ci/run)
    import weasyprint  # noqa: F401
except OSError as exc:  # pragma: no cover - only where Pango is missing
    pytest.skip(f"WeasyPrint cannot load Pango: {exc}", allow_module_level=True)


@pytest.fixture
def invoice(world, wallet_a, fund, zto):
    fund(wallet_a, 10_000)
    for number in (1, 2, 3):
        reference = f"intercept:{number}"
        services.wallet_hold(
            shop_id=world.shop_a.pk, reference=reference, amount_fen=300 + number, courier=zto
        )
        services.wallet_capture(reference=reference)
    return services.invoice_request(
        actor=world.owner,
        wallet=wallet_a,
        invoice_type=InvoiceRequest.Type.DIGITAL_SPECIAL,
        title="杭州甲店电子商务有限公司",
        taxpayer_id=USCC,
        address_phone="杭州市西湖区文三路 1 号 0571-88888888",
        bank_account="招商银行杭州分行 571900000000001",
    )


def _fonts(pdf: bytes) -> set[str]:
    """The base names of the fonts the PDF embeds, without the subset tag (``ABCDEF+``)."""
    names = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]).lstrip("/").split("+")[-1])
    return names


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_statement_has_the_shops_chinese_name_and_every_fee(world, invoice):
    pdf = statement_pdf(invoice)
    assert pdf.startswith(b"%PDF")
    text = _text(pdf)
    assert "甲店" in text  # the shop's Chinese name, as text rather than drawn shapes
    assert "拦截服务费对账单" in text and "杭州甲店电子商务有限公司" in text
    for reference, fee in (
        ("intercept:1", "3.01"),
        ("intercept:2", "3.02"),
        ("intercept:3", "3.03"),
    ):
        assert reference in text and fee in text
    assert "9.06" in text  # the total


def test_the_statement_is_set_in_the_font_that_ships_with_the_product(world, invoice):
    """No font from the machine: every character, the shop's Chinese name and the page numbers
    included, is drawn from the Noto Sans SC cut in billing/fonts (WeasyPrint names an embedded
    @font-face after its CSS family; the bold is drawn from the same file)."""
    assert _fonts(statement_pdf(invoice)) == {"Statement-Sans-SC", "Statement-Sans-SC-Bold"}


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 200),
        ("agent", 200),
        ("viewer", 200),
        ("finance", 200),
        ("cs", 200),
        ("other", 404),
    ],
)
def test_who_may_download_the_statement(world, login, invoice, who, status):
    url = reverse("admin:billing_invoicerequest_statement", args=[invoice.pk])
    response = login(world.user(who)).get(url)
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "application/pdf"
        assert "甲店" in _text(response.content)


def test_anonymous_visitors_are_sent_to_log_in(world, client, invoice):
    url = reverse("admin:billing_invoicerequest_statement", args=[invoice.pk])
    assert client.get(url).status_code == 302


def test_the_statement_renders_as_a_page_to_look_at(invoice):
    """Rendered to a picture in var/screenshots, as a person would check it."""
    import pypdfium2

    from tests.e2e.conftest import SCREENSHOTS

    document = pypdfium2.PdfDocument(statement_pdf(invoice))
    assert len(document) == 1
    image = document[0].render(scale=1.5).to_pil()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SCREENSHOTS / "fee_statement.png")
    # Ink on the page: the text was drawn, not left as empty boxes of a missing font.
    assert image.convert("L").getextrema()[0] < 100
