"""Batch shipping from a spreadsheet: the file is kept, read and judged by the worker into a
preview (Celery runs eagerly here, queued on commit), then confirmed and shipped row by row
through ``ship_order``; the failed rows come back as a workbook with their reason."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook, load_workbook

from couriers.models import Courier
from intercepts.models import (
    Order,
    Shipment,
    ShipmentAnomaly,
    ShipmentUpload,
    ShipmentUploadRow,
)
from intercepts.services.orders import order_set_status
from intercepts.services.shipment_uploads import (
    UploadRefused,
    failed_rows_workbook,
    shipment_upload_confirm,
    shipment_upload_create,
    template_workbook,
)
from tests.intercepts import anomaly_helpers
from tests.intercepts.shipping_helpers import new_waybill, paid_order

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("uploads_dir")]

Outcome = ShipmentUploadRow.Outcome
Status = ShipmentUpload.Status
HEADER = ["订单号", "物流公司", "运单号"]
# The template's titles: the courier column is 快递公司 there, the other name it accepts.
TITLES = ["订单号", "快递公司", "运单号"]


uploads_dir = anomaly_helpers.uploads_dir  # files under the test's own folder


@pytest.fixture(autouse=True)
def _task_errors_fail_the_test(celery_eager):
    """An eager task's error is otherwise only logged, and the upload silently stays put."""
    previous = celery_eager.conf.task_eager_propagates
    celery_eager.conf.task_eager_propagates = True
    yield
    celery_eager.conf.task_eager_propagates = previous


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Do something and run the tasks it queued on commit (parse, apply) before going on."""

    def _run(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return _run


def csv_bytes(rows, *, header=HEADER, encoding="utf-8") -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


def xlsx_bytes(rows, *, header=HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def create(run, actor, shop, data: bytes, name="shipments.csv") -> ShipmentUpload:
    upload = run(
        shipment_upload_create, actor=actor, shop=shop, upload=SimpleUploadedFile(name, data)
    )
    upload.refresh_from_db()
    return upload


def confirm(run, actor, upload) -> ShipmentUpload:
    run(shipment_upload_confirm, actor=actor, upload=upload)
    upload.refresh_from_db()
    return upload


def outcomes(upload) -> list[tuple[str, str]]:
    return list(upload.rows.order_by("row_no").values_list("outcome", "code"))


def receivers(shop, count):
    addresses = ["上海市浦东新区幸福路1号", "北京市朝阳区建国路2号", "广州市天河区体育西路3号"]
    return [paid_order(shop, phone=f"1390000000{i}", address=addresses[i]) for i in range(count)]


# --- Whole files ----------------------------------------------------------------------------


def test_a_good_workbook_is_previewed_with_every_row_valid(world, run):
    orders = [paid_order(world.shop_a) for _ in range(3)]
    data = xlsx_bytes([(o.order_no, "中通快递", new_waybill()) for o in orders])
    upload = create(run, world.owner, world.shop_a, data, name="发货.xlsx")
    assert (upload.status, upload.total_rows, upload.valid_rows, upload.failed_rows) == (
        Status.PREVIEW,
        3,
        3,
        0,
    )


def test_a_confirmed_good_workbook_ships_every_order(world, run):
    orders = [paid_order(world.shop_a) for _ in range(3)]
    data = xlsx_bytes([(o.order_no, "ZTO", new_waybill()) for o in orders])
    upload = confirm(run, world.agent, create(run, world.owner, world.shop_a, data, "a.xlsx"))
    shipped = Order.objects.filter(pk__in=[o.pk for o in orders], status=Order.Status.SHIPPED)
    assert (upload.status, upload.applied_rows, shipped.count(), outcomes(upload)) == (
        Status.DONE,
        3,
        3,
        [(Outcome.SHIPPED, "")] * 3,
    )


def test_a_confirmed_upload_records_who_confirmed_and_the_channel(world, run):
    order = paid_order(world.shop_a)
    data = csv_bytes([(order.order_no, "ZTO", new_waybill())])
    confirm(run, world.agent, create(run, world.owner, world.shop_a, data))
    shipment = Shipment.objects.get(order=order)
    assert (shipment.channel, shipment.actor, shipment.upload.uploaded_by) == (
        Shipment.Channel.UPLOAD,
        world.agent,
        world.owner,
    )


def test_a_mixed_file_previews_each_row_with_its_outcome(world, run):
    good, flagged_first, flagged_second = receivers(world.shop_a, 3)
    shared = new_waybill()
    rows = [
        (good.order_no, "中通快递", new_waybill()),
        (good.order_no, "中通快递", new_waybill("YTO")),  # a YTO number for ZTO
        ("NO-SUCH-ORDER", "ZTO", new_waybill()),
        (flagged_first.order_no, "ZTO", shared),
        (flagged_second.order_no, "zto", shared),
        (good.order_no, "顺丰", new_waybill("SF")),  # not a courier's name
        ("", "ZTO", new_waybill()),
    ]
    upload = create(run, world.owner, world.shop_a, csv_bytes(rows))
    assert (
        outcomes(upload),
        upload.valid_rows,
        upload.failed_rows,
        upload.flagged_rows,
    ) == (
        [
            (Outcome.VALID, ""),
            (Outcome.FAILED, "4009"),
            (Outcome.FAILED, "order_not_found"),
            (Outcome.VALID, ""),
            (Outcome.VALID, ""),
            (Outcome.FAILED, "courier_unknown"),
            (Outcome.FAILED, "missing"),
        ],
        3,
        4,
        1,
    )


def test_a_file_of_bad_rows_only_is_done_once_read_with_nothing_to_confirm(world, run):
    order = paid_order(world.shop_a)
    rows = [
        (order.order_no, "ZTO", "12345"),
        ("NO-SUCH-ORDER", "ZTO", new_waybill()),
        (order.order_no, "不存在快递", new_waybill()),
    ]
    upload = create(run, world.owner, world.shop_a, csv_bytes(rows))
    assert (upload.status, upload.valid_rows, upload.failed_rows) == (Status.DONE, 0, 3)
    assert upload.events.last().note == "没有可发货的行：所有行都失败或已发货。"
    assert shipment_upload_confirm(actor=world.owner, upload=upload) is False


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("gb18030"),
        lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"),
        lambda text: text.encode("utf-8"),
    ],
    ids=["gb18030", "utf-8-bom", "utf-8"],
)
def test_a_csv_is_read_in_each_encoding_excel_writes(world, run, encode):
    order = paid_order(world.shop_a)
    waybill = new_waybill()
    text = f"订单号,物流公司,运单号\r\n{order.order_no},中通快递,{waybill}\r\n"
    upload = create(run, world.owner, world.shop_a, encode(text))
    row = upload.rows.get()
    assert (upload.status, row.outcome, row.courier_text, row.waybill_no) == (
        Status.PREVIEW,
        Outcome.VALID,
        "中通快递",
        waybill,
    )


def test_the_other_header_names_are_accepted_in_any_order(world, run):
    order = paid_order(world.shop_a)
    data = csv_bytes(
        [(new_waybill(), order.order_no, "ZTO")], header=["快递单号", "订单编号", "快递公司"]
    )
    upload = create(run, world.owner, world.shop_a, data)
    assert outcomes(upload) == [(Outcome.VALID, "")]


# --- Rules across rows and uploads ----------------------------------------------------------


def test_a_waybill_reaching_a_third_address_in_a_second_upload_fails_its_row(world, run):
    first, second, third = receivers(world.shop_a, 3)
    waybill = new_waybill()
    data = csv_bytes([(first.order_no, "ZTO", waybill), (second.order_no, "ZTO", waybill)])
    confirm(run, world.owner, create(run, world.owner, world.shop_a, data))
    later = create(run, world.owner, world.shop_a, csv_bytes([(third.order_no, "ZTO", waybill)]))
    row = later.rows.get()
    assert (row.outcome, row.code, row.reason) == (
        Outcome.FAILED,
        "three_addresses",
        "当前运单号对应3个收件地址，上传失败",
    )


def test_a_third_address_within_one_file_fails_its_row(world, run):
    first, second, third = receivers(world.shop_a, 3)
    waybill = new_waybill()
    rows = [(order.order_no, "ZTO", waybill) for order in (first, second, third)]
    upload = create(run, world.owner, world.shop_a, csv_bytes(rows))
    assert outcomes(upload) == [
        (Outcome.VALID, ""),
        (Outcome.VALID, ""),
        (Outcome.FAILED, "three_addresses"),
    ]


def test_the_same_file_twice_applies_nothing_the_second_time(world, run):
    first, second = receivers(world.shop_a, 2)
    waybill = new_waybill()
    data = csv_bytes([(first.order_no, "ZTO", waybill), (second.order_no, "ZTO", waybill)])
    confirm(run, world.owner, create(run, world.owner, world.shop_a, data))
    before = (Shipment.objects.count(), ShipmentAnomaly.objects.count())
    again = confirm(run, world.owner, create(run, world.owner, world.shop_a, data))
    assert (
        outcomes(again),
        again.applied_rows,
        (Shipment.objects.count(), ShipmentAnomaly.objects.count()),
    ) == ([(Outcome.ALREADY, ""), (Outcome.ALREADY, "")], 0, before)


def test_a_row_naming_another_shops_order_is_not_found_and_never_shipped(world, run):
    theirs = paid_order(world.shop_b)
    upload = create(
        run, world.owner, world.shop_a, csv_bytes([(theirs.order_no, "ZTO", new_waybill())])
    )
    confirm(run, world.owner, upload)
    theirs.refresh_from_db()
    assert (outcomes(upload), theirs.status, theirs.shipments.count()) == (
        [(Outcome.FAILED, "order_not_found")],
        Order.Status.PAID,
        0,
    )


def test_an_order_cancelled_after_the_preview_is_refused_when_applying(world, run):
    order, kept = paid_order(world.shop_a), paid_order(world.shop_a)
    rows = [(order.order_no, "ZTO", new_waybill()), (kept.order_no, "ZTO", new_waybill())]
    upload = create(run, world.owner, world.shop_a, csv_bytes(rows))
    order_set_status(order=order, to_status=Order.Status.CANCELLED)
    upload = confirm(run, world.owner, upload)
    refused = upload.rows.get(order=order)
    assert (
        upload.status,
        upload.applied_rows,
        upload.refused_rows,
        refused.outcome,
        refused.code,
        refused.reason,
    ) == (Status.DONE, 1, 1, Outcome.REFUSED, "not_shippable", "订单已取消或已完成，不能发货。")


def test_the_uploaded_file_is_kept_in_the_uploads_storage(world, run, uploads_dir):
    order = paid_order(world.shop_a)
    upload = create(
        run, world.owner, world.shop_a, csv_bytes([(order.order_no, "ZTO", new_waybill())])
    )
    assert (uploads_dir / upload.file.name).is_file()


# --- Spreadsheets given back ----------------------------------------------------------------


def test_the_failed_rows_workbook_gives_each_failed_row_with_its_reason(world, run):
    order = paid_order(world.shop_a)
    rows = [(order.order_no, "ZTO", new_waybill()), ("NO-SUCH-ORDER", "ZTO", "73999")]
    upload = create(run, world.owner, world.shop_a, csv_bytes(rows))
    sheet = load_workbook(io.BytesIO(failed_rows_workbook(upload))).worksheets[0]
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
        [*TITLES, "原因"],
        ["NO-SUCH-ORDER", "ZTO", "73999", "本店没有这个订单号的订单。"],
    ]


def test_a_typed_formula_comes_back_in_the_report_as_the_text_it_was(world, run):
    # Platform staff open these reports too: a merchant's cell must not run in their Excel.
    typed = '=HYPERLINK("http://example.com","x")'
    upload = create(run, world.owner, world.shop_a, csv_bytes([(typed, "ZTO", "73999")]))
    sheet = load_workbook(io.BytesIO(failed_rows_workbook(upload))).worksheets[0]
    cell = sheet.cell(row=2, column=1)
    assert (cell.value, cell.data_type) == (typed, "s")


def test_a_nul_byte_in_a_csv_cell_is_dropped_and_the_row_judged(world, run):
    order = paid_order(world.shop_a)
    data = csv_bytes([(order.order_no + "\x00", "ZTO", new_waybill())])
    upload = create(run, world.owner, world.shop_a, data)
    assert (upload.status, outcomes(upload)) == (Status.PREVIEW, [("valid", "")])


def test_a_csv_cell_past_the_csv_limit_fails_the_file_saying_so(world, run):
    data = csv_bytes([("1" * 200_000, "ZTO", "73999")])
    upload = create(run, world.owner, world.shop_a, data)
    assert (upload.status, upload.error) == (Status.FAILED, "无法读取该 csv 文件。")


def test_the_template_names_the_columns_and_gives_an_example_that_fits_its_courier(db):
    sheet = load_workbook(io.BytesIO(template_workbook())).worksheets[0]
    header, example = list(sheet.iter_rows(values_only=True))[:2]
    courier = Courier.objects.get(name_zh=example[1])
    assert (list(header), courier.waybill_matches(example[2])) == (TITLES, True)


def test_the_templates_columns_are_read_back_as_its_header(world, run):
    order = paid_order(world.shop_a)
    sheet = load_workbook(io.BytesIO(template_workbook())).worksheets[0]
    header = list(next(sheet.iter_rows(values_only=True)))
    upload = create(
        run,
        world.owner,
        world.shop_a,
        xlsx_bytes([(order.order_no, "ZTO", new_waybill())], header=header),
        "template.xlsx",
    )
    assert outcomes(upload) == [(Outcome.VALID, "")]


# --- Files refused --------------------------------------------------------------------------


def test_a_file_with_other_headers_fails_saying_which_columns_it_needs(world, run):
    data = csv_bytes([("1", "ZTO", new_waybill())], header=["编号", "快递", "单号"])
    upload = create(run, world.owner, world.shop_a, data)
    assert (upload.status, upload.error) == (
        Status.FAILED,
        "第一行须为列名：订单号、快递公司、运单号。",
    )


def test_a_broken_workbook_fails_saying_it_cannot_be_read(world, run):
    # A zip that is no workbook (a truncated download, say): taken, then refused when read.
    upload = create(run, world.owner, world.shop_a, b"PK\x03\x04" + b"\x00" * 64, "a.xlsx")
    assert (upload.status, upload.error, upload.rows.count()) == (
        Status.FAILED,
        "无法读取该工作簿。",
        0,
    )


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("shipments.txt", b"order,courier,waybill\n1,ZTO,73100000000000\n"),
        ("shipments.xlsx", b"not a workbook at all"),
        ("photo.png", b"\x89PNG\r\n\x1a\n...."),
    ],
    ids=["txt", "fake-xlsx", "png"],
)
def test_a_file_neither_xlsx_nor_csv_is_refused_at_once(world, name, data):
    with pytest.raises(UploadRefused) as caught:
        shipment_upload_create(
            actor=world.owner, shop=world.shop_a, upload=SimpleUploadedFile(name, data)
        )
    assert (str(caught.value), ShipmentUpload.objects.count()) == ("请上传 xlsx 或 csv 文件。", 0)


@pytest.mark.parametrize("who", ["viewer", "other", "cs"])
def test_only_the_shops_owner_or_agent_may_upload(world, who):
    from django.core.exceptions import PermissionDenied

    data = csv_bytes([("1", "ZTO", new_waybill())])
    with pytest.raises(PermissionDenied):
        shipment_upload_create(
            actor=world.user(who), shop=world.shop_a, upload=SimpleUploadedFile("a.csv", data)
        )


def test_numbers_typed_as_numbers_in_a_workbook_are_read_as_their_digits(world, run):
    order = paid_order(world.shop_a, no="7712345678")
    waybill = new_waybill()
    data = xlsx_bytes([(int(order.order_no), "ZTO", int(waybill))])
    upload = create(run, world.owner, world.shop_a, data, "numbers.xlsx")
    row = upload.rows.get()
    assert (row.order_no, row.waybill_no, row.outcome) == (order.order_no, waybill, Outcome.VALID)


def test_the_same_order_and_waybill_twice_in_a_file_fails_the_second_row(world, run):
    order = paid_order(world.shop_a)
    waybill = new_waybill()
    rows = [(order.order_no, "ZTO", waybill), (order.order_no, "zto", waybill)]
    upload = create(run, world.owner, world.shop_a, csv_bytes(rows))
    assert outcomes(upload) == [(Outcome.VALID, ""), (Outcome.FAILED, "duplicate_row")]


def test_a_file_of_more_rows_than_allowed_fails_saying_so(world, run, settings):
    settings.SHIPMENT_UPLOAD_MAX_ROWS = 2
    rows = [(paid_order(world.shop_a).order_no, "ZTO", new_waybill()) for _ in range(3)]
    upload = create(run, world.owner, world.shop_a, csv_bytes(rows))
    assert (upload.status, upload.error) == (Status.FAILED, "一个文件最多 2 行，请拆分后上传。")


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "文件是空的。"), (b"x" * (1024 * 1024 + 1), "文件超过 1 MB。")],
    ids=["empty", "too-large"],
)
def test_an_empty_or_too_large_file_is_refused_at_once(world, settings, data, message):
    settings.SHIPMENT_UPLOAD_MAX_BYTES = 1024 * 1024
    with pytest.raises(UploadRefused) as caught:
        shipment_upload_create(
            actor=world.owner, shop=world.shop_a, upload=SimpleUploadedFile("a.csv", data)
        )
    assert str(caught.value) == message


def test_only_the_shops_owner_or_agent_may_confirm(world, run):
    from django.core.exceptions import PermissionDenied

    order = paid_order(world.shop_a)
    upload = create(
        run, world.owner, world.shop_a, csv_bytes([(order.order_no, "ZTO", new_waybill())])
    )
    with pytest.raises(PermissionDenied):
        shipment_upload_confirm(actor=world.viewer, upload=upload)


def test_confirming_twice_ships_once(world, run):
    order = paid_order(world.shop_a)
    upload = create(
        run, world.owner, world.shop_a, csv_bytes([(order.order_no, "ZTO", new_waybill())])
    )
    confirm(run, world.owner, upload)
    again = run(shipment_upload_confirm, actor=world.owner, upload=upload)
    assert (again, Shipment.objects.filter(order=order).count()) == (False, 1)
