"""Role × route matrix for the intercept pages and buttons: the shop's owner and agents
intercept, a viewer only looks, another shop's member gets 404, platform CS intercepts for any
shop but only on an after-sale under arbitration, finance never."""

import pytest
from django.urls import reverse
from django.utils.http import urlencode

from intercepts.models import AfterSale, InterceptEvent, InterceptRequest
from intercepts.services.intercept_requests import intercept_create
from tests.factories import sandbox_served
from tests.intercepts.readiness import PIN, make_ready

CAST = ("owner", "agent", "viewer", "other", "cs", "finance", "anonymous")


def row(owner, agent, viewer, other, cs, finance, anonymous=302):
    return dict(zip(CAST, (owner, agent, viewer, other, cs, finance, anonymous), strict=True))


@pytest.fixture(autouse=True)
def _ready(world, sandbox):
    # ZTO takes intercepts through the sandbox's kuaidi100 gateway (nothing is sent in these
    # tests: their transaction never commits, so no task is queued).
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    make_ready(world.shop_b, world.other)


@pytest.fixture
def arbitrated(world):
    AfterSale.objects.filter(pk__in=[world.after_sale_a.pk, world.after_sale_b.pk]).update(
        arbitration=AfterSale.Arbitration.IN_PROGRESS
    )


@pytest.fixture
def intercept_a(world):
    return intercept_create(
        actor=world.owner,
        parcel=world.parcel_a,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=world.after_sale_a,
    )


def _intercept_url(after_sale):
    return reverse("admin:intercepts_aftersale_intercept", args=[after_sale.pk])


@pytest.mark.parametrize("who", CAST)
def test_intercept_page_on_an_ordinary_after_sale(world, login, who):
    response = login(world.user(who)).get(_intercept_url(world.after_sale_a))
    assert response.status_code == row(200, 200, 403, 404, 403, 403)[who]


@pytest.mark.parametrize("who", CAST)
def test_intercept_page_on_an_after_sale_under_arbitration(world, login, arbitrated, who):
    response = login(world.user(who)).get(_intercept_url(world.after_sale_a))
    assert response.status_code == row(200, 200, 403, 404, 200, 403)[who]


def test_cs_intercepts_for_any_shop_under_arbitration(world, login, arbitrated):
    response = login(world.cs).get(_intercept_url(world.after_sale_b))
    assert response.status_code == 200
    page = response.content.decode()  # in Chinese, the default language
    assert "代商家发起拦截" in page and 'name="pin"' not in page and 'name="reason"' in page


@pytest.mark.parametrize("who", CAST)
def test_status_panel(world, login, intercept_a, who):
    url = reverse("admin:intercepts_interceptrequest_panel", args=[intercept_a.pk])
    response = login(world.user(who)).get(url)
    assert response.status_code == row(200, 200, 200, 404, 200, 200)[who]


@pytest.mark.parametrize("who", CAST)
def test_withdraw(world, login, intercept_a, who):
    url = reverse("admin:intercepts_interceptrequest_withdraw", args=[intercept_a.pk])
    response = login(world.user(who)).post(url)
    expected = row(302, 302, 403, 404, 403, 403)[who]
    assert response.status_code == expected
    intercept_a.refresh_from_db()
    withdrawn = expected == 302 and who != "anonymous"
    assert (intercept_a.status == InterceptRequest.Status.CANCELLED) is withdrawn


@pytest.mark.parametrize("who", CAST)
def test_withdraw_under_arbitration(world, login, arbitrated, intercept_a, who):
    url = reverse("admin:intercepts_interceptrequest_withdraw", args=[intercept_a.pk])
    response = login(world.user(who)).post(url)
    expected = row(302, 302, 403, 404, 302, 403)[who]
    assert response.status_code == expected
    intercept_a.refresh_from_db()
    withdrawn = expected == 302 and who != "anonymous"
    assert (intercept_a.status == InterceptRequest.Status.CANCELLED) is withdrawn


@pytest.mark.parametrize("who", CAST)
def test_approve_refund(world, login, who):
    url = reverse("admin:intercepts_aftersale_approve_refund", args=[world.after_sale_a.pk])
    response = login(world.user(who)).post(url)
    expected = row(302, 302, 403, 404, 403, 403)[who]
    assert response.status_code == expected
    status = AfterSale.objects.get(pk=world.after_sale_a.pk).status
    approved = expected == 302 and who != "anonymous"
    assert (status == AfterSale.Status.APPROVED) is approved


@pytest.mark.parametrize(
    ("who", "shown"),
    [("owner", True), ("agent", True), ("viewer", False), ("cs", False), ("finance", False)],
)
def test_the_intercept_button_on_the_after_sale_page(world, login, who, shown):
    url = reverse("admin:intercepts_aftersale_change", args=[world.after_sale_a.pk])
    page = login(world.user(who)).get(url).content.decode()
    assert ('id="start-intercept"' in page) is shown
    assert ('id="approve-refund"' in page) is shown


@pytest.mark.parametrize(("who", "shown"), [("cs", True), ("viewer", False), ("finance", False)])
def test_the_cs_button_under_arbitration(world, login, arbitrated, who, shown):
    url = reverse("admin:intercepts_aftersale_change", args=[world.after_sale_a.pk])
    assert ('id="start-intercept"' in login(world.user(who)).get(url).content.decode()) is shown


def test_no_button_once_the_refund_is_done(world, login):
    AfterSale.objects.filter(pk=world.after_sale_a.pk).update(status=AfterSale.Status.REFUNDED)
    url = reverse("admin:intercepts_aftersale_change", args=[world.after_sale_a.pk])
    assert 'id="start-intercept"' not in login(world.owner).get(url).content.decode()


@pytest.mark.parametrize(("who", "shown"), [("owner", True), ("agent", True), ("viewer", False)])
def test_the_withdraw_button(world, login, intercept_a, who, shown):
    url = reverse("admin:intercepts_interceptrequest_change", args=[intercept_a.pk])
    page = login(world.user(who)).get(url).content.decode()
    assert ('id="withdraw-intercept"' in page) is shown


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("other", 404), ("cs", 403)])
def test_who_may_not_confirm_makes_nothing(world, login, who, status):
    response = login(world.user(who)).post(
        _intercept_url(world.after_sale_a), {"token": "t", "action": "return", "pin": PIN}
    )
    assert response.status_code == status
    assert not InterceptRequest.objects.exists()


def test_cs_confirms_with_a_reason_and_no_password(world, login, arbitrated):
    client = login(world.cs)
    refused = client.post(_intercept_url(world.after_sale_b), {"token": "t1", "action": "return"})
    assert refused.status_code == 200 and not InterceptRequest.objects.exists()
    response = client.post(
        _intercept_url(world.after_sale_b),
        {"token": "t2", "action": "return", "reason": "仲裁判定买家胜诉，代商家拦截"},
    )
    assert response.status_code == 302
    [intercept] = InterceptRequest.objects.all()
    assert intercept.shop_id == world.shop_b.pk  # the merchant's wallet pays
    assert (intercept.channel, intercept.requested_by) == (
        InterceptRequest.Channel.PLATFORM_CS,
        world.cs,
    )
    event = intercept.events.get(to_status=InterceptRequest.Status.CREATED)
    assert (event.actor, event.source, event.note) == (
        world.cs,
        InterceptEvent.Source.USER,
        "仲裁判定买家胜诉，代商家拦截",
    )


def test_a_merchant_confirms_with_the_payment_password(world, login):
    client = login(world.agent)
    wrong = client.post(
        _intercept_url(world.after_sale_a), {"token": "t1", "action": "return", "pin": "000000"}
    )
    assert wrong.status_code == 200 and not InterceptRequest.objects.exists()
    assert "支付密码错误" in wrong.content.decode()
    right = client.post(
        _intercept_url(world.after_sale_a), {"token": "t2", "action": "return", "pin": PIN}
    )
    assert right.status_code == 302
    assert InterceptRequest.objects.get().channel == InterceptRequest.Channel.WORKBENCH


def test_first_use_leads_to_the_agreement(world, login):
    from shops.models import Shop

    Shop.objects.filter(pk=world.shop_a.pk).update(intercept_agreement_signed_at=None)
    response = login(world.agent).get(_intercept_url(world.after_sale_a))
    agreement = reverse("admin:intercepts_shop_agreement", args=[world.shop_a.pk])
    assert response.status_code == 302
    assert (
        response["Location"]
        == f"{agreement}?{urlencode({'next': _intercept_url(world.after_sale_a)})}"
    )


def test_an_overlong_token_is_refused_not_an_error(world, login):
    response = login(world.agent).post(
        _intercept_url(world.after_sale_a), {"token": "x" * 100, "action": "return", "pin": PIN}
    )
    assert response.status_code == 200 and not InterceptRequest.objects.exists()
