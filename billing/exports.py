"""Finance exports: charged fees and ledger entries of a period, by shop and courier.

Two forms of the same rows:

* CSV, streamed while the request runs. On PostgreSQL it comes straight from
  ``COPY (SELECT ...) TO STDOUT``, the database formatting times and amounts, so a million rows
  cost little more than the database takes to produce them and memory stays flat; on other
  databases (the embedded SQLite) the rows go through Python's csv module. UTF-8 with a
  byte-order mark, so that Excel shows the Chinese.
* Excel, built by a worker with openpyxl's write-only mode (``export_build``), its progress kept
  on the ``Export`` record, downloaded when ready.

The rows come from one queryset per kind (``export_rows``), with the labels (transaction kinds,
accounts, debit or credit) already in the language of whoever asked.
"""

import csv
import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import Case, CharField, F, OuterRef, QuerySet, Subquery, Value, When
from django.utils import timezone
from django.utils.translation import get_language, override
from django.utils.translation import gettext as _

from billing.models import Account, Export, ExportEvent, Hold, LedgerEntry, LedgerTransaction
from billing.references import subject_columns
from billing.services import BillingError, is_finance
from shops.history import status_transition

logger = logging.getLogger(__name__)

# An Excel sheet holds 1,048,576 rows; a longer export continues on further sheets.
SHEET_ROWS = 1_000_000
PROGRESS_EVERY = 5_000
# CSV is sent in pieces of about this size (COPY hands over one row at a time).
CHUNK_BYTES = 64 * 1024
# The longest period one export may cover.
MAX_DAYS = 366


@dataclass(frozen=True)
class ExportSpec:
    """What to export: a kind, a period of local dates (both included), optionally one shop
    and one courier."""

    kind: str
    date_from: date
    date_to: date
    shop_id: int | None = None
    courier_id: int | None = None

    def bounds(self) -> tuple[datetime, datetime]:
        zone = ZoneInfo(settings.TIME_ZONE)
        start = datetime.combine(self.date_from, time.min, tzinfo=zone)
        end = datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=zone)
        return start, end


def spec_check(spec: ExportSpec) -> ExportSpec:
    """Refuse what cannot be exported, with a message for the user."""
    if spec.kind not in Export.Kind.values:
        raise BillingError(_("Choose what to export."))
    if spec.date_to < spec.date_from:
        raise BillingError(_("The period ends before it starts."))
    if (spec.date_to - spec.date_from).days >= MAX_DAYS:
        raise BillingError(_("One export covers at most a year; split the period."))
    return spec


def headers(kind: str) -> list[str]:
    if kind == Export.Kind.FEES:
        return [
            _("Charged at"),
            _("Shop code"),
            _("Shop"),
            _("Courier"),
            _("Reference"),
            _("Fee (yuan)"),
            _("Order number"),
            _("Waybill number"),
        ]
    return [
        _("Time"),
        _("Shop code"),
        _("Shop"),
        _("Business"),
        _("Reference"),
        _("Courier"),
        _("Account"),
        _("Debit or credit"),
        _("Amount (yuan)"),
        _("Balance after (yuan)"),
    ]


def _label(field: str, choices) -> Case:
    return Case(
        *(When(**{field: value}, then=Value(str(label))) for value, label in choices),
        default=F(field),
        output_field=CharField(),
    )


# The columns of each kind, in order: (alias, kind of value). "time" and "fen" are formatted;
# "text" goes out as it is.
COLUMNS = {
    Export.Kind.FEES: [
        ("at", "time"),
        ("shop_code", "text"),
        ("shop_name", "text"),
        ("courier_name", "text"),
        ("ref", "text"),
        ("fee", "fen"),
        ("order_no", "text"),
        ("waybill_no", "text"),
    ],
    Export.Kind.ENTRIES: [
        ("at", "time"),
        ("shop_code", "text"),
        ("shop_name", "text"),
        ("business", "text"),
        ("ref", "text"),
        ("courier_name", "text"),
        ("account_kind", "text"),
        ("side_label", "text"),
        ("amount", "fen"),
        ("balance_after", "fen"),
    ],
}


def export_rows(spec: ExportSpec) -> QuerySet:
    """The export's rows as a ``values()`` queryset of COLUMNS' aliases, oldest first."""
    start, end = spec.bounds()
    if spec.kind == Export.Kind.FEES:
        # A fee is charged when its hold is captured; the status change stamps ``updated_at``.
        rows = Hold.objects.filter(
            status=Hold.Status.CAPTURED, updated_at__gte=start, updated_at__lt=end
        )
        if spec.shop_id:
            rows = rows.filter(wallet__shop_id=spec.shop_id)
        if spec.courier_id:
            rows = rows.filter(courier_id=spec.courier_id)
        return rows.order_by("updated_at", "id").values(
            at=F("updated_at"),
            shop_code=F("wallet__shop__code"),
            shop_name=F("wallet__shop__name"),
            courier_name=F("courier__name_zh"),
            ref=F("reference"),
            fee=F("amount_fen"),
            # The business behind the reference, as the merchant's books name it.
            **subject_columns("reference"),
        )
    rows = LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
    if spec.shop_id:
        rows = rows.filter(wallet__shop_id=spec.shop_id)
    fee_courier = Hold.objects.filter(reference=OuterRef("transaction__reference")).values(
        "courier__name_zh"
    )[:1]
    if spec.courier_id:
        rows = rows.filter(
            transaction__reference__in=Hold.objects.filter(courier_id=spec.courier_id).values(
                "reference"
            )
        )
    return rows.order_by("created_at", "id").values(
        at=F("created_at"),
        shop_code=F("wallet__shop__code"),
        shop_name=F("wallet__shop__name"),
        business=_label("transaction__kind", LedgerTransaction.Kind.choices),
        ref=F("transaction__reference"),
        courier_name=Subquery(fee_courier, output_field=CharField()),
        account_kind=_label("account__kind", Account.Kind.choices),
        side_label=_label("side", LedgerEntry.Side.choices),
        amount=F("amount_fen"),
        balance_after=F("balance_after_fen"),
    )


def filename(spec: ExportSpec, extension: str) -> str:
    kind = _("charged-fees") if spec.kind == Export.Kind.FEES else _("ledger-entries")
    return f"{kind}-{spec.date_from:%Y%m%d}-{spec.date_to:%Y%m%d}.{extension}"


def sheet_name(kind: str, index: int) -> str:
    """The name of the workbook's sheet ``index`` (from 0): what it holds, numbered from the
    second sheet on (Excel allows 31 characters)."""
    name = str(Export.Kind(kind).label)
    return (name if index == 0 else f"{name} {index + 1}")[:31]


# --- CSV --------------------------------------------------------------------------------------


def _yuan_text(amount_fen: int | None) -> str | None:
    if amount_fen is None:
        return None
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{yuan}.{fen:02d}"


def _local_text(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def _writer(buffer: io.StringIO):
    # As COPY writes CSV: every value quoted, an empty cell for a missing one, "\n" line ends.
    return csv.writer(buffer, quoting=csv.QUOTE_NOTNULL, lineterminator="\n")


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    _writer(buffer).writerow(values)
    return buffer.getvalue()


def csv_chunks(spec: ExportSpec) -> Iterator[bytes]:
    """The CSV file in pieces: a byte-order mark and the header line, then the rows."""
    yield ("\ufeff" + _csv_line(headers(spec.kind))).encode()
    if connection.vendor == "postgresql":
        yield from _csv_chunks_copy(spec)
    else:
        yield from csv_chunks_python(spec)


def _text(value, form: str):
    if form == "time":
        return _local_text(value)
    if form == "fen":
        return _yuan_text(value)
    return value


def csv_chunks_python(spec: ExportSpec) -> Iterator[bytes]:
    """The rows (no header) through Python's csv module: any database."""
    columns = COLUMNS[spec.kind]
    buffer = io.StringIO()
    writer = _writer(buffer)
    for row in export_rows(spec).iterator(chunk_size=2000):
        writer.writerow([_text(row[alias], form) for alias, form in columns])
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def copy_statement(spec: ExportSpec) -> tuple[str, list]:
    """``COPY (the export's rows, formatted) TO STDOUT`` and its parameters (PostgreSQL)."""
    inner, params = export_rows(spec).query.sql_with_params()
    outer = []
    for alias, form in COLUMNS[spec.kind]:
        if form == "time":
            outer.append(f"to_char(q.{alias} AT TIME ZONE %s, 'YYYY-MM-DD HH24:MI:SS')")
        elif form == "fen":
            # Integer fen to yuan with two decimals, exactly (no floating point on the way).
            outer.append(f"to_char(q.{alias}::numeric / 100, 'FM999999999999990.00')")
        else:
            outer.append(f"q.{alias}")
    zone = settings.TIME_ZONE
    zones = [zone for _alias, form in COLUMNS[spec.kind] if form == "time"]
    sql = (
        f"COPY (SELECT {', '.join(outer)} FROM ({inner}) AS q) "
        f"TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)"
    )
    # The outer SELECT's parameters come first in the text, then the inner query's.
    return sql, [*zones, *params]


def _csv_chunks_copy(spec: ExportSpec) -> Iterator[bytes]:
    sql, params = copy_statement(spec)
    pending: list[bytes] = []
    size = 0
    # Django binds parameters on the client, which is also what lets COPY take them.
    with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
        for block in copy:
            pending.append(bytes(block))
            size += len(block)
            if size >= CHUNK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
    if pending:
        yield b"".join(pending)


# --- Excel ------------------------------------------------------------------------------------


def export_set_status(*, export: Export, to_status: str, note: str = "", **fields) -> bool:
    """The one way an export's status changes: allowed moves only, each with its history row.

    Returns False (and changes nothing) when the export is not in a state that allows the move.
    """
    if to_status in (Export.Status.DONE, Export.Status.FAILED):
        fields.setdefault("finished_at", timezone.now())
    current = Export.objects.get(pk=export.pk)
    if not status_transition(current, to_status=to_status, refuse=None, note=note, **fields):
        return False
    export.refresh_from_db()
    return True


def export_request(*, actor, spec: ExportSpec) -> Export:
    """Queue an Excel export for a worker (finance only)."""
    from billing import tasks  # the task module imports this one

    if not is_finance(actor):
        raise BillingError(_("Only platform finance may do this."))
    spec_check(spec)
    with transaction.atomic():
        export = Export.objects.create(
            kind=spec.kind,
            date_from=spec.date_from,
            date_to=spec.date_to,
            shop_id=spec.shop_id,
            courier_id=spec.courier_id,
            requested_by=actor,
            language=get_language() or settings.LANGUAGE_CODE,
        )
        ExportEvent.objects.create(export=export, to_status=Export.Status.QUEUED)
        transaction.on_commit(lambda: tasks.export_build.delay(export.pk))
    return export


def _cell(value, form: str):
    if value is None:
        return None
    if form == "time":
        return timezone.localtime(value).replace(tzinfo=None)  # Excel has no time zones
    if form == "fen":
        return Decimal(value) / 100
    return value


def export_build(*, export_id: int) -> bool:
    """Build an export's workbook; safe to run twice (a finished export is left as it is)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    export = Export.objects.filter(pk=export_id).first()
    if export is None or not export_set_status(
        export=export, to_status=Export.Status.RUNNING, rows_done=0
    ):
        return False
    spec = ExportSpec(
        kind=export.kind,
        date_from=export.date_from,
        date_to=export.date_to,
        shop_id=export.shop_id,
        courier_id=export.courier_id,
    )
    try:
        # Headings and labels in the language of whoever asked for it.
        with override(export.language):
            rows = export_rows(spec)
            Export.objects.filter(pk=export.pk).update(rows_total=rows.count())
            workbook = Workbook(write_only=True)
            columns = COLUMNS[spec.kind]
            sheet, written, on_sheet = None, 0, SHEET_ROWS
            title = headers(spec.kind)
            for row in rows.iterator(chunk_size=2000):
                if on_sheet >= SHEET_ROWS:
                    sheet = workbook.create_sheet(sheet_name(spec.kind, len(workbook.worksheets)))
                    for index, width in enumerate([20, 14, 24, 12, 28] + [14] * 5):
                        sheet.column_dimensions[chr(65 + index)].width = width
                    sheet.append(title)
                    on_sheet = 0
                cells = []
                for alias, form in columns:
                    cell = WriteOnlyCell(sheet, value=_cell(row[alias], form))
                    if form == "fen":
                        cell.number_format = "0.00"
                    elif form == "time":
                        cell.number_format = "yyyy-mm-dd hh:mm:ss"
                    cells.append(cell)
                sheet.append(cells)
                written += 1
                on_sheet += 1
                if written % PROGRESS_EVERY == 0:
                    Export.objects.filter(pk=export.pk).update(rows_done=written)
            if sheet is None:  # nothing in the period: a workbook with the header alone
                workbook.create_sheet(sheet_name(spec.kind, 0)).append(title)
            with tempfile.TemporaryFile() as handle:
                workbook.save(handle)
                handle.seek(0)
                export.file.save(filename(spec, "xlsx"), File(handle), save=False)
    except Exception as exc:
        logger.exception("Export #%s failed", export.pk)
        export_set_status(
            export=export, to_status=Export.Status.FAILED, error=str(exc)[:255], note=str(exc)
        )
        return False
    return export_set_status(
        export=export, to_status=Export.Status.DONE, rows_done=written, file=export.file.name
    )
