"""Batch shipping in a real browser, in Chinese: the owner uploads a mixed file, reads the
preview's failed rows and their reasons, confirms the good rows, downloads the failed rows,
fixes them in that very workbook, uploads it again, confirms, and finds the orders shipped."""

import pytest
from openpyxl import load_workbook

from couriers.models import Courier
from intercepts.models import Order, Shipment
from intercepts.services.shipping import ship_order
from tests.e2e.conftest import login_in_browser, screenshot
from tests.intercepts.shipping_helpers import new_waybill, paid_order
from tests.intercepts.test_shipping_admin import upload_dir, xlsx  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "pw-for-tests-123"
# The platform's words, with its code after them as the workbench shows it.
MISMATCH = "运单号和物流公司不匹配（4009）"
NOT_FOUND = "本店没有这个订单号的订单。"
THIRD = "当前运单号对应3个收件地址，上传失败"


def _upload(page, base, path, shot: str = "") -> None:
    page.goto(f"{base}/admin/intercepts/shipmentupload/")
    page.locator("#upload-shipments-link").click()
    page.set_input_files("#id_file", str(path))
    if shot:
        screenshot(page, shot)
    page.locator("#content-main button[type=submit]").click()
    page.locator("#upload-counts").wait_for()


def _count(page, key: str) -> str:
    return page.locator(f'#upload-counts [data-count="{key}"] .text-xl').inner_text()


def test_batch_shipping_with_a_fixed_failed_rows_report(world, browser_page, tmp_path):
    page = browser_page
    base = page.live_server_url
    zto = Courier.objects.get(code="ZTO")
    good = [paid_order(world.shop_a, address=f"上海市幸福路{n}号") for n in (1, 2)]
    mistyped = paid_order(world.shop_a, address="上海市幸福路3号")
    order_b = paid_order(world.shop_b)
    # A waybill already used for two receivers: a third is refused.
    shared = new_waybill()
    for phone, address in (("13800000001", "北京市1号"), ("13800000002", "北京市2号")):
        ship_order(
            actor=world.owner,
            order=paid_order(world.shop_a, phone=phone, address=address),
            courier=zto,
            waybill_no=shared,
            channel=Shipment.Channel.WORKBENCH,
        )
    third = paid_order(world.shop_a, phone="13800000003", address="广州市3号")
    mixed = tmp_path / "发货单.xlsx"
    mixed.write_bytes(
        xlsx(
            [
                (good[0].order_no, "中通快递", new_waybill()),
                (good[1].order_no, "中通快递", new_waybill()),
                (mistyped.order_no, "中通快递", "YT0000000000000"),
                (order_b.order_no, "中通快递", new_waybill()),
                (third.order_no, "中通快递", shared),
            ]
        )
    )

    # The owner uploads the mixed file from the batch shipping page and reads the preview.
    login_in_browser(page, "owner", PASSWORD)
    page.get_by_role("link", name="批量发货").first.click()
    page.wait_for_url(f"{base}/admin/intercepts/shipmentupload/")
    _upload(page, base, mixed, shot="shipment_upload_0_form")
    assert (_count(page, "valid"), _count(page, "failed")) == ("2", "3")
    failed = page.locator("#rows-failed").inner_text()
    assert all(reason in failed for reason in (MISMATCH, NOT_FOUND, THIRD))
    screenshot(page, "shipment_upload_1_preview")

    # Confirming ships the good rows; the failed ones stay listed with their reasons.
    page.locator("#confirm-upload").click()
    page.locator('#upload-counts [data-count="shipped"]').wait_for()
    assert (_count(page, "shipped"), _count(page, "failed")) == ("2", "3")
    screenshot(page, "shipment_upload_2_done")

    # The failed rows come back as a workbook with the reason beside each row.
    with page.expect_download() as download:
        page.locator("#failed-rows-link").click()
    report = tmp_path / download.value.suggested_filename
    download.value.save_as(report)
    assert report.name.endswith("-failed-rows.xlsx")
    book = load_workbook(report)
    sheet = book.worksheets[0]
    rows = list(sheet.iter_rows(min_row=2))
    assert [row[3].value for row in rows] == [MISMATCH, NOT_FOUND, THIRD]

    # Fixed in that workbook: the right waybill, this shop's order, a waybill of its own.
    fixed_order = paid_order(world.shop_a, address="上海市幸福路4号")
    rows[0][2].value = new_waybill()
    rows[1][0].value = fixed_order.order_no
    rows[2][2].value = new_waybill()
    fixed = tmp_path / "发货单-已修改.xlsx"
    book.save(fixed)
    _upload(page, base, fixed)
    assert (_count(page, "valid"), _count(page, "failed")) == ("3", "0")
    screenshot(page, "shipment_upload_3_fixed_preview")
    page.locator("#confirm-upload").click()
    page.locator('#upload-counts [data-count="shipped"]').wait_for()
    assert _count(page, "shipped") == "3"
    page.goto(f"{base}/admin/intercepts/shipmentupload/")
    assert page.locator("#result_list tbody tr").count() == 2
    screenshot(page, "shipment_upload_5_list")

    # Every order of the file is shipped; the mistyped one's page shows it and its shipment.
    shipped = Order.objects.filter(
        pk__in=[o.pk for o in (*good, mistyped, fixed_order, third)],
        status=Order.Status.SHIPPED,
    ).count()
    assert shipped == 5
    page.goto(f"{base}/admin/intercepts/order/{mistyped.pk}/change/")
    assert "已发货" in page.locator("#content-main").inner_text()
    shipment = Shipment.objects.get(order=mistyped)
    assert shipment.parcel.waybill_no in page.locator("#content-main").inner_text()
    screenshot(page, "shipment_upload_4_order_shipped")


def test_shipping_one_order_from_its_page(world, browser_page):
    page = browser_page
    base = page.live_server_url
    zto = Courier.objects.get(code="ZTO")
    order = paid_order(world.shop_a, address="上海市幸福路8号")
    login_in_browser(page, "agent", PASSWORD)
    page.goto(f"{base}/admin/intercepts/order/{order.pk}/change/")
    page.locator("#ship-order-link").click()
    # The receiver is the order's, shown and never typed.
    assert "上海市幸福路8号" in page.locator("#order-receiver").inner_text()
    page.select_option("#id_courier", str(zto.pk))
    page.fill("#id_waybill_no", "YT0000000000000")
    page.locator("#content-main button[type=submit]").click()
    assert MISMATCH in page.locator(".form-refusal").inner_text()
    screenshot(page, "ship_order_1_refused")
    waybill = new_waybill()
    page.fill("#id_waybill_no", waybill)
    page.locator("#content-main button[type=submit]").click()
    page.wait_for_url(f"{base}/admin/intercepts/order/{order.pk}/change/")
    assert waybill in page.locator("#content-main").inner_text()
    assert "已发货" in page.locator("#content-main").inner_text()
    screenshot(page, "ship_order_2_shipped")
