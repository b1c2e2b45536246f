"""The "refresh tracking now" button: asks the courier over HTTP, within the user's shops."""

import pytest
from django.urls import reverse

from couriers.stages import ParcelStage
from tests.factories import sandbox_served


@pytest.fixture
def served(world, sandbox):
    sandbox_served(sandbox, "kuaidi100", [world.parcel_a.courier.code])
    world.parcel_a.waybill_no = "73000000000015"  # ends in 5: out for delivery at the sandbox
    world.parcel_a.stage = ParcelStage.IN_TRANSIT
    world.parcel_a.save()
    return world


def test_refresh_asks_the_courier_and_shows_its_answer(
    served, sandbox, login, django_capture_on_commit_callbacks
):
    client = login(served.agent)
    url = reverse("admin:intercepts_parcel_refresh", args=[served.parcel_a.pk])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url, follow=True)
    # The poll is queued once the request's transaction commits; the pickup it reads is then
    # checked against the order's payment.
    assert len(callbacks) == 2
    assert response.status_code == 200
    served.parcel_a.refresh_from_db()
    assert served.parcel_a.stage == sandbox.truth(served.parcel_a.waybill_no)["stage"]
    assert served.parcel_a.stage == ParcelStage.OUT_FOR_DELIVERY
    assert "已向快递公司请求最新物流" in response.content.decode()


def test_viewer_cannot_refresh_tracking(served, login, django_capture_on_commit_callbacks):
    url = reverse("admin:intercepts_parcel_refresh", args=[served.parcel_a.pk])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = login(served.viewer).post(url)
    assert response.status_code == 403
    assert callbacks == []  # nothing asked of the courier
    page = login(served.viewer).get(
        reverse("admin:intercepts_parcel_change", args=[served.parcel_a.pk])
    )
    assert "立即刷新物流" not in page.content.decode()


def test_refresh_of_another_shops_parcel_is_404(served, login):
    url = reverse("admin:intercepts_parcel_refresh", args=[served.parcel_a.pk])
    assert login(served.other).post(url).status_code == 404


def test_refresh_needs_post(served, login):
    url = reverse("admin:intercepts_parcel_refresh", args=[served.parcel_a.pk])
    assert login(served.owner).get(url).status_code == 405


def test_the_button_is_on_the_parcel_page(served, login):
    url = reverse("admin:intercepts_parcel_change", args=[served.parcel_a.pk])
    body = login(served.agent).get(url).content.decode()
    assert reverse("admin:intercepts_parcel_refresh", args=[served.parcel_a.pk]) in body
    assert "立即刷新物流" in body


def test_no_button_for_a_finished_parcel(served, login):
    served.parcel_a.stage = ParcelStage.DELIVERED
    served.parcel_a.save()
    url = reverse("admin:intercepts_parcel_change", args=[served.parcel_a.pk])
    body = login(served.agent).get(url).content.decode()
    assert reverse("admin:intercepts_parcel_refresh", args=[served.parcel_a.pk]) not in body
    assert "不再自动查询" in body
