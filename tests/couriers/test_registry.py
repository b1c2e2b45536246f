"""The courier registry seeded by migration: codes, phones and waybill patterns."""

import pytest

from couriers.models import Courier

PHONES = {
    "ZTO": "95311",
    "YTO": "95554",
    "YUNDA": "95546",
    "STO": "95543",
    "SF": "95338",
    "JD": "950616",
    "EMS": "11183",
    "JT": "956025",
}


@pytest.mark.django_db
def test_registry_has_the_eight_couriers_with_their_service_phones():
    assert dict(Courier.objects.values_list("code", "service_phone")) == PHONES


@pytest.mark.django_db
def test_each_example_waybill_matches_its_own_courier_only():
    couriers = list(Courier.objects.all())
    for courier in couriers:
        matching = {c.code for c in couriers if c.waybill_matches(courier.waybill_example)}
        assert matching == {courier.code}, courier.code


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "waybill"),
    [("ZTO", "7312345678901"), ("SF", "SF12"), ("YTO", "yt0000000000000"), ("JT", "JT000")],
)
def test_malformed_waybills_do_not_match(code, waybill):
    assert not Courier.objects.get(code=code).waybill_matches(waybill)


@pytest.mark.django_db
def test_names_follow_the_active_language():
    from django.utils import translation

    zto = Courier.objects.get(code="ZTO")
    with translation.override("en"):
        assert str(zto) == "ZTO Express"
    with translation.override("zh-hans"):
        assert str(zto) == "中通快递"
