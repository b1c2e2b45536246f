"""The intercept service agreement: read by the shop's members, signed by its owner or an
after-sales agent (whoever first intercepts) for the current version, with who and when kept;
eligibility then counts it as signed."""

import pytest
from django.urls import reverse

from intercepts.models import InterceptPolicy
from shops.models import Shop


def _url(shop) -> str:
    return reverse("admin:intercepts_shop_agreement", args=[shop.pk])


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 200),
        ("agent", 200),
        ("viewer", 200),
        ("other", 404),
        ("cs", 200),
        ("finance", 200),
        ("anonymous", 302),
    ],
)
def test_who_reads_the_agreement(world, login, who, status):
    response = login(world.user(who)).get(_url(world.shop_a))
    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert "拦截服务协议" in page and "仅在快递成功拦截时扣除" in page
        assert ('id="agreement-form"' in page) is (who in ("owner", "agent"))


def test_the_owner_signs_the_current_version(world, login):
    version = InterceptPolicy.current().agreement_version
    client = login(world.owner)
    refused = client.post(_url(world.shop_a), {"version": version})
    assert refused.status_code == 200 and "请勾选" in refused.content.decode()
    assert Shop.objects.get(pk=world.shop_a.pk).intercept_agreement_signed_at is None

    response = client.post(_url(world.shop_a), {"version": version, "agree": "on"})
    assert response.status_code == 302
    shop = Shop.objects.get(pk=world.shop_a.pk)
    assert shop.intercept_agreement_version == version
    assert shop.intercept_agreement_signed_by == world.owner
    assert shop.intercept_agreement_signed_at is not None
    assert "签署" in client.get(_url(world.shop_a)).content.decode()


def test_a_stale_version_is_refused(world, login):
    response = login(world.owner).post(_url(world.shop_a), {"version": "1999-01", "agree": "on"})
    assert response.status_code == 200 and "不是最新版本" in response.content.decode()
    assert Shop.objects.get(pk=world.shop_a.pk).intercept_agreement_signed_at is None


@pytest.mark.parametrize(
    ("who", "status"), [("viewer", 403), ("other", 404), ("cs", 403), ("finance", 403)]
)
def test_only_the_owner_or_an_agent_signs(world, login, who, status):
    version = InterceptPolicy.current().agreement_version
    response = login(world.user(who)).post(_url(world.shop_a), {"version": version, "agree": "on"})
    assert response.status_code == status
    assert Shop.objects.get(pk=world.shop_a.pk).intercept_agreement_signed_at is None


def test_the_shop_page_links_to_the_agreement(world, login):
    page = login(world.agent).get(reverse("admin:shops_shop_change", args=[world.shop_a.pk]))
    assert _url(world.shop_a) in page.content.decode()


def test_an_agent_signs_and_goes_back_where_they_came_from(world, login):
    version = InterceptPolicy.current().agreement_version
    back = reverse("admin:intercepts_aftersale_intercept", args=[world.after_sale_a.pk])
    response = login(world.agent).post(
        _url(world.shop_a), {"version": version, "agree": "on", "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    assert Shop.objects.get(pk=world.shop_a.pk).intercept_agreement_signed_by == world.agent


def test_next_never_leaves_the_site(world, login):
    version = InterceptPolicy.current().agreement_version
    response = login(world.agent).post(
        _url(world.shop_a), {"version": version, "agree": "on", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("admin:shops_shop_change", args=[world.shop_a.pk])
