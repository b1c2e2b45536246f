"""The buttons that move money ask first: "withdraw the intercept" and "approve the refund"
lead to a page that says what will happen (the fee released, the amount refunded); only its
post acts, through the services. Another shop's member gets 404 there, a viewer 403."""

import pytest
from django.urls import reverse

from billing import selectors as billing_selectors
from intercepts.models import AfterSale, InterceptRequest
from intercepts.services.intercept_requests import intercept_create
from tests.factories import sandbox_served
from tests.intercepts.readiness import make_ready
from tests.intercepts.test_intercept_pages_matrix import CAST, row

S = InterceptRequest.Status


@pytest.fixture(autouse=True)
def _ready(world, sandbox):
    # Nothing is sent in these tests: their transaction never commits, so no task is queued.
    sandbox_served(sandbox, "kuaidi100", ["ZTO"], callback_url="http://127.0.0.1:9/unheard")
    make_ready(world.shop_a, world.owner)
    make_ready(world.shop_b, world.other)
    AfterSale.objects.filter(pk=world.after_sale_a.pk).update(refund_amount_fen=245_500)


@pytest.fixture
def intercept_a(world):
    return intercept_create(
        actor=world.owner,
        parcel=world.parcel_a,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=world.after_sale_a,
    )


def _withdraw_url(intercept):
    return reverse("admin:intercepts_interceptrequest_withdraw", args=[intercept.pk])


def _approve_url(world):
    return reverse("admin:intercepts_aftersale_approve_refund", args=[world.after_sale_a.pk])


def test_withdrawing_asks_first_and_says_the_fee_comes_back(world, login, intercept_a):
    response = login(world.owner).get(_withdraw_url(intercept_a))
    assert response.status_code == 200
    page = response.content.decode()
    assert "撤回拦截？" in page
    assert "将立即撤回，冻结的 3.00 元费用退回钱包可用余额" in page
    assert 'id="confirm-form"' in page
    intercept_a.refresh_from_db()
    assert intercept_a.status == S.CREATED  # looking changes nothing


def test_the_confirmed_withdrawal_releases_the_fee(world, login, intercept_a):
    held = billing_selectors.wallet_balances(shop_id=world.shop_a.pk).held_fen
    response = login(world.owner).post(_withdraw_url(intercept_a))
    assert response.status_code == 302
    intercept_a.refresh_from_db()
    after = billing_selectors.wallet_balances(shop_id=world.shop_a.pk).held_fen
    assert (intercept_a.status, held - after) == (S.CANCELLED, 300)


def test_the_record_page_links_to_the_confirmation(world, login, intercept_a):
    url = reverse("admin:intercepts_interceptrequest_change", args=[intercept_a.pk])
    page = login(world.owner).get(url).content.decode()
    assert f'id="withdraw-intercept" href="{_withdraw_url(intercept_a)}"' in page


@pytest.mark.parametrize("who", CAST)
def test_who_sees_the_withdrawal_confirmation(world, login, intercept_a, who):
    response = login(world.user(who)).get(_withdraw_url(intercept_a))
    assert response.status_code == row(200, 200, 403, 404, 403, 403)[who]


def test_approving_asks_first_and_says_the_amount(world, login):
    response = login(world.owner).get(_approve_url(world))
    assert response.status_code == 200
    page = response.content.decode()
    assert "同意退款 2,455.00 元？" in page
    assert "买家的 2,455.00 元退款即获批准，由平台退还给买家。此操作无法撤销。" in page
    # Nothing was caught: the page says what that means.
    assert "该订单没有包裹被拦截退回" in page
    assert AfterSale.objects.get(pk=world.after_sale_a.pk).status == AfterSale.Status.PENDING


def test_the_after_sale_page_links_to_the_confirmation(world, login):
    url = reverse("admin:intercepts_aftersale_change", args=[world.after_sale_a.pk])
    page = login(world.owner).get(url).content.decode()
    assert f'id="approve-refund" href="{_approve_url(world)}"' in page


@pytest.mark.parametrize("who", CAST)
def test_who_sees_the_refund_confirmation(world, login, who):
    response = login(world.user(who)).get(_approve_url(world))
    assert response.status_code == row(200, 200, 403, 404, 403, 403)[who]


def test_another_shops_confirmations_are_not_there(world, login):
    other_intercept = intercept_create(
        actor=world.other,
        parcel=world.parcel_b,
        action=InterceptRequest.Action.RETURN,
        channel=InterceptRequest.Channel.WORKBENCH,
        after_sale=world.after_sale_b,
    )
    client = login(world.owner)
    approve_b = reverse("admin:intercepts_aftersale_approve_refund", args=[world.after_sale_b.pk])
    assert (
        client.get(_withdraw_url(other_intercept)).status_code,
        client.post(_withdraw_url(other_intercept)).status_code,
        client.get(approve_b).status_code,
        client.post(approve_b).status_code,
    ) == (404, 404, 404, 404)
    other_intercept.refresh_from_db()
    assert other_intercept.status == S.CREATED
    assert AfterSale.objects.get(pk=world.after_sale_b.pk).status == AfterSale.Status.PENDING
