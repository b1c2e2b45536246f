"""The workbench's shipping pages: one order from its page, and many from an uploaded file.

The cast meets every new page and button, each with one expected answer; the forms show the
platform's refusals in its own words; an upload is read, previewed, confirmed and shipped
through the services, and another shop's upload is a 404.
"""

import io

import pytest
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from couriers.models import Courier
from intercepts.models import Order, Shipment, ShipmentAnomaly, ShipmentUpload
from intercepts.services.shipment_uploads import shipment_upload_create
from shops.models import ShopMembership
from tests.factories import MembershipFactory, UserFactory
from tests.intercepts.shipping_helpers import new_waybill, paid_order
from tests.intercepts.test_admin_matrix import CAST, row

SHIP = "admin:intercepts_order_ship"
UPLOADS = "admin:intercepts_shipmentupload_changelist"
UPLOAD_ADD = "admin:intercepts_shipmentupload_add"
UPLOAD = "admin:intercepts_shipmentupload_change"
CONFIRM = "admin:intercepts_shipmentupload_confirm"
FAILED_ROWS = "admin:intercepts_shipmentupload_failed_rows"
ORIGINAL = "admin:intercepts_shipmentupload_file"
TEMPLATE = "admin:intercepts_shipmentupload_template"
HEADER = ["订单号", "快递公司", "运单号"]  # as the template names them


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path):
    """Uploaded files under the test's own folder."""
    settings.STORAGES = {
        **settings.STORAGES,
        "shipment_uploads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "shipment-uploads"), "base_url": None},
        },
    }
    from django.core.files.storage import storages

    field = ShipmentUpload._meta.get_field("file")
    previous = field.storage
    field.storage = storages["shipment_uploads"]
    yield tmp_path
    field.storage = previous


@pytest.fixture
def zto(db):
    return Courier.objects.get(code="ZTO")


@pytest.fixture
def order_a(world):
    return paid_order(world.shop_a)


def xlsx(rows, header=HEADER) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for values in rows:
        sheet.append(list(values))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def as_file(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def make_upload(shop, actor, rows, capture, name="发货.xlsx") -> ShipmentUpload:
    with capture(execute=True):
        upload = shipment_upload_create(actor=actor, shop=shop, upload=as_file(name, xlsx(rows)))
    upload.refresh_from_db()
    return upload


@pytest.fixture
def upload_a(world, zto, django_capture_on_commit_callbacks):
    """Shop A's upload in preview: one row to ship, one failing (4009)."""
    good = paid_order(world.shop_a)
    bad = paid_order(world.shop_a)
    rows = [
        (good.order_no, "中通快递", new_waybill()),
        (bad.order_no, "中通快递", "YT0000000000000"),
    ]
    return make_upload(world.shop_a, world.owner, rows, django_capture_on_commit_callbacks)


def _get(login, who, url):
    return login(who).get(url)


# --- One order from its page ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"), row(200, 200, 403, 404, 403, 403).items() | {("anonymous", 302)}
)
def test_ship_page_by_role(world, login, order_a, who, status):
    response = login(world.user(who)).get(reverse(SHIP, args=[order_a.pk]))
    assert response.status_code == status


def test_superuser_may_ship_any_shops_order(world, login, order_a):
    root = UserFactory(username="root", is_superuser=True)
    assert login(root).get(reverse(SHIP, args=[order_a.pk])).status_code == 200


@pytest.mark.parametrize(
    ("who", "offered"),
    [("owner", True), ("agent", True), ("viewer", False), ("cs", False), ("finance", False)],
)
def test_ship_button_on_an_order_awaiting_shipment(world, login, order_a, who, offered):
    page = login(world.user(who)).get(reverse("admin:intercepts_order_change", args=[order_a.pk]))
    assert ('id="ship-order-link"' in page.content.decode()) is offered


def test_no_ship_button_on_a_shipped_order(world, login):
    page = login(world.owner).get(
        reverse("admin:intercepts_order_change", args=[world.after_sale_a.order_id])
    )
    assert 'id="ship-order-link"' not in page.content.decode()


def test_ship_page_shows_the_orders_receiver_and_no_receiver_field(world, login, order_a):
    response = login(world.agent).get(reverse(SHIP, args=[order_a.pk]))
    body = response.content.decode()
    assert (list(response.context["form"].fields), order_a.receiver_address in body) == (
        ["courier", "waybill_no"],
        True,
    )


def test_shipping_an_order_from_its_page(world, login, order_a, zto):
    waybill = new_waybill()
    response = login(world.agent).post(
        reverse(SHIP, args=[order_a.pk]), {"courier": zto.pk, "waybill_no": waybill}
    )
    assert response.status_code == 302
    order_a.refresh_from_db()
    shipment = Shipment.objects.get(order=order_a)
    assert (order_a.status, shipment.channel, shipment.parcel.waybill_no, shipment.actor) == (
        Order.Status.SHIPPED,
        Shipment.Channel.WORKBENCH,
        waybill,
        world.agent,
    )


def test_mismatched_waybill_is_refused_with_the_platforms_words(world, login, order_a, zto):
    response = login(world.owner).post(
        reverse(SHIP, args=[order_a.pk]), {"courier": zto.pk, "waybill_no": "YT0000000000000"}
    )
    assert (response.status_code, response.context["form"].non_field_errors()) == (
        200,
        ["运单号和物流公司不匹配（4009）"],
    )


def test_a_third_address_is_refused_with_the_platforms_words(world, login, zto):
    waybill = new_waybill()
    client = login(world.owner)
    for phone, address in (("13800000001", "上海市1号"), ("13800000002", "北京市2号")):
        first = paid_order(world.shop_a, phone=phone, address=address)
        client.post(reverse(SHIP, args=[first.pk]), {"courier": zto.pk, "waybill_no": waybill})
    third = paid_order(world.shop_a, phone="13800000003", address="广州市3号")
    response = client.post(
        reverse(SHIP, args=[third.pk]), {"courier": zto.pk, "waybill_no": waybill}
    )
    assert response.context["form"].non_field_errors() == ["当前运单号对应3个收件地址，上传失败"]


def test_a_second_address_ships_with_a_warning_and_shows_on_the_order(world, login, zto):
    waybill = new_waybill()
    client = login(world.owner)
    first = paid_order(world.shop_a, phone="13800000001", address="上海市1号")
    client.post(reverse(SHIP, args=[first.pk]), {"courier": zto.pk, "waybill_no": waybill})
    second = paid_order(world.shop_a, phone="13800000002", address="北京市2号")
    response = client.post(
        reverse(SHIP, args=[second.pk]), {"courier": zto.pk, "waybill_no": waybill}, follow=True
    )
    messages = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert [level for level, text in messages if "疑似虚假发货" in text] == ["warning"]
    body = response.content.decode()
    # The order page lists the flagged shipment and its anomaly.
    anomaly = ShipmentAnomaly.objects.get(order=second)
    assert (anomaly.get_kind_display() in body, "北京市2号" in body) == (True, True)


def test_order_page_shows_shipments_receipt_date_and_held_settlement(world, login, order_a, zto):
    from django.utils import timezone

    login(world.owner).post(
        reverse(SHIP, args=[order_a.pk]), {"courier": zto.pk, "waybill_no": new_waybill()}
    )
    Order.objects.filter(pk=order_a.pk).update(settlement_held_at=timezone.now())
    response = login(world.viewer).get(reverse("admin:intercepts_order_change", args=[order_a.pk]))
    fields = [
        field.field["name"]
        for fieldset in response.context["adminform"]
        for line in fieldset
        for field in line
    ]
    inlines = [
        formset.opts.__class__.__name__ for formset in response.context["inline_admin_formsets"]
    ]
    assert (
        {"receipt_confirm_at", "settlement_held_at", "receiver"} <= set(fields),
        {"OrderShipmentInline", "OrderAnomalyInline"} <= set(inlines),
        "工作台" in response.content.decode(),  # the shipment's channel
    ) == (True, True, True)


def test_other_shops_order_cannot_be_shipped(world, login, zto):
    order_b = paid_order(world.shop_b)
    response = login(world.owner).post(
        reverse(SHIP, args=[order_b.pk]), {"courier": zto.pk, "waybill_no": new_waybill()}
    )
    assert (response.status_code, Shipment.objects.filter(order=order_b).exists()) == (404, False)


def test_viewer_post_ships_nothing(world, login, order_a, zto):
    response = login(world.viewer).post(
        reverse(SHIP, args=[order_a.pk]), {"courier": zto.pk, "waybill_no": new_waybill()}
    )
    assert (response.status_code, Shipment.objects.filter(order=order_a).exists()) == (403, False)


def test_inactive_courier_is_not_offered(world, login, order_a, zto):
    Courier.objects.filter(pk=zto.pk).update(is_active=False)
    response = login(world.owner).get(reverse(SHIP, args=[order_a.pk]))
    assert zto not in response.context["form"].fields["courier"].queryset


# --- Batch upload: who sees and does what --------------------------------------------------

UPLOAD_MATRIX = [
    (UPLOADS, False, row(200, 200, 200, 200, 200, 200)),
    (UPLOAD_ADD, False, row(200, 200, 403, 200, 403, 403)),
    (TEMPLATE, False, row(200, 200, 200, 200, 200, 200)),
    (UPLOAD, True, row(200, 200, 200, 404, 200, 200)),
    (FAILED_ROWS, True, row(200, 200, 200, 404, 200, 200)),
    (ORIGINAL, True, row(200, 200, 200, 404, 200, 200)),
    ("admin:intercepts_shipmentupload_delete", True, row(403, 403, 403, 404, 403, 403)),
]


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize(
    ("route", "of_upload", "expected"), UPLOAD_MATRIX, ids=[m[0] for m in UPLOAD_MATRIX]
)
def test_upload_pages_by_role(world, login, upload_a, who, route, of_upload, expected):
    args = [upload_a.pk] if of_upload else []
    response = login(world.user(who)).get(reverse(route, args=args))
    assert response.status_code == expected[who]


@pytest.mark.parametrize(
    ("who", "status"), row(302, 302, 403, 404, 403, 403).items() | {("anonymous", 302)}
)
def test_confirm_by_role(world, login, upload_a, who, status, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(world.user(who)).post(reverse(CONFIRM, args=[upload_a.pk]))
    upload_a.refresh_from_db()
    moved = upload_a.status == ShipmentUpload.Status.DONE
    assert (response.status_code, moved) == (status, who in ("owner", "agent"))


@pytest.mark.parametrize(
    ("who", "offered"),
    [("owner", True), ("agent", True), ("viewer", False), ("cs", False), ("finance", False)],
)
def test_confirm_button_by_role(world, login, upload_a, who, offered):
    body = login(world.user(who)).get(reverse(UPLOAD, args=[upload_a.pk])).content.decode()
    assert ('id="confirm-upload"' in body) is offered


@pytest.mark.parametrize("who", ["owner", "agent", "viewer"])
def test_other_shops_uploads_never_listed(
    world, login, who, zto, django_capture_on_commit_callbacks
):
    order_b = paid_order(world.shop_b)
    make_upload(
        world.shop_b,
        world.other,
        [(order_b.order_no, "中通快递", new_waybill())],
        django_capture_on_commit_callbacks,
        name="乙店发货单.xlsx",
    )
    body = login(world.user(who)).get(reverse(UPLOADS)).content.decode()
    assert "乙店发货单.xlsx" not in body


def test_platform_staff_list_every_shops_uploads(world, login, upload_a):
    body = login(world.cs).get(reverse(UPLOADS)).content.decode()
    assert upload_a.file_name in body


def test_sidebar_offers_batch_shipping(world, login):
    body = login(world.viewer).get(reverse("admin:index")).content.decode()
    assert reverse(UPLOADS) in body


# --- Uploading -----------------------------------------------------------------------------


def test_one_shop_needs_no_shop_chooser(world, login):
    form = login(world.owner).get(reverse(UPLOAD_ADD)).context["form"]
    assert form.fields["shop"].widget.is_hidden


def test_several_shops_choose_one(world, login):
    both = MembershipFactory(user__username="both", shop=world.shop_a).user
    MembershipFactory(user=both, shop=world.shop_b, role=ShopMembership.Role.AGENT)
    MembershipFactory(
        user=UserFactory(username="x"), shop=world.shop_b, role=ShopMembership.Role.VIEWER
    )
    form = login(both).get(reverse(UPLOAD_ADD)).context["form"]
    offered = set(form.fields["shop"].queryset.values_list("pk", flat=True))
    assert (form.fields["shop"].widget.is_hidden, offered) == (
        False,
        {world.shop_a.pk, world.shop_b.pk},
    )


def test_a_viewers_shop_is_not_offered(world, login):
    mixed = MembershipFactory(user__username="mixed", shop=world.shop_a).user
    MembershipFactory(user=mixed, shop=world.shop_b, role=ShopMembership.Role.VIEWER)
    response = login(mixed).post(
        reverse(UPLOAD_ADD),
        {"shop": world.shop_b.pk, "file": as_file("a.xlsx", xlsx([]))},
    )
    assert (response.status_code, "shop" in response.context["form"].errors) == (200, True)


def test_a_file_that_is_not_a_spreadsheet_is_refused(world, login):
    response = login(world.owner).post(
        reverse(UPLOAD_ADD), {"shop": world.shop_a.pk, "file": as_file("a.pdf", b"%PDF-1.4")}
    )
    assert response.context["form"].errors["file"] == ["请上传 xlsx 或 csv 文件。"]


def test_uploading_reads_the_file_and_shows_the_preview(
    world, login, zto, django_capture_on_commit_callbacks
):
    good = paid_order(world.shop_a)
    order_b = paid_order(world.shop_b)
    rows = [
        (good.order_no, "中通快递", new_waybill()),
        (good.order_no, "中通快递", "YT0000000000000"),
        (order_b.order_no, "中通快递", new_waybill()),
    ]
    client = login(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse(UPLOAD_ADD), {"shop": world.shop_a.pk, "file": as_file("f.xlsx", xlsx(rows))}
        )
    upload = ShipmentUpload.objects.get(shop=world.shop_a)
    assert response["Location"] == reverse(UPLOAD, args=[upload.pk])
    page = client.get(response["Location"])
    sections = {s["key"]: [r.row_no for r in s["rows"]] for s in page.context["sections"]}
    body = page.content.decode()
    assert (
        sections,
        page.context["counts"]["valid"],
        "运单号和物流公司不匹配" in body,
        "本店没有这个订单号的订单" in body,
    ) == ({"valid": [2], "failed": [3, 4]}, 1, True, True)


def test_preview_pages_the_failed_rows_by_a_hundred(
    world, login, zto, django_capture_on_commit_callbacks
):
    rows = [(f"NO-SUCH-{n}", "中通快递", new_waybill()) for n in range(130)]
    upload = make_upload(world.shop_a, world.owner, rows, django_capture_on_commit_callbacks)
    client = login(world.owner)
    first = client.get(reverse(UPLOAD, args=[upload.pk]))
    second = client.get(reverse(UPLOAD, args=[upload.pk]), {"failed_page": 2})
    [page1] = first.context["sections"]
    [page2] = second.context["sections"]
    assert (len(page1["rows"]), len(page2["rows"]), page2["rows"][0].row_no) == (100, 30, 102)


def test_failed_rows_report_has_the_reasons(world, login, upload_a):
    response = login(world.owner).get(reverse(FAILED_ROWS, args=[upload_a.pk]))
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert (
        f"shipment-upload-{upload_a.pk}-failed-rows.xlsx" in response["Content-Disposition"],
        rows[0][3],
        rows[1][3],
    ) == (True, "原因", "运单号和物流公司不匹配（4009）")


def test_original_file_is_given_back_as_uploaded(world, login, upload_a):
    response = login(world.viewer).get(reverse(ORIGINAL, args=[upload_a.pk]))
    data = b"".join(response.streaming_content)
    upload_a.file.open("rb")
    assert data == upload_a.file.read()


def test_template_has_the_columns(world, login):
    response = login(world.owner).get(reverse(TEMPLATE))
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    assert list(next(sheet.iter_rows(values_only=True))) == HEADER


def test_same_file_again_is_noted(world, login, upload_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        again = shipment_upload_create(
            actor=world.owner,
            shop=world.shop_a,
            upload=as_file("again.xlsx", upload_a.file.open("rb").read()),
        )
    response = login(world.owner).get(reverse(UPLOAD, args=[again.pk]))
    assert (response.context["earlier"], 'id="same-file-note"' in response.content.decode()) == (
        upload_a,
        True,
    )


def test_a_file_being_read_refreshes_its_page_with_the_nonce(world, login):
    upload = shipment_upload_create(  # its reading is queued on commit, never run here
        actor=world.owner, shop=world.shop_a, upload=as_file("a.xlsx", xlsx([]))
    )
    response = login(world.owner).get(reverse(UPLOAD, args=[upload.pk]))
    body = response.content.decode()
    nonce = response.context["csp_nonce"]
    assert f'<script nonce="{nonce}">' in body and "window.location.reload" in body


def test_a_preview_does_not_refresh(world, login, upload_a):
    body = login(world.owner).get(reverse(UPLOAD, args=[upload_a.pk])).content.decode()
    assert "window.location.reload" not in body


def test_confirming_ships_the_valid_rows_and_shows_the_outcome(
    world, login, upload_a, django_capture_on_commit_callbacks
):
    client = login(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse(CONFIRM, args=[upload_a.pk]))
    page = client.get(reverse(UPLOAD, args=[upload_a.pk]))
    counts = page.context["counts"]
    keys = [s["key"] for s in page.context["sections"]]
    assert (counts["shipped"], counts["refused"], counts["failed"], keys) == (
        1,
        0,
        1,
        ["shipped", "failed"],
    )


def test_a_row_refused_when_shipping_shows_its_reason(
    world, login, upload_a, django_capture_on_commit_callbacks
):
    # The order is cancelled between the preview and the confirmation.
    row = upload_a.rows.get(outcome="valid")
    Order.objects.filter(pk=row.order_id).update(status=Order.Status.CANCELLED)
    client = login(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse(CONFIRM, args=[upload_a.pk]))
    page = client.get(reverse(UPLOAD, args=[upload_a.pk]))
    [refused] = [s for s in page.context["sections"] if s["key"] == "refused"]
    assert [r.reason for r in refused["rows"]] == ["订单已取消或已完成，不能发货。"]


def test_confirming_twice_says_it_was_confirmed_already(
    world, login, upload_a, django_capture_on_commit_callbacks
):
    client = login(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse(CONFIRM, args=[upload_a.pk]))
    response = client.post(reverse(CONFIRM, args=[upload_a.pk]), follow=True)
    *_earlier, message = [str(m) for m in response.context["messages"]]
    assert message == "该批次已确认过。"


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_upload_list_queries_do_not_grow_with_its_rows(
    world, login, zto, django_capture_on_commit_callbacks
):
    client = login(world.owner)
    rows = [(paid_order(world.shop_a).order_no, "中通快递", new_waybill())]
    make_upload(world.shop_a, world.owner, rows, django_capture_on_commit_callbacks)
    one = _queries(client, reverse(UPLOADS))
    capture = django_capture_on_commit_callbacks
    for n in range(4):
        make_upload(world.shop_a, world.owner, rows, capture, name=f"{n}.xlsx")
    assert _queries(client, reverse(UPLOADS)) == one


def test_upload_page_queries_do_not_grow_with_its_rows(
    world, login, zto, django_capture_on_commit_callbacks
):
    client = login(world.owner)
    few = make_upload(
        world.shop_a,
        world.owner,
        [(f"NO-{n}", "中通快递", new_waybill()) for n in range(2)],
        django_capture_on_commit_callbacks,
    )
    many = make_upload(
        world.shop_a,
        world.owner,
        [(f"NO-{n}", "中通快递", new_waybill()) for n in range(60)],
        django_capture_on_commit_callbacks,
    )
    assert _queries(client, reverse(UPLOAD, args=[many.pk])) == _queries(
        client, reverse(UPLOAD, args=[few.pk])
    )


def test_an_unreadable_file_says_why_on_its_page(world, login, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload = shipment_upload_create(
            actor=world.owner,
            shop=world.shop_a,
            upload=as_file("a.xlsx", xlsx([("1", "2", "3")], header=["甲", "乙", "丙"])),
        )
    upload.refresh_from_db()
    body = login(world.owner).get(reverse(UPLOAD, args=[upload.pk])).content.decode()
    assert (upload.status, f"文件无法读取：{upload.error}" in body) == ("failed", True)
