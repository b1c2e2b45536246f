"""The fee statement of an invoice request: a PDF of the fees it covers, for the merchant's
books and for finance to issue the invoice from.

Rendered from a Django template by WeasyPrint, in the Noto Sans SC cut that ships in
``billing/fonts`` (OFL): the statement needs no font from the machine.
"""

from pathlib import Path

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import InvoiceRequest
from billing.references import describe

STATEMENT_FONT = Path(__file__).parent / "fonts" / "NotoSansSC-Statement.otf"


def statement_filename(invoice: InvoiceRequest) -> str:
    return _("fee-statement-%(number)s.pdf") % {"number": invoice.pk}


def statement_html(invoice: InvoiceRequest) -> str:
    lines = list(invoice.lines.order_by("charged_at", "id"))
    # Each fee by its order and waybill, as the merchant's books know it, not its reference.
    subjects = describe(line.reference for line in lines)
    for line in lines:
        line.subject = subjects.get(line.reference)
    return render_to_string(
        "billing/fee_statement.html",
        {
            "invoice": invoice,
            "shop": invoice.wallet.shop,
            "lines": lines,
            "total_fen": sum(line.amount_fen for line in lines),
            "first_at": lines[0].charged_at if lines else None,
            "last_at": lines[-1].charged_at if lines else None,
            "generated_at": timezone.localtime(),
            "font_url": STATEMENT_FONT.as_uri(),
        },
    )


def statement_pdf(invoice: InvoiceRequest) -> bytes:
    from weasyprint import HTML  # heavy to import; only the statement needs it

    return HTML(string=statement_html(invoice)).write_pdf()
