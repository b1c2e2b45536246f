"""Role × route matrix for every workbench page, with the fixed cast.

Each row names a page and the status each member of the cast gets. Pages on "A" objects belong
to shop A; ``other`` is a member of shop B only and must get 404 for them, never a hint that the
object exists.
"""

import pytest
from django.urls import reverse

from couriers.models import Courier
from shops.models import EwaybillAccount

CAST = ("owner", "agent", "viewer", "other", "cs", "finance", "anonymous")


def row(owner, agent, viewer, other, cs, finance, anonymous=302):
    return dict(zip(CAST, (owner, agent, viewer, other, cs, finance, anonymous), strict=True))


# (route name, object key or None, expected statuses)
MATRIX = [
    ("admin:index", None, row(200, 200, 200, 200, 200, 200)),
    # Shops
    ("admin:shops_shop_changelist", None, row(200, 200, 200, 200, 200, 200)),
    ("admin:shops_shop_add", None, row(403, 403, 403, 403, 403, 403)),
    ("admin:shops_shop_change", "shop_a", row(200, 200, 200, 404, 200, 200)),
    ("admin:shops_shop_history", "shop_a", row(200, 200, 200, 404, 200, 200)),
    ("admin:shops_shop_delete", "shop_a", row(403, 403, 403, 404, 403, 403)),
    # Orders
    ("admin:intercepts_order_changelist", None, row(200, 200, 200, 200, 200, 200)),
    ("admin:intercepts_order_add", None, row(403, 403, 403, 403, 403, 403)),
    ("admin:intercepts_order_change", "order_a", row(200, 200, 200, 404, 200, 200)),
    ("admin:intercepts_order_delete", "order_a", row(403, 403, 403, 404, 403, 403)),
    # Parcels
    ("admin:intercepts_parcel_changelist", None, row(200, 200, 200, 200, 200, 200)),
    ("admin:intercepts_parcel_add", None, row(200, 200, 403, 200, 403, 403)),
    ("admin:intercepts_parcel_change", "parcel_a", row(200, 200, 200, 404, 200, 200)),
    ("admin:intercepts_parcel_history", "parcel_a", row(200, 200, 200, 404, 200, 200)),
    ("admin:intercepts_parcel_delete", "parcel_a", row(403, 403, 403, 404, 403, 403)),
    (
        "admin:intercepts_parcel_correct_waybill",
        "parcel_a",
        # Platform customer service settles a waybill two shops claim.
        row(200, 200, 403, 404, 200, 403),
    ),
    # E-waybill accounts: granted by platform customer service, read by the shop
    ("admin:shops_ewaybillaccount_changelist", None, row(200, 200, 200, 200, 200, 200)),
    ("admin:shops_ewaybillaccount_add", None, row(403, 403, 403, 403, 200, 403)),
    (
        "admin:shops_ewaybillaccount_change",
        "ewaybill_a",
        row(200, 200, 200, 404, 200, 200),
    ),
    (
        "admin:shops_ewaybillaccount_delete",
        "ewaybill_a",
        row(403, 403, 403, 404, 200, 403),
    ),
    # After-sales
    ("admin:intercepts_aftersale_changelist", None, row(200, 200, 200, 200, 200, 200)),
    ("admin:intercepts_aftersale_add", None, row(403, 403, 403, 403, 403, 403)),
    ("admin:intercepts_aftersale_change", "after_sale_a", row(200, 200, 200, 404, 200, 200)),
    ("admin:intercepts_aftersale_delete", "after_sale_a", row(403, 403, 403, 404, 403, 403)),
    # Platform-only and superuser-only pages
    ("admin:couriers_courier_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:couriers_courier_change", "courier", row(403, 403, 403, 403, 200, 200)),
    ("admin:couriers_courier_add", None, row(403, 403, 403, 403, 403, 403)),
    ("admin:couriers_courieraccount_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:couriers_courieraccount_add", None, row(403, 403, 403, 403, 403, 403)),
    ("admin:intercepts_courierpush_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:intercepts_courierpush_add", None, row(403, 403, 403, 403, 403, 403)),
    ("admin:auth_user_changelist", None, row(403, 403, 403, 403, 403, 403)),
    # Sign-in records: read by platform staff, written only by the sign-in itself
    ("admin:axes_accessattempt_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:axes_accessfailurelog_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:axes_accesslog_changelist", None, row(403, 403, 403, 403, 200, 200)),
    ("admin:axes_accessattempt_add", None, row(403, 403, 403, 403, 403, 403)),
    # Two-step sign-in: everyone signed in sets up their own
    ("admin:two_factor_setup", None, row(200, 200, 200, 200, 200, 200)),
    # Authenticators are removed by superusers only (their keys are never shown).
    ("admin:otp_totp_totpdevice_changelist", None, row(403, 403, 403, 403, 403, 403)),
    ("admin:otp_static_staticdevice_changelist", None, row(403, 403, 403, 403, 403, 403)),
    ("admin:auth_group_changelist", None, row(403, 403, 403, 403, 403, 403)),
]


def _ewaybill(shop):
    account, _created = EwaybillAccount.objects.get_or_create(
        shop=shop,
        courier=Courier.objects.get(code="ZTO"),
        defaults={"account_no": f"EWB-{shop.code}"},
    )
    return account


def _object(world, key):
    if key == "ewaybill_a":
        return _ewaybill(world.shop_a)
    return {
        "shop_a": world.shop_a,
        "order_a": world.after_sale_a.order,
        "parcel_a": world.parcel_a,
        "after_sale_a": world.after_sale_a,
        "courier": world.parcel_a.courier,
    }[key]


@pytest.mark.parametrize("who", CAST)
@pytest.mark.parametrize(("route", "obj_key", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
def test_role_route_matrix(world, login, who, route, obj_key, expected):
    args = [_object(world, obj_key).pk] if obj_key else []
    response = login(world.user(who)).get(reverse(route, args=args))
    assert response.status_code == expected[who], (who, route)
    if response.status_code == 302:
        assert reverse("admin:login") in response["Location"]


LISTS = [
    ("admin:intercepts_aftersale_changelist", lambda w: w.after_sale_b.order.order_no),
    ("admin:intercepts_order_changelist", lambda w: w.after_sale_b.order.order_no),
    ("admin:intercepts_parcel_changelist", lambda w: w.parcel_b.waybill_no),
    ("admin:shops_shop_changelist", lambda w: w.shop_b.name),
    ("admin:shops_ewaybillaccount_changelist", lambda w: _ewaybill(w.shop_b).account_no),
]


@pytest.mark.parametrize(("route", "marker"), LISTS, ids=[r for r, _ in LISTS])
@pytest.mark.parametrize("who", ["owner", "agent", "viewer"])
def test_other_shops_rows_never_listed(world, login, route, marker, who):
    hidden = marker(world)
    response = login(world.user(who)).get(reverse(route))
    assert response.status_code == 200
    assert hidden not in response.content.decode()


@pytest.mark.parametrize(("route", "marker"), LISTS, ids=[r for r, _ in LISTS])
def test_platform_staff_list_every_shop(world, login, route, marker):
    shown = marker(world)
    response = login(world.cs).get(reverse(route))
    assert shown in response.content.decode()


def test_other_shop_member_sees_own_rows_only(world, login):
    body = login(world.other).get(reverse("admin:intercepts_aftersale_changelist")).content
    assert world.after_sale_b.order.order_no.encode() in body
    assert world.after_sale_a.order.order_no.encode() not in body


def test_shop_filter_offered_to_platform_only(world, login):
    url = reverse("admin:intercepts_aftersale_changelist")
    merchant_page = login(world.owner).get(url).content.decode()
    platform_page = login(world.cs).get(url).content.decode()
    field = 'name="shop"'
    assert (field in merchant_page, "乙店" in merchant_page, field in platform_page) == (
        False,
        False,
        True,
    )


@pytest.mark.parametrize("term", ["shop-b", "乙店", " shop-b "])
def test_platform_staff_filter_by_a_shops_code_or_name(world, login, term):
    url = reverse("admin:intercepts_aftersale_changelist")
    body = login(world.cs).get(url, {"shop": term}).content.decode()
    shown = {
        order_no
        for order_no in (world.after_sale_a.order.order_no, world.after_sale_b.order.order_no)
        if order_no in body
    }
    assert shown == {world.after_sale_b.order.order_no}


def test_merchant_cannot_filter_into_another_shop(world, login):
    url = reverse("admin:intercepts_aftersale_changelist")
    body = login(world.owner).get(url, {"shop": world.shop_b.code}).content.decode()
    assert world.after_sale_b.order.order_no not in body


def test_order_autocomplete_offers_own_shop_only(world, login):
    url = reverse("admin:autocomplete")
    params = {"app_label": "intercepts", "model_name": "parcel", "field_name": "order", "term": ""}
    results = login(world.other).get(url, params).json()["results"]
    offered = {r["text"] for r in results}
    assert world.after_sale_b.order.order_no in offered
    assert world.after_sale_a.order.order_no not in offered


def test_order_autocomplete_searches_by_whole_number_only_in_own_shop(world, login):
    url = reverse("admin:autocomplete")
    params = {
        "app_label": "intercepts",
        "model_name": "parcel",
        "field_name": "order",
        "term": world.after_sale_a.order.order_no,
    }
    assert login(world.other).get(url, params).json()["results"] == []
    assert len(login(world.owner).get(url, params).json()["results"]) == 1


def test_parcel_form_offers_only_own_shops_orders_and_lines(world, login):
    client = login(world.other)
    add_fields = client.get(reverse("admin:intercepts_parcel_add")).context["form"].fields
    offered_orders = set(add_fields["order"].queryset.values_list("shop_id", flat=True))
    assert offered_orders == {world.shop_b.pk}
    assert "lines" not in add_fields  # a new parcel carries its order's lines
    # A shipped parcel is shown, not edited: its page has no field to change.
    change_url = reverse("admin:intercepts_parcel_change", args=[world.parcel_b.pk])
    assert client.get(change_url).context["adminform"].form.fields == {}


def test_viewer_post_is_refused(world, login):
    url = reverse("admin:intercepts_parcel_change", args=[world.parcel_a.pk])
    before = world.parcel_a.waybill_no
    response = login(world.viewer).post(url, {"waybill_no": "73999999999999"})
    assert response.status_code == 403
    world.parcel_a.refresh_from_db()
    assert world.parcel_a.waybill_no == before


def test_other_shop_post_to_parcel_is_404_and_changes_nothing(world, login):
    url = reverse("admin:intercepts_parcel_change", args=[world.parcel_a.pk])
    before = world.parcel_a.waybill_no
    response = login(world.other).post(url, {"waybill_no": "73999999999999"})
    assert response.status_code == 404
    world.parcel_a.refresh_from_db()
    assert world.parcel_a.waybill_no == before


@pytest.mark.parametrize("who", CAST)
def test_the_code_step_sends_users_without_an_authenticator_to_set_one_up(world, login, who):
    response = login(world.user(who)).get(reverse("admin:two_factor_verify"))
    expected = "admin:login" if who == "anonymous" else "admin:two_factor_setup"
    assert (response.status_code, response["Location"].split("?")[0]) == (302, reverse(expected))
