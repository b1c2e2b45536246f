"""Fee rules and quotes; the shop's payment password with its persisted, race-safe lock."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone, translation

from billing import selectors, services
from billing.models import FeeRule, Hold, PaymentPassword
from billing.services import BillingError
from couriers.models import Courier


@pytest.fixture(autouse=True)
def _speak_chinese():
    with translation.override("zh-hans"):
        yield


# --- Fee rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "fee"), [("ZTO", 300), ("YUNDA", 300), ("YTO", 400)])
def test_seeded_return_fees(db, code, fee):
    assert selectors.quote(Courier.objects.get(code=code), "return") == fee


def test_quote_without_a_rule_is_refused_in_chinese(db):
    with pytest.raises(BillingError, match="尚未设置费用"):
        selectors.quote(Courier.objects.get(code="SF"), "return")
    with pytest.raises(BillingError):
        selectors.quote(Courier.objects.get(code="ZTO"), "redirect")


def test_quote_takes_the_latest_rule_started_by_then(world, zto):
    now = timezone.now()
    rule = FeeRule(courier=zto, action="return", valid_from=now + timedelta(days=2), amount_fen=350)
    services.fee_rule_save(actor=world.finance, rule=rule)
    assert selectors.quote(zto, "return") == 300
    assert selectors.quote(zto.pk, "return", at=now + timedelta(days=3)) == 350
    assert selectors.quote(zto, "return", at=now + timedelta(days=1)) == 300


def test_changing_a_rule_never_changes_a_fee_already_held(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    fee = selectors.quote(zto, "return")
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:1", amount_fen=fee, courier=zto
    )
    rule = FeeRule(
        courier=zto,
        action="return",
        valid_from=timezone.now() + timedelta(minutes=1),
        amount_fen=900,
    )
    services.fee_rule_save(actor=world.finance, rule=rule)
    FeeRule.objects.filter(pk=rule.pk).update(valid_from=timezone.now() - timedelta(seconds=1))
    assert selectors.quote(zto, "return") == 900
    hold = services.wallet_capture(reference="intercept:1")
    assert hold.amount_fen == 300
    assert wallet_a.accounts.get(kind="fee_revenue").balance_fen == 300


def test_rule_in_force_cannot_be_rewritten(world, zto):
    rule = FeeRule.objects.get(courier=zto, action="return")
    rule.amount_fen = 1
    with pytest.raises(BillingError, match="已生效"):
        services.fee_rule_save(actor=world.finance, rule=rule)
    assert FeeRule.objects.get(pk=rule.pk).amount_fen == 300


@pytest.mark.parametrize("who", ["owner", "cs"])
def test_only_finance_saves_fee_rules(world, zto, who):
    rule = FeeRule(courier=zto, action="redirect", valid_from=timezone.now(), amount_fen=500)
    with pytest.raises(BillingError):
        services.fee_rule_save(actor=world.user(who), rule=rule)
    assert not FeeRule.objects.filter(action="redirect").exists()


def test_new_rule_cannot_start_in_the_past(world, zto):
    rule = FeeRule(
        courier=zto, action="redirect", valid_from=timezone.now() - timedelta(days=1), amount_fen=5
    )
    with pytest.raises(BillingError, match="不能早于"):
        services.fee_rule_save(actor=world.finance, rule=rule)


# --- Payment password -------------------------------------------------------------------------


@pytest.fixture
def pin_a(world):
    return services.payment_password_set(actor=world.owner, shop_id=world.shop_a.pk, pin="246810")


def test_pin_is_stored_hashed_and_checked(world, pin_a):
    assert "246810" not in pin_a.pin_hash
    services.payment_password_check(shop_id=world.shop_a.pk, pin="246810")
    with pytest.raises(BillingError, match="还可以尝试 4 次"):
        services.payment_password_check(shop_id=world.shop_a.pk, pin="000000")


def test_pin_hash_needs_the_sites_key(world, pin_a, settings):
    # A stolen hash cannot be guessed offline without the key; a retired key still in
    # SECRET_KEY_FALLBACKS is accepted, and the hash is renewed with the current one.
    old_key, old_hash = settings.SECRET_KEY, pin_a.pin_hash
    assert old_hash.startswith("pbkdf2_pin$")
    settings.SECRET_KEY = "another-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(BillingError):
        services.payment_password_check(shop_id=world.shop_a.pk, pin="246810")
    PaymentPassword.objects.filter(pk=pin_a.pk).update(failed_attempts=0)
    settings.SECRET_KEY_FALLBACKS = [old_key]
    services.payment_password_check(shop_id=world.shop_a.pk, pin="246810")
    renewed = PaymentPassword.objects.get(pk=pin_a.pk).pin_hash
    assert renewed != old_hash
    settings.SECRET_KEY_FALLBACKS = []
    services.payment_password_check(shop_id=world.shop_a.pk, pin="246810")


def test_a_pin_hashed_the_old_way_still_works_and_is_renewed(world):
    from django.contrib.auth.hashers import make_password

    PaymentPassword.objects.create(shop_id=world.shop_a.pk, pin_hash=make_password("135790"))
    services.payment_password_check(shop_id=world.shop_a.pk, pin="135790")
    assert PaymentPassword.objects.get(shop_id=world.shop_a.pk).pin_hash.startswith("pbkdf2_pin$")
    services.payment_password_check(shop_id=world.shop_a.pk, pin="135790")


@pytest.mark.parametrize("pin", ["12345", "1234567", "abcdef", "１２３４５６", ""])
def test_pin_must_be_six_ascii_digits(world, pin):
    with pytest.raises(BillingError, match="6 位数字"):
        services.payment_password_set(actor=world.owner, shop_id=world.shop_a.pk, pin=pin)
    assert not PaymentPassword.objects.exists()


def test_setting_twice_needs_the_login_password(world, pin_a):
    with pytest.raises(BillingError, match="登录密码"):
        services.payment_password_set(actor=world.owner, shop_id=world.shop_a.pk, pin="111111")


def test_five_wrong_tries_lock_for_thirty_minutes_even_the_right_pin(world, pin_a):
    shop = world.shop_a.pk
    for _ in range(4):
        with pytest.raises(BillingError, match="还可以尝试"):
            services.payment_password_check(shop_id=shop, pin="000000")
    with pytest.raises(BillingError, match="锁定 30 分钟"):
        services.payment_password_check(shop_id=shop, pin="000000")
    stored = PaymentPassword.objects.get()
    assert stored.locked_until > timezone.now() + timedelta(minutes=29)
    with pytest.raises(BillingError, match="已锁定至"):
        services.payment_password_check(shop_id=shop, pin="246810")
    # Half an hour later the right PIN works again and the count starts afresh.
    PaymentPassword.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    services.payment_password_check(shop_id=shop, pin="246810")
    assert PaymentPassword.objects.get().failed_attempts == 0


def test_right_pin_resets_the_count(world, pin_a):
    shop = world.shop_a.pk
    for _ in range(3):
        with pytest.raises(BillingError):
            services.payment_password_check(shop_id=shop, pin="000000")
    services.payment_password_check(shop_id=shop, pin="246810")
    assert PaymentPassword.objects.get().failed_attempts == 0


def test_owner_reset_with_login_password_lifts_the_lock(world, pin_a):
    PaymentPassword.objects.update(locked_until=timezone.now() + timedelta(minutes=30))
    with pytest.raises(BillingError, match="登录密码不正确"):
        services.payment_password_reset(
            actor=world.owner, shop_id=world.shop_a.pk, login_password="nope", new_pin="135790"
        )
    services.payment_password_reset(
        actor=world.owner,
        shop_id=world.shop_a.pk,
        login_password="pw-for-tests-123",
        new_pin="135790",
    )
    services.payment_password_check(shop_id=world.shop_a.pk, pin="135790")


def test_pin_of_a_shop_without_one_is_refused(world):
    with pytest.raises(BillingError, match="尚未设置支付密码"):
        services.payment_password_check(shop_id=world.shop_a.pk, pin="123456")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.postgres
def test_parallel_wrong_guesses_are_all_counted(world):
    services.payment_password_set(actor=world.owner, shop_id=world.shop_a.pk, pin="246810")
    shop = world.shop_a.pk
    barrier = threading.Barrier(12)
    outcomes = []

    def guess(i):
        try:
            barrier.wait(timeout=30)
            with translation.override("zh-hans"):
                services.payment_password_check(shop_id=shop, pin=f"{i:06d}")
            outcomes.append("ok")
        except BillingError as exc:
            outcomes.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Exactly five guesses were weighed before the lock; every later one met the lock.
    assert sum("还可以尝试" in o for o in outcomes) == 4
    assert sum("锁定 30 分钟" in o for o in outcomes) == 1
    assert sum("已锁定至" in o for o in outcomes) == 7
    assert PaymentPassword.objects.get().locked_until is not None


def test_hold_amount_is_stored_on_the_hold(world, wallet_a, fund, zto):
    fund(wallet_a, 1_000)
    services.wallet_hold(
        shop_id=world.shop_a.pk, reference="intercept:8", amount_fen=400, courier=zto
    )
    assert Hold.objects.values_list("amount_fen", "courier__code").get() == (400, "ZTO")
