"""Batch shipping from a spreadsheet: upload, read and check in a worker, preview, apply.

A shop uploads an xlsx or csv file of (order number, courier, waybill number) rows
(``template_workbook`` gives the columns and an example row). ``shipment_upload_parse`` reads
it in a Celery task, keeping its progress on the upload, and judges every row with
``shipping.judge_shipment`` on facts read in bulk, each row in the light of the rows above it
(a waybill reaching a third receiver within the file fails too). The preview shows the valid
rows and each failed row with its reason; ``failed_rows_workbook`` gives the failed rows back
with a reason column, to fix and upload again. Once confirmed, ``shipment_upload_apply`` ships
the valid rows one by one through ``shipping.ship_order``, each whole or not at all, so the
rules are judged again under locks; an order already shipped with the row's waybill is left
as it is, which is why uploading the same file twice ships nothing twice.
"""

import csv
import hashlib
import io
import logging
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from intercepts.models import (
    Order,
    OrderLine,
    Parcel,
    Shipment,
    ShipmentUpload,
    ShipmentUploadRow,
)
from intercepts.services.errors import DomainError
from intercepts.services.parcels import _require_shop_writer, normalise_waybill
from intercepts.services.shipping import (
    DUPLICATE_ROW,
    MISSING,
    ShippingRefused,
    courier_lookup,
    judge_shipment,
    order_receiver_key,
    refusal_message,
    refusal_text,
    ship_order,
)
from shops.history import status_transition

logger = logging.getLogger(__name__)
Outcome = ShipmentUploadRow.Outcome
Status = ShipmentUpload.Status

# The columns, in the template's order, and the other headers a file may use for them.
COLUMNS = ("order_no", "courier", "waybill_no")
HEADERS = {
    "order_no": ("订单号", "订单编号", "order_no", "order number"),
    "courier": ("物流公司", "快递公司", "courier"),
    "waybill_no": ("运单号", "快递单号", "物流单号", "waybill_no", "waybill number"),
}
READ_BATCH = 5000
ZIP_MAGIC = b"PK\x03\x04"


def column_titles() -> list[str]:
    return [_("Order number"), _("Courier"), _("Waybill number")]


class UploadRefused(DomainError):
    """The file as a whole cannot be taken (its type, its size)."""


# --- Upload -------------------------------------------------------------------------------


def shipment_upload_create(*, actor, shop, upload) -> ShipmentUpload:
    """Keep an uploaded file and queue its reading; refused at once if it is neither an xlsx
    workbook nor a text file, or too large."""
    _require_shop_writer(actor, shop.pk)
    data = upload.read()
    if not data:
        raise UploadRefused(_("The file is empty."))
    if len(data) > settings.SHIPMENT_UPLOAD_MAX_BYTES:
        raise UploadRefused(
            _("The file is larger than %(mb)d MB.")
            % {"mb": settings.SHIPMENT_UPLOAD_MAX_BYTES // (1024 * 1024)}
        )
    name = (getattr(upload, "name", "") or "upload").rsplit("/", 1)[-1][:200]
    if not (data.startswith(ZIP_MAGIC) or name.lower().endswith(".csv")):
        raise UploadRefused(_("Upload an xlsx workbook or a csv file."))
    from intercepts import tasks  # tasks import services

    with transaction.atomic():
        record = ShipmentUpload(
            shop=shop,
            file_name=name,
            sha256=hashlib.sha256(data).hexdigest(),
            uploaded_by=actor,
        )
        record.file.save(name if "." in name else f"{name}.csv", ContentFile(data), save=False)
        record.save()
        record.events.create(to_status=Status.PARSING, actor=actor)
        transaction.on_commit(lambda: tasks.shipment_upload_parse.delay(record.pk))
    return record


def same_file_before(upload: ShipmentUpload) -> ShipmentUpload | None:
    """An earlier upload of the same shop with the same bytes (the page says so)."""
    return (
        ShipmentUpload.objects.filter(
            shop_id=upload.shop_id, sha256=upload.sha256, pk__lt=upload.pk
        )
        .order_by("-pk")
        .first()
    )


# --- Reading ------------------------------------------------------------------------------


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number typed into a spreadsheet cell
    # A NUL byte is no part of any number (and PostgreSQL refuses it in text).
    return str(value).replace("\x00", "").strip()


def _csv_text(data: bytes) -> str:
    """UTF-8, with or without a byte-order mark; anything else is read as GB18030 (which
    Excel in Chinese writes)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def _read_rows(data: bytes):
    """(row number, [cells]) of the file's first sheet, header first."""
    if data.startswith(ZIP_MAGIC):
        # Read with calamine (Rust): several times faster than openpyxl on large sheets, and
        # it reads workbooks from Excel, WPS and openpyxl alike. The spreadsheets the product
        # writes are written with openpyxl.
        from python_calamine import CalamineError, CalamineWorkbook

        try:
            sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
            for number, row in enumerate(sheet.iter_rows(), start=1):
                yield number, [_cell(value) for value in row[:8]]
        except (CalamineError, ValueError, IndexError) as exc:
            raise UploadRefused(_("The workbook cannot be read.")) from exc
        return
    try:
        text = _csv_text(data)
    except UnicodeDecodeError as exc:
        raise UploadRefused(_("The csv file is neither UTF-8 nor GB18030 text.")) from exc
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            yield number, [_cell(value) for value in row[:8]]
    except csv.Error as exc:  # a cell past the csv module's field limit, say
        raise UploadRefused(_("The csv file cannot be read.")) from exc


def _header_map(header: list[str]) -> dict[str, int] | None:
    names = {name.strip().lower(): column for column, names in HEADERS.items() for name in names}
    found = {}
    for index, title in enumerate(header):
        column = names.get(title.strip().lower())
        if column and column not in found:
            found[column] = index
    return found if len(found) == len(COLUMNS) else None


@dataclass
class _Row:
    row_no: int
    order_no: str
    courier_text: str
    waybill_no: str


def _parse_rows(upload: ShipmentUpload, data: bytes) -> list[_Row]:
    rows = []
    columns = None
    limit = settings.SHIPMENT_UPLOAD_MAX_ROWS
    for number, cells in _read_rows(data):
        if columns is None:
            if not any(cells):
                continue
            columns = _header_map(cells)
            if columns is None:
                raise UploadRefused(
                    _("The first row must name the columns: %(columns)s.")
                    % {"columns": "、".join(column_titles())}
                )
            continue
        values = [cells[columns[c]] if columns[c] < len(cells) else "" for c in COLUMNS]
        if not any(values):
            continue
        rows.append(_Row(number, values[0][:64], values[1][:64], values[2][:64]))
        if len(rows) > limit:
            raise UploadRefused(
                _("A file may hold at most %(limit)d rows; split it.") % {"limit": limit}
            )
        if len(rows) % READ_BATCH == 0:
            ShipmentUpload.objects.filter(pk=upload.pk).update(parsed_rows=len(rows))
    if columns is None:
        raise UploadRefused(_("The file has no rows."))
    return rows


# --- Judging a whole file ------------------------------------------------------------------


def _chunks(items: list, size: int = READ_BATCH):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _judge_rows(shop_id: int, rows: list[_Row]) -> list[ShipmentUploadRow]:
    couriers = courier_lookup()
    order_nos = sorted({row.order_no for row in rows if row.order_no})
    orders: dict[str, Order] = {}
    for chunk in _chunks(order_nos):
        for order in Order.objects.filter(shop_id=shop_id, order_no__in=chunk).only(
            "pk", "shop_id", "order_no", "status", "receiver_phone", "receiver_address"
        ):
            orders[order.order_no] = order
    order_ids = [order.pk for order in orders.values()]
    with_goods: set[int] = set()
    carried = Parcel.lines.through.objects.filter(orderline_id=OuterRef("pk"))
    for chunk in _chunks(order_ids):
        with_goods.update(
            OrderLine.objects.filter(order_id__in=chunk)
            .exclude(Exists(carried))
            .values_list("order_id", flat=True)
            .distinct()
        )
    waybills = sorted({normalise_waybill(row.waybill_no) for row in rows if row.waybill_no})
    parcels: dict[tuple[int, str], tuple[int, int]] = {}
    for chunk in _chunks(waybills):
        for pk, courier_id, waybill_no, owner in Parcel.objects.filter(
            waybill_no__in=chunk
        ).values_list("pk", "courier_id", "waybill_no", "shop_id"):
            parcels[(courier_id, waybill_no)] = (pk, owner)
    # Per waybill of this shop: the orders on it and their receivers, as the file goes on.
    on_waybill: dict[tuple[int, str], dict[int, str]] = defaultdict(dict)
    mine = {pk: key for key, (pk, owner) in parcels.items() if owner == shop_id}
    for chunk in _chunks(list(mine)):
        # Oldest first, so each waybill's first receiver comes first in its dict.
        for parcel_id, order_id, key in (
            Shipment.objects.filter(parcel_id__in=chunk)
            .order_by("parcel_id", "shipped_at", "id")
            .values_list("parcel_id", "order_id", "receiver_key")
        ):
            on_waybill[mine[parcel_id]][order_id] = key

    judged = []
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        waybill_no = normalise_waybill(row.waybill_no)
        courier = couriers.get(row.courier_text.strip().upper())
        order = orders.get(row.order_no)
        record = ShipmentUploadRow(
            row_no=row.row_no,
            order_no=row.order_no,
            courier_text=row.courier_text,
            waybill_no=waybill_no,
            order_id=order.pk if order else None,
            courier=courier,
        )
        judged.append(record)
        if not (row.order_no and row.courier_text and waybill_no):
            record.outcome, record.code = Outcome.FAILED, MISSING
            record.reason = refusal_message(MISSING)
            continue
        identity = (row.order_no, row.courier_text.strip().upper(), waybill_no)
        if identity in seen:
            record.outcome, record.code = Outcome.FAILED, DUPLICATE_ROW
            record.reason = refusal_message(DUPLICATE_ROW)
            continue
        seen.add(identity)
        key = (courier.pk, waybill_no) if courier else None
        owner = parcels.get(key, (None, None))[1] if key else None
        shipped = on_waybill.get(key, {}) if key else {}
        verdict = judge_shipment(
            order=order,
            courier=courier,
            waybill_no=waybill_no,
            waybill_shop_id=owner,
            receivers_on_waybill={k for oid, k in shipped.items() if order and oid != order.pk},
            first_receiver=next(iter(shipped.values()), None),
            order_has_goods=order is not None and order.pk in with_goods,
            already=order is not None and order.pk in shipped,
        )
        if not verdict.ok:
            record.outcome, record.code, record.reason = (
                Outcome.FAILED,
                verdict.code,
                refusal_text(verdict.code, verdict.message),
            )
            continue
        if verdict.already:
            record.outcome = Outcome.ALREADY
            record.reason = _("Already shipped with this waybill: left as it is.")
            continue
        record.outcome, record.flagged = Outcome.VALID, verdict.flagged
        if verdict.flagged:
            record.reason = _(
                "Accepted, but the waybill is used for another receiver address: the order "
                "will be flagged as a suspected fake shipment."
            )
        # What this row will do, for the rows below it.
        on_waybill[key][order.pk] = order_receiver_key(order)
        if owner is None:
            parcels[key] = (0, shop_id)  # a parcel this file creates
        if not verdict.flagged:
            with_goods.discard(order.pk)  # its goods go into the parcel (new or merged)
    return judged


def shipment_upload_parse(*, upload_id: int) -> str:
    """Read and judge the upload's file into its preview rows; the upload moves to preview
    with its counts (to done when no row is left to ship, or to failed, saying why). A second
    run finds it read and stops."""
    upload = ShipmentUpload.objects.filter(pk=upload_id).first()
    if upload is None or upload.status != Status.PARSING:
        return "skipped"
    with upload.file.open("rb") as handle:
        data = handle.read()
    try:
        rows = _judge_rows(upload.shop_id, _parse_rows(upload, data))
    except UploadRefused as exc:
        reason = str(exc)
    except Exception:
        # Whatever else a file can hold that we did not foresee: the upload says it failed
        # rather than stay "reading" for ever, and the error is logged for us.
        logger.exception("Shipment upload %s could not be read", upload.pk)
        reason = _("The file could not be read. Check it and upload it again.")
    else:
        reason = None
    if reason is not None:
        with transaction.atomic():
            status_transition(
                upload, to_status=Status.FAILED, refuse=None, note=reason, error=reason[:255]
            )
        return "failed"
    for row in rows:
        row.upload_id = upload.pk
    counts = defaultdict(int)
    for row in rows:
        counts[row.outcome] += 1
    with transaction.atomic():
        locked = ShipmentUpload.objects.select_for_update().get(pk=upload.pk)
        if locked.status != Status.PARSING:
            return "skipped"
        ShipmentUploadRow.objects.filter(upload=locked).delete()
        ShipmentUploadRow.objects.bulk_create(rows, batch_size=READ_BATCH)
        nothing = not counts[Outcome.VALID]
        status_transition(
            locked,
            to_status=Status.DONE if nothing else Status.PREVIEW,
            refuse=None,
            note=_("Nothing to ship: every row failed or is already shipped.") if nothing else "",
            total_rows=len(rows),
            parsed_rows=len(rows),
            valid_rows=counts[Outcome.VALID],
            failed_rows=counts[Outcome.FAILED],
            flagged_rows=sum(1 for row in rows if row.flagged),
            applied_rows=0,
        )
    return "done" if nothing else "preview"


# --- Applying -----------------------------------------------------------------------------


def shipment_upload_confirm(*, actor, upload: ShipmentUpload) -> bool:
    """The shop confirms the preview: its valid rows are shipped by a worker."""
    _require_shop_writer(actor, upload.shop_id)
    from intercepts import tasks

    with transaction.atomic():
        moved = status_transition(
            upload,
            to_status=Status.APPLYING,
            refuse=lambda current: DomainError(
                _("This upload is “%(status)s”: there is nothing to confirm.")
                % {"status": Status(current).label}
            ),
            actor=actor,
            from_statuses=(Status.PREVIEW,),
        )
        if moved:
            transaction.on_commit(lambda: tasks.shipment_upload_apply.delay(upload.pk))
    return moved


def _confirmer(upload: ShipmentUpload):
    event = upload.events.filter(to_status=Status.APPLYING).select_related("actor").first()
    return event.actor if event is not None and event.actor is not None else upload.uploaded_by


def shipment_upload_apply(*, upload_id: int) -> str:
    """Ship the valid rows of a confirmed upload, in file order, each in its own transaction;
    a row the rules now refuse (an order cancelled since the preview, a waybill taken) is
    marked refused with its reason. Rows already done are skipped, so a second run ships only
    what is left; the upload is done when no valid row remains."""
    upload = ShipmentUpload.objects.filter(pk=upload_id).first()
    if upload is None or upload.status != Status.APPLYING:
        return "skipped"
    actor = _confirmer(upload)
    pending = ShipmentUploadRow.objects.filter(upload=upload, outcome=Outcome.VALID).order_by(
        "row_no"
    )
    for row_id in list(pending.values_list("pk", flat=True)):
        with transaction.atomic():
            # Only the row is locked: its order and courier are nullable, outer-joined, and
            # PostgreSQL refuses FOR UPDATE on the nullable side (ship_order locks the order).
            row = (
                ShipmentUploadRow.objects.select_for_update(of=("self",))
                .filter(pk=row_id, outcome=Outcome.VALID)
                .select_related("order", "courier")
                .first()
            )
            if row is None:
                continue
            try:
                if row.order is None or row.order.shop_id != upload.shop_id:
                    raise PermissionDenied
                shipped = ship_order(
                    actor=actor,
                    order=row.order,
                    courier=row.courier,
                    waybill_no=row.waybill_no,
                    channel=Shipment.Channel.UPLOAD,
                    upload=upload,
                )
            except ShippingRefused as exc:
                row.outcome, row.code = Outcome.REFUSED, exc.code
                row.reason = refusal_text(exc.code, exc.message)[:255]
                row.flagged = False
            except PermissionDenied:
                row.outcome, row.code, row.flagged = Outcome.REFUSED, "forbidden", False
                row.reason = _("Only the shop's owner or an after-sales agent may ship.")
            else:
                row.outcome = Outcome.SHIPPED if shipped.created else Outcome.ALREADY
                row.flagged = shipped.flagged
            row.save(update_fields=["outcome", "code", "reason", "flagged"])
    with transaction.atomic():
        locked = ShipmentUpload.objects.select_for_update().get(pk=upload.pk)
        counts = dict(
            ShipmentUploadRow.objects.filter(upload=locked)
            .values_list("outcome")
            .annotate(n=Count("pk"))
            .values_list("outcome", "n")
        )
        status_transition(
            locked,
            to_status=Status.DONE,
            refuse=None,
            from_statuses=(Status.APPLYING,),
            applied_rows=counts.get(Outcome.SHIPPED, 0),
            refused_rows=counts.get(Outcome.REFUSED, 0),
            flagged_rows=ShipmentUploadRow.objects.filter(upload=locked, flagged=True).count(),
            applied_at=timezone.now(),
        )
    return "done"


# --- Spreadsheets given back --------------------------------------------------------------


def _text_cell(sheet, value):
    """What a merchant typed, given back as text: a cell starting with ``=`` stays the text it
    was, never a formula run in the spreadsheet of whoever opens the report."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    if cell.data_type == "f":
        cell.data_type = "s"
    return cell


def _workbook(rows, *, title: str, with_reason: bool) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    header = column_titles() + ([_("Reason")] if with_reason else [])
    sheet.append(header)
    for row in rows:
        sheet.append([_text_cell(sheet, value) for value in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_workbook() -> bytes:
    """The columns a file needs, one example row, and the couriers' names on a second sheet."""
    from openpyxl import Workbook

    from couriers.models import Courier

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Shipments"))
    sheet.append(column_titles())
    example = (
        Courier.objects.filter(is_active=True).exclude(waybill_example="").order_by("pk").first()
    )
    if example is not None:
        sheet.append(["DEMO-ORDER-0001", example.name_zh, example.waybill_example])
    names = book.create_sheet(_("Couriers"))
    names.append([_("Courier"), _("Courier code"), _("Waybill number example")])
    for courier in Courier.objects.filter(is_active=True).order_by("pk"):
        names.append([courier.name_zh, courier.code, courier.waybill_example])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def failed_rows_workbook(upload: ShipmentUpload) -> bytes:
    """The rows that failed (at the preview or when shipping), as typed, with the reason."""
    rows = (
        ShipmentUploadRow.objects.filter(
            upload=upload, outcome__in=(Outcome.FAILED, Outcome.REFUSED)
        )
        .order_by("row_no")
        .values_list("order_no", "courier_text", "waybill_no", "reason")
        .iterator(chunk_size=READ_BATCH)
    )
    return _workbook(rows, title=_("Failed rows"), with_reason=True)
