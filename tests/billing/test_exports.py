"""Finance exports: the same rows as CSV (streamed) and as an Excel workbook (built by a task),
in Chinese, for finance only."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from billing import exports, services
from billing.exports import ExportSpec
from billing.models import Export, ExportEvent, Hold
from couriers.models import Courier


@pytest.fixture
def charged(world, wallet_a, wallet_b, fund):
    """Shop A: two fees charged (ZTO, YTO), one held, one released; shop B: one charged."""
    fund(wallet_a, 100_000)
    fund(wallet_b, 100_000)
    zto, yto = Courier.objects.get(code="ZTO"), Courier.objects.get(code="YTO")
    plan = [
        (world.shop_a, "intercept:1", 300, zto, "capture"),
        (world.shop_a, "intercept:2", 400, yto, "capture"),
        (world.shop_a, "intercept:3", 300, zto, None),
        (world.shop_a, "intercept:4", 300, zto, "release"),
        (world.shop_b, "intercept:5", 1250, zto, "capture"),
    ]
    for shop, reference, amount, courier, then in plan:
        services.wallet_hold(
            shop_id=shop.pk, reference=reference, amount_fen=amount, courier=courier
        )
        if then == "capture":
            services.wallet_capture(reference=reference)
        elif then == "release":
            services.wallet_release(reference=reference)
    return {"zto": zto, "yto": yto}


def _today_spec(kind, **kwargs) -> ExportSpec:
    today = timezone.localdate()
    return ExportSpec(kind=kind, date_from=today, date_to=today, **kwargs)


def _read_csv(chunks) -> list[list[str]]:
    data = b"".join(chunks)
    assert data.startswith("\ufeff".encode())  # so that Excel reads it as UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_charged_fees_as_csv(world, charged):
    rows = _read_csv(exports.csv_chunks(_today_spec(Export.Kind.FEES)))
    assert rows[0] == [
        "扣费时间",
        "店铺编号",
        "店铺",
        "快递公司",
        "业务单号",
        "费用（元）",
        "订单号",
        "运单号",
    ]
    body = rows[1:]
    assert [(r[1], r[4], r[5]) for r in body] == [
        ("shop-a", "intercept:1", "3.00"),
        ("shop-a", "intercept:2", "4.00"),
        ("shop-b", "intercept:5", "12.50"),
    ]
    assert {r[2] for r in body} == {"甲店", "乙店"}
    assert body[0][3] == "中通快递"
    assert body[0][0] == timezone.localtime(
        Hold.objects.get(reference="intercept:1").updated_at
    ).strftime("%Y-%m-%d %H:%M:%S")


def test_filters_by_shop_courier_and_period(world, charged):
    one_shop = _read_csv(exports.csv_chunks(_today_spec(Export.Kind.FEES, shop_id=world.shop_a.pk)))
    assert [r[4] for r in one_shop[1:]] == ["intercept:1", "intercept:2"]
    yto = _read_csv(exports.csv_chunks(_today_spec(Export.Kind.FEES, courier_id=charged["yto"].pk)))
    assert [r[4] for r in yto[1:]] == ["intercept:2"]
    yesterday = timezone.localdate() - timedelta(days=1)
    before = ExportSpec(kind=Export.Kind.FEES, date_from=yesterday, date_to=yesterday)
    assert _read_csv(exports.csv_chunks(before))[1:] == []


def test_ledger_entries_as_csv_balance(world, charged):
    rows = _read_csv(exports.csv_chunks(_today_spec(Export.Kind.ENTRIES, shop_id=world.shop_a.pk)))
    header, body = rows[0], rows[1:]
    assert header[3] == "业务类型" and header[7] == "借/贷"
    # Every posting has its two legs, so debits equal credits in the export too.
    debit = sum(int(r[8].replace(".", "")) for r in body if r[7] == "借")
    credit = sum(int(r[8].replace(".", "")) for r in body if r[7] == "贷")
    assert debit == credit > 0
    captures = [r for r in body if r[3] == "费用扣除"]
    assert {r[4] for r in captures} == {"intercept:1", "intercept:2"}
    assert {r[5] for r in captures} == {"中通快递", "圆通速递"}
    top_ups = [r for r in body if r[3] == "充值"]
    assert top_ups and all(r[5] == "" for r in top_ups)  # no courier for a top-up
    zto_only = _read_csv(
        exports.csv_chunks(
            _today_spec(Export.Kind.ENTRIES, shop_id=world.shop_a.pk, courier_id=charged["zto"].pk)
        )
    )
    assert {r[4] for r in zto_only[1:]} == {"intercept:1", "intercept:3", "intercept:4"}


@pytest.mark.postgres
@pytest.mark.parametrize("kind", [Export.Kind.FEES, Export.Kind.ENTRIES])
def test_copy_writes_exactly_what_python_writes(world, charged, kind):
    spec = _today_spec(kind)
    from_copy = b"".join(list(exports.csv_chunks(spec))[1:])
    from_python = b"".join(exports.csv_chunks_python(spec))
    assert from_copy == from_python and from_copy.count(b"\n") > 2


def test_a_workbook_is_built_by_a_task_with_the_same_rows(
    world, charged, django_capture_on_commit_callbacks
):
    spec = _today_spec(Export.Kind.FEES)
    with django_capture_on_commit_callbacks(execute=True):
        export = exports.export_request(actor=world.finance, spec=spec)
    export.refresh_from_db()
    assert export.status == Export.Status.DONE
    assert (export.rows_total, export.rows_done) == (3, 3)
    with export.file.open("rb") as handle:
        sheet = load_workbook(handle, read_only=True).worksheets[0]
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0][:2] == ["扣费时间", "店铺编号"]
    assert [(r[1], r[4], str(r[5])) for r in rows[1:]] == [
        ("shop-a", "intercept:1", "3"),
        ("shop-a", "intercept:2", "4"),
        ("shop-b", "intercept:5", "12.5"),
    ]
    assert list(export.events.values_list("to_status", flat=True)) == [
        Export.Status.QUEUED,
        Export.Status.RUNNING,
        Export.Status.DONE,
    ]
    # Delivered again: a finished export is left as it is.
    assert exports.export_build(export_id=export.pk) is False
    assert export.events.count() == 3


def test_a_build_whose_worker_died_is_built_again_when_redelivered(world, charged):
    export = exports.export_request(actor=world.finance, spec=_today_spec(Export.Kind.FEES))
    # The first worker took it and died: the export is left running with nothing written.
    assert exports.export_set_status(export=export, to_status=Export.Status.RUNNING) is True
    rebuilt = exports.export_build(export_id=export.pk)
    export.refresh_from_db()
    assert (rebuilt, export.status, export.rows_done) == (True, Export.Status.DONE, 3)


@pytest.mark.parametrize(
    ("date_from", "date_to", "message"),
    [(1, 0, "结束"), (0, 400, "一年")],
)
def test_bad_periods_are_refused_and_nothing_is_queued(world, date_from, date_to, message):
    today = timezone.localdate()
    spec = ExportSpec(
        kind=Export.Kind.FEES,
        date_from=today + timedelta(days=date_from),
        date_to=today + timedelta(days=date_to),
    )
    with pytest.raises(services.BillingError) as refused:
        exports.export_request(actor=world.finance, spec=spec)
    assert message in str(refused.value)
    assert not Export.objects.exists() and not ExportEvent.objects.exists()


def test_only_finance_may_queue_an_export(world):
    with pytest.raises(services.BillingError):
        exports.export_request(actor=world.owner, spec=_today_spec(Export.Kind.FEES))
    assert not Export.objects.exists()


# --- The workbench page -----------------------------------------------------------------------

CHANGELIST = "admin:billing_export_changelist"


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("finance", 200),
        ("cs", 403),
        ("owner", 403),
        ("agent", 403),
        ("other", 403),
        ("anonymous", 302),
    ],
)
def test_only_finance_opens_the_exports_page(world, login, who, status):
    client = login(world.user(who))
    assert client.get(reverse(CHANGELIST)).status_code == status
    response = client.post(
        reverse("admin:billing_export_run"),
        {"kind": "fees", "date_from": "2026-11-01", "date_to": "2026-11-30", "format": "csv"},
    )
    assert response.status_code == (200 if who == "finance" else 403 if who != "anonymous" else 302)


def test_finance_downloads_csv_from_the_page(world, login, charged):
    client = login(world.finance)
    today = timezone.localdate().isoformat()
    response = client.post(
        reverse("admin:billing_export_run"),
        {
            "kind": "fees",
            "date_from": today,
            "date_to": today,
            "shop": world.shop_b.pk,
            "format": "csv",
        },
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = _read_csv(response.streaming_content)
    assert [r[4] for r in rows[1:]] == ["intercept:5"]


def test_a_bad_period_shows_the_form_again_with_a_chinese_error(world, login):
    client = login(world.finance)
    response = client.post(
        reverse("admin:billing_export_run"),
        {"kind": "fees", "date_from": "2026-11-30", "date_to": "2026-11-01", "format": "xlsx"},
    )
    assert response.status_code == 400
    assert "结束日期早于开始日期" in response.content.decode()
    assert not Export.objects.exists()


def test_a_workbook_is_listed_with_its_progress_and_downloaded(
    world, login, charged, django_capture_on_commit_callbacks
):
    client = login(world.finance)
    today = timezone.localdate().isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:billing_export_run"),
            {"kind": "entries", "date_from": today, "date_to": today, "format": "xlsx"},
        )
    assert response.status_code == 302
    export = Export.objects.get()
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "已完成" in page and f"{export.rows_total:,} / {export.rows_total:,} (100%)" in page
    download = client.get(reverse("admin:billing_export_download", args=[export.pk]))
    assert download.status_code == 200
    assert load_workbook(io.BytesIO(b"".join(download.streaming_content))).worksheets[
        0
    ].max_row == (export.rows_total + 1)
    # Nobody but finance downloads it.
    assert (
        login(world.owner)
        .get(reverse("admin:billing_export_download", args=[export.pk]))
        .status_code
        == 403
    )


def test_the_exports_list_costs_the_same_queries_at_any_length(world, login):
    from django.test.utils import CaptureQueriesContext

    client = login(world.finance)

    def queries_with(count: int) -> int:
        while Export.objects.count() < count:
            Export.objects.create(
                kind="fees",
                date_from=timezone.localdate(),
                date_to=timezone.localdate(),
                requested_by=world.finance,
                shop=world.shop_a,
            )
        with CaptureQueriesContext(connection) as context:
            assert client.get(reverse(CHANGELIST)).status_code == 200
        return len(context.captured_queries)

    assert queries_with(2) == queries_with(25) <= 10
