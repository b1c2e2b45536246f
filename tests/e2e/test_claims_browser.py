"""A claim in a real browser, in Chinese: the merchant files it with a photo from the intercept
record, customer service passes it to the courier and approves a lower amount, finance pays it,
and the merchant sees the compensation in the wallet and the history on the claim."""

import pytest

from billing import selectors
from billing import services as billing_services
from claims.models import Claim
from intercepts.models import InterceptRequest
from tests.claims.conftest import evidence_dir, jpeg_bytes  # noqa: F401 (a fixture)
from tests.e2e.conftest import login_in_browser, screenshot
from tests.factories import make_intercept

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "pw-for-tests-123"


@pytest.fixture
def caught(world):
    """Shop A's parcel (goods of 129.00 yuan) caught by an intercept whose fee was paid."""
    wallet = billing_services.wallet_open(actor=world.owner, shop_id=world.shop_a.pk)
    billing_services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=50_000, external_reference="BANK-E2E-CL"
    )
    return make_intercept(
        world.owner,
        world.parcel_a,
        world.after_sale_a,
        InterceptRequest.Status.SUBMITTED,
        InterceptRequest.Status.ACCEPTED,
        InterceptRequest.Status.SUCCEEDED,
    )


def _sign_out(page) -> None:
    page.context.clear_cookies()


@pytest.mark.usefixtures("evidence_dir")
def test_a_claim_from_the_intercept_record_to_the_wallet(world, caught, browser_page, tmp_path):
    page = browser_page
    base = page.live_server_url
    photo = tmp_path / "外箱破损.jpg"
    photo.write_bytes(jpeg_bytes(size=(320, 240)))
    before = selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen

    # The merchant opens the intercept record and files a claim with a photo.
    login_in_browser(page, "owner", PASSWORD)
    page.goto(f"{base}/admin/intercepts/interceptrequest/{caught.pk}/change/")
    page.locator("#file-claim").wait_for()
    screenshot(page, "claims_1_intercept_record")
    page.locator("#file-claim").click()
    page.locator("#claim-form").wait_for()
    assert page.locator("#claim-ceiling").inner_text() == "129.00"
    assert page.locator("#goods-value").inner_text() == "129.00"
    assert world.parcel_a.courier.service_phone in page.locator("#courier-complaint").inner_text()
    page.get_by_label("退回时破损").check()
    page.fill("#id_amount_claimed_fen", "129.00")
    page.fill("#id_description", "退回时外箱破损，商品摔坏")
    page.set_input_files("#id_files", str(photo))
    screenshot(page, "claims_2_filing_form")
    page.locator("#claim-submit").click()
    page.locator("#claim-panel").wait_for()
    claim = Claim.objects.get(intercept=caught)
    assert "已提交，申请金额 129.00 元" in page.content()
    assert "外箱破损.jpg" in page.locator("#evidence-group").inner_text()
    screenshot(page, "claims_3_merchant_claim_filed")

    # Customer service passes it to the courier from the list, then approves a lower amount.
    _sign_out(page)
    login_in_browser(page, "cs", PASSWORD)
    page.get_by_role("link", name="索赔").first.click()
    page.wait_for_selector("#result_list")
    assert claim.parcel.waybill_no in page.locator("#result_list").inner_text()
    assert page.locator("#figure-open").inner_text() == "1"
    screenshot(page, "claims_4_cs_list")
    page.goto(f"{base}/admin/claims/claim/{claim.pk}/change/")
    page.locator("#button-send").click()
    page.get_by_text("索赔已转交").wait_for()
    assert page.locator("#claim-status").inner_text() == "快递公司处理中"
    page.fill("#approve-amount", "99.50")
    page.fill("#form-approve input[name=note]", "按进货价核定赔付")
    screenshot(page, "claims_5_cs_approving")
    page.locator("#button-approve").click()
    page.get_by_text("索赔已核准，金额 99.50 元").wait_for()
    assert page.locator("#claim-approved").inner_text() == "99.50"
    screenshot(page, "claims_6_cs_approved")

    # Finance pays it into the shop's wallet.
    _sign_out(page)
    login_in_browser(page, "finance", PASSWORD)
    page.goto(f"{base}/admin/claims/claim/{claim.pk}/change/")
    page.locator("#button-pay-wallet").click()
    page.get_by_text("99.50 元已赔付至店铺钱包").wait_for()
    assert page.locator("#claim-status").inner_text() == "已赔付"
    screenshot(page, "claims_7_finance_paid")
    after = selectors.wallet_balances(shop_id=world.shop_a.pk).available_fen
    assert after - before == 9_950

    # The merchant sees the compensation in the wallet and the story on the claim.
    _sign_out(page)
    login_in_browser(page, "owner", PASSWORD)
    page.get_by_role("link", name="钱包").first.click()
    page.wait_for_selector("#result_list")
    page.locator("#result_list a", has_text=world.shop_a.name).first.click()
    page.wait_for_selector("#wallet-movements")
    movements = page.locator("#wallet-movements").inner_text()
    assert "理赔赔付" in movements and "99.50" in movements
    screenshot(page, "claims_8_merchant_wallet")

    page.goto(f"{base}/admin/claims/claim/{claim.pk}/change/")
    history = page.locator("#events-group").inner_text()
    for status in ("已提交", "快递公司处理中", "已核准", "已赔付"):
        assert status in history
    assert "按进货价核定赔付" in history
    screenshot(page, "claims_9_merchant_claim_history")
