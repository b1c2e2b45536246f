"""One name per thing, and names where codes were: the Chinese workbench as a newcomer reads it.

Pages are rendered as the cast sees them, in Chinese unless a test asks for English.
"""

import re
from html import unescape

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import resolve, reverse
from django.utils import translation

from couriers.models import CourierAccount
from intercepts.models import TrackingEvent


def _crumbs(html: str) -> list[str]:
    """The page header's breadcrumbs: app, list, record."""
    header = re.search(r'<h1 class="overflow-hidden.*?</h1>', html, re.S).group(0)
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", part)).split())
        for part in re.split(r"<span[^>]*>chevron_right</span>", header)
    ]


def _sidebar_models():
    """The sidebar's lists and the model each lists; a report page of an admin (held
    settlements, on the anomalies' admin) is named for what it reports, not for the model."""
    for group in settings.UNFOLD["SIDEBAR"]["navigation"]:
        for item in group["items"]:
            url_name = resolve(str(item["link"])).url_name
            if not url_name.endswith("_changelist"):
                continue
            app_label, model_name = url_name.split("_")[:2]
            yield item["title"], apps.get_model(app_label, model_name)


def test_a_parcel_is_named_by_its_courier_not_the_courier_code(world):
    parcel = world.parcel_a
    with translation.override("zh-hans"):
        assert str(parcel) == f"{parcel.courier.name_zh} {parcel.waybill_no}"
    with translation.override("en"):
        assert str(parcel) == f"{parcel.courier.name_en} {parcel.waybill_no}"


def test_the_parcel_page_names_the_courier_in_its_title_and_breadcrumbs(world, login):
    parcel = world.parcel_a
    page = login(world.owner).get(reverse("admin:intercepts_parcel_change", args=[parcel.pk]))
    text = page.content.decode()
    assert _crumbs(text)[-1] == f"{parcel.courier.name_zh} {parcel.waybill_no}"
    assert f"{parcel.courier.code} {parcel.waybill_no}" not in text


@pytest.fixture
def scans(world):
    parcel = world.parcel_a
    for minute, source in enumerate(("poll", "demo", "kuaidi100")):
        TrackingEvent.objects.create(
            parcel=parcel,
            occurred_at=parcel.created_at.replace(minute=minute),
            raw_code=f"SCAN-{source.upper()}",
            stage="in_transit",
            description="运输中",
            source=source,
        )
    return parcel


def _cells(html: str, field: str) -> list[str]:
    return [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split())
        for cell in re.findall(rf'<td class="[^"]*field-{field} .*?</td>', html, re.S)
    ]


def test_tracking_sources_read_in_chinese(scans, world, login):
    page = login(world.owner).get(reverse("admin:intercepts_parcel_change", args=[scans.pk]))
    assert sorted(_cells(page.content.decode(), "source")) == sorted(
        ["物流查询", "演示数据", "快递推送（快递100）"]
    )


def test_every_gateway_protocol_has_a_tracking_source_label():
    # A push stores its gateway's protocol as the scans' source.
    assert set(CourierAccount.Protocol.values) <= set(TrackingEvent.Source.values)


def test_the_couriers_scan_codes_are_shown_to_platform_staff_only(scans, world, login):
    url = reverse("admin:intercepts_parcel_change", args=[scans.pk])
    merchant_page = login(world.owner).get(url).content.decode()
    assert "SCAN-POLL" not in merchant_page and "field-raw_code" not in merchant_page
    cs_page = login(world.cs).get(url).content.decode()
    assert "SCAN-POLL" in _cells(cs_page, "raw_code")


def test_a_required_select_offers_a_chinese_empty_choice(world, login):
    page = login(world.owner).get(
        reverse("admin:intercepts_parcel_correct_waybill", args=[world.parcel_a.pk])
    )
    text = page.content.decode()
    assert '<option value="">- 请选择 -</option>' in text
    assert "Select an option" not in text


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_sidebar_and_the_pages_name_each_list_alike(language):
    with translation.override(language):
        differ = [
            (str(title), str(model._meta.verbose_name_plural))
            for title, model in _sidebar_models()
            if model._meta.app_label in ("intercepts", "billing", "shops", "couriers")
            and str(title).lower() != str(model._meta.verbose_name_plural).lower()
        ]
    assert differ == []


def test_the_sidebar_names_match_the_pages_in_chinese_for_every_entry():
    with translation.override("zh-hans"):
        differ = [
            (str(title), str(model._meta.verbose_name_plural))
            for title, model in _sidebar_models()
            if str(title) != str(model._meta.verbose_name_plural)
        ]
    assert differ == []


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_no_app_is_named_like_one_of_its_lists(language):
    with translation.override(language):
        alike = [
            (model._meta.app_label, str(model._meta.verbose_name_plural))
            for _title, model in _sidebar_models()
            if str(model._meta.verbose_name_plural).lower()
            == str(apps.get_app_config(model._meta.app_label).verbose_name).lower()
        ]
    assert alike == []


def test_the_after_sales_breadcrumb_in_english(world, login):
    page = login(world.owner).get(
        reverse("admin:intercepts_aftersale_changelist"), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert _crumbs(page.content.decode()) == ["After-sales", "After-sale orders"]


def test_the_agreement_breadcrumb_names_the_app_then_the_shops(world, login):
    page = login(world.owner).get(
        reverse("admin:intercepts_shop_agreement", args=[world.shop_a.pk])
    )
    assert _crumbs(page.content.decode()) == ["店铺设置", "店铺", world.shop_a.name]


@pytest.mark.parametrize(
    ("who", "route", "crumbs"),
    [
        ("owner", "admin:intercepts_interceptrequest_changelist", ["售后", "拦截记录"]),
        # The ledger is platform staff's; merchants read their wallet's movements.
        ("finance", "admin:billing_ledgerentry_changelist", ["计费", "账本明细"]),
        ("owner", "admin:billing_invoicerequest_changelist", ["计费", "开票申请"]),
    ],
)
def test_lists_are_called_what_the_sidebar_and_the_index_call_them(
    world, login, who, route, crumbs
):
    client = login(world.user(who))
    url = reverse(route)
    assert _crumbs(client.get(url).content.decode()) == crumbs
    # Every link to the list on the index page (the sidebar's and the index's own) by its name.
    index = client.get(reverse("admin:index")).content.decode()
    names = set()
    for anchor in re.findall(
        rf'<a href="{url}"(?: class="(?!viewlink)[^"]*")?[^>]*>(.*?)</a>', index, re.S
    ):
        anchor = re.sub(
            r'<span class="material-symbols-outlined[^>]*>.*?</span>', "", anchor, flags=re.S
        )
        names.add(" ".join(unescape(re.sub(r"<[^>]+>", " ", anchor)).split()))
    assert names - {""} == {crumbs[1]}


def test_a_redirect_fee_rule_says_deliver_to_a_new_address():
    from billing.models import FeeAction
    from intercepts.models import InterceptRequest

    with translation.override("zh-hans"):
        assert str(FeeAction.REDIRECT.label) == str(InterceptRequest.Action.REDIRECT.label)
        assert str(FeeAction.REDIRECT.label) == "改址派送"


def test_a_finished_after_sale_shows_no_waiting_time(world, login):
    """已等待 N 天 is for cases someone still works on, not refunded or closed ones."""
    from intercepts.models import AfterSale

    for status in (AfterSale.Status.REFUNDED, AfterSale.Status.CLOSED):
        AfterSale.objects.filter(pk=world.after_sale_a.pk).update(status=status)
        page = login(world.owner).get(reverse("admin:intercepts_aftersale_changelist"))
        assert _cells(page.content.decode(), "age") == ["-"]


def test_the_home_page_is_called_the_workbench(world, login):
    page = login(world.owner).get(reverse("admin:index")).content.decode()
    title = re.search(r"<title>(.*?)</title>", page, re.S)[1]
    assert "售后工作台" in title and "站点管理" not in page


def test_the_parcel_and_order_pages_say_each_thing_once(world, login):
    """One 物流轨迹 heading on a parcel's page (the scans), one 买家 on an order's."""
    client = login(world.owner)
    parcel = client.get(reverse("admin:intercepts_parcel_change", args=[world.parcel_a.pk]))
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", parcel.content.decode(), re.S)
    assert [" ".join(h.split()) for h in headings].count("物流轨迹") == 1
    order = client.get(
        reverse("admin:intercepts_order_change", args=[world.after_sale_a.order_id])
    ).content.decode()
    labels = [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", x)).split())
        for x in re.findall(r"<label[^>]*>(.*?)</label>", order, re.S)
    ]
    assert labels.count("买家") == 1 and "买家姓名" not in labels
