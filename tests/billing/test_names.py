"""Billing pages and files in Chinese words, not codes or placeholders."""

from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from billing import exports
from billing.exports import ExportSpec
from billing.models import Export
from tests.billing.test_exports import charged  # noqa: F401  (fixture)


def _sheet_names(export: Export) -> list[str]:
    with export.file.open("rb") as handle:
        return load_workbook(handle, read_only=True).sheetnames


def _build(world, kind, django_capture_on_commit_callbacks, *, days_back=0) -> Export:
    today = timezone.localdate()
    spec = ExportSpec(kind=kind, date_from=today, date_to=today)
    if days_back:  # a period with nothing in it
        earlier = today.replace(year=today.year - 1)
        spec = ExportSpec(kind=kind, date_from=earlier, date_to=earlier)
    with django_capture_on_commit_callbacks(execute=True):
        export = exports.export_request(actor=world.finance, spec=spec)
    export.refresh_from_db()
    assert export.status == Export.Status.DONE
    return export


def test_workbook_sheets_are_named_for_what_they_hold(
    world,
    charged,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    fees = _build(world, Export.Kind.FEES, django_capture_on_commit_callbacks)
    entries = _build(world, Export.Kind.ENTRIES, django_capture_on_commit_callbacks)
    assert _sheet_names(fees) == ["扣费明细"]
    assert _sheet_names(entries) == ["账本明细"]
    assert entries.file.name.split("/")[-1].startswith("账本明细-")


def test_an_empty_workbook_sheet_is_named_too(world, django_capture_on_commit_callbacks):
    export = _build(world, Export.Kind.FEES, django_capture_on_commit_callbacks, days_back=1)
    assert _sheet_names(export) == ["扣费明细"]


def test_further_sheets_are_numbered_after_the_first():
    assert exports.sheet_name(Export.Kind.ENTRIES, 0) == "账本明细"
    assert exports.sheet_name(Export.Kind.ENTRIES, 2) == "账本明细 3"


def test_the_invoice_form_says_all_couriers_when_none_is_chosen(world, login):
    from billing import services

    wallet = services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)
    page = login(world.owner).get(reverse("admin:billing_wallet_invoice", args=[wallet.pk]))
    text = page.content.decode()
    assert '<option value="" selected>全部快递公司</option>' in text
    assert "Select an option" not in text
