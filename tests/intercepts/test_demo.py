"""Demo data: safe to run twice, and covers every stage, status and kind."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from billing import selectors as billing_selectors
from billing import services as billing_services
from couriers.stages import ParcelStage
from intercepts.models import AfterSale, InterceptRequest, Order, Parcel
from shops.models import Shop, ShopMembership


def _counts():
    return (
        Shop.objects.count(),
        Order.objects.count(),
        Parcel.objects.count(),
        AfterSale.objects.count(),
        User.objects.count(),
        ShopMembership.objects.count(),
    )


@pytest.mark.django_db
def test_seed_demo_is_safe_to_run_twice_and_covers_every_state(capsys):
    # Tests run with debug off, as a deployment does: the demo needs --force there.
    call_command("seed_demo", force=True)
    first = _counts()
    call_command("seed_demo", force=True)
    assert _counts() == first
    shops, orders, *_ = first
    # 300 orders, two per shop whose parcel was intercepted before the demo began, and four
    # per shop awaiting shipment (the last of them shipped on another receiver's waybill).
    assert shops == 2 and orders == 312
    from intercepts.models import Order, Shipment, ShipmentAnomaly

    assert Order.objects.filter(status=Order.Status.PAID).count() == 6
    assert not Order.objects.filter(receiver_address="").exists()
    assert Shipment.objects.count() == Parcel.objects.count() + 2
    flagged = ShipmentAnomaly.objects.filter(kind=ShipmentAnomaly.Kind.SHARED_WAYBILL)
    assert flagged.count() == 2
    # The shipment checks have run over the seeded history: stuck parcels are stalls, and
    # none of them was intercepted by the merchant.
    stalls = ShipmentAnomaly.objects.filter(kind__in=ShipmentAnomaly.STALLS)
    assert stalls.exists()
    assert not stalls.filter(parcel__intercepts__status__in=InterceptRequest.CAUGHT).exists()
    assert Order.objects.filter(settlement_held_at__isnull=False).exists()
    assert set(Parcel.objects.values_list("stage", flat=True)) == set(ParcelStage)
    assert set(AfterSale.objects.values_list("status", flat=True)) == set(AfterSale.Status)
    assert set(AfterSale.objects.values_list("kind", flat=True)) == set(AfterSale.Kind)
    assert set(AfterSale.objects.values_list("arbitration", flat=True)) == set(
        AfterSale.Arbitration
    )
    # The history the demo makes up carries no courier code: stage names are not codes.
    from intercepts.models import TrackingEvent

    made_up = TrackingEvent.objects.filter(source="demo")
    assert made_up.exists() and set(made_up.values_list("raw_code", flat=True)) == {""}
    printed = capsys.readouterr().out
    for username in ("owner", "agent", "viewer", "owner2", "cs", "finance"):
        assert username in printed
    assert User.objects.get(username="agent").check_password("demo-agent-123")
    # Each shop can pay for intercepts at once: funded once, with a payment password; the
    # fees of the two intercepts made before the demo began are charged from it.
    for shop in Shop.objects.all():
        balances = billing_selectors.wallet_balances(shop_id=shop.pk)
        charged = sum(InterceptRequest.objects.filter(shop=shop).values_list("fee_fen", flat=True))
        assert charged == 2 * 300
        assert (balances.available_fen, balances.held_fen) == (500_00 - charged, 0)
        billing_services.payment_password_check(shop_id=shop.pk, pin="123456")


@pytest.mark.django_db
def test_the_demo_opens_with_intercepted_parcels_to_claim_for_one_already_suggested():
    call_command("seed_demo", force=True)
    for shop in Shop.objects.all():
        caught = InterceptRequest.objects.filter(shop=shop, status="succeeded")
        assert caught.count() == 2
        assert list(
            caught.exclude(claim_suggestion="").values_list("claim_suggestion", flat=True)
        ) == ["not_back"]


@pytest.mark.django_db
def test_seed_demo_refuses_with_debug_off_unless_forced():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo")
    assert not User.objects.filter(username="owner").exists()


# --- The demo keeps the workbench alive ------------------------------------------------------


@pytest.mark.django_db
def test_seeded_fee_rules_cover_every_courier_and_action():
    from couriers.models import Courier

    call_command("seed_demo", force=True)
    missing = []
    for courier in Courier.objects.all():
        for action in ("return", "redirect"):
            try:
                billing_selectors.quote(courier.pk, action)
            except billing_services.BillingError:
                missing.append((courier.code, action))
    assert missing == []


@pytest.mark.django_db
def test_every_demo_shop_mostly_sells_goods_that_may_be_intercepted():
    from intercepts.models import InterceptPolicy, OrderLine

    call_command("seed_demo", force=True)
    excluded = set(InterceptPolicy.current().excluded_categories)
    for shop in Shop.objects.all():
        categories = list(
            OrderLine.objects.filter(order__shop=shop).values_list("category", flat=True)
        )
        allowed = sum(category not in excluded for category in categories)
        assert allowed / len(categories) > 0.7, (shop.code, allowed, len(categories))


@pytest.mark.django_db
def test_seeded_stages_are_what_the_sandbox_courier_says():
    """A parcel the demo asks the sandbox about starts there in its seeded stage; one it cannot
    start there is not asked about, so the two never disagree."""
    from couriers.sandbox import SandboxServer

    call_command("seed_demo", force=True)
    sandbox = SandboxServer(seed=42)  # not started: its world is enough to ask
    disagreeing = []
    polled = Parcel.objects.exclude(next_poll_at=None)
    for waybill_no, stage in polled.values_list("waybill_no", "stage"):
        told = sandbox.world.parcel(waybill_no).stage
        if told != stage:
            disagreeing.append((waybill_no, stage, str(told)))
    assert polled.count() > 100
    assert disagreeing == []
    # Their history is the sandbox's: nothing made up to contradict it.
    assert not polled.filter(tracking_events__isnull=False).exists()


@pytest.mark.django_db
def test_runall_points_the_demo_accounts_at_its_ports():
    """runall's ports (``SANDBOX_PORT``, ``PORT``) move the seeded demo's gateway accounts and
    the URL the sandbox pushes to; a database never seeded is left alone."""
    from couriers.models import CourierAccount
    from intercepts.demo import repoint_sandbox_accounts

    urls = {"sandbox_url": "http://127.0.0.1:9911", "site_url": "http://127.0.0.1:8077"}
    assert repoint_sandbox_accounts(**urls) is False
    assert not CourierAccount.objects.exists()
    call_command("seed_demo", force=True)
    assert repoint_sandbox_accounts(**urls) is True
    accounts = list(CourierAccount.objects.values_list("base_url", "callback_url"))
    assert len(accounts) == 3
    for base_url, callback_url in accounts:
        assert base_url.startswith("http://127.0.0.1:9911/")
        assert callback_url.startswith("http://127.0.0.1:8077/couriers/push/")


class _SteppedClock:
    """The demo's paced clock (one simulated minute per real second), stepped by the test
    instead of waiting: it ends where the wall clock is, so no scan lies in the future."""

    speed = 60.0

    def __init__(self, minutes: int):
        from datetime import datetime, timedelta

        from couriers.adapters.common import SHANGHAI

        self.at = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(minutes=minutes)

    def now(self):
        return self.at

    def span(self, simulated):
        return simulated / self.speed

    def real_seconds(self, simulated_seconds: float) -> float:
        return simulated_seconds / self.speed

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.at += timedelta(seconds=seconds)


def _poll(parcels) -> None:
    """What beat's polling does: ask the courier about these parcels and apply the answer."""
    from collections import defaultdict

    from intercepts.tracking.polling import parcels_poll

    by_courier = defaultdict(list)
    for pk, courier_id in parcels.values_list("pk", "courier_id"):
        by_courier[courier_id].append(pk)
    for courier_id, ids in by_courier.items():
        parcels_poll(courier_id=courier_id, parcel_ids=ids)


def _interceptable(shop, action: str) -> list[tuple]:
    """(after-sale, parcel) pairs of the shop an intercept of ``action`` may be asked for; the
    agreement aside, which the merchant signs at the first intercept."""
    from intercepts.eligibility import intercept_eligibility

    pairs = []
    for after_sale in AfterSale.objects.filter(shop=shop).prefetch_related("order__parcels"):
        for parcel in after_sale.order.parcels.all():
            results = intercept_eligibility(after_sale=after_sale, parcel=parcel, action=action)
            if all(r.passed is not False for r in results if r.code != "agreement_signed"):
                pairs.append((after_sale, parcel))
    return pairs


@pytest.mark.django_db
def test_the_demo_opens_with_parcels_to_intercept_either_way():
    """The moment the demo is seeded, before any traffic: each shop has pending refund requests
    it can intercept with either action, with at least three couriers."""
    call_command("seed_demo", force=True)
    for shop in Shop.objects.all():
        for action in ("return", "redirect"):
            pairs = _interceptable(shop, action)
            couriers = {parcel.courier.code for _after_sale, parcel in pairs}
            assert len(pairs) >= 5 and len(couriers) >= 3, (shop.code, action, len(pairs))


@pytest.mark.django_db
def test_thirty_minutes_on_the_demo_clock_leave_every_shop_something_to_intercept():
    """The demo's traffic, one step a minute against the sandbox on the demo's pace, with the
    parcels polled as beat polls them: after 30 minutes each shop has after-sales it can
    intercept either way, and the couriers take both actions for at least three couriers."""
    from couriers.sandbox import SandboxServer
    from intercepts.demo import DEMO_PIN, TRAFFIC_PREFIX, demo_tick, repoint_sandbox_accounts
    from intercepts.models import InterceptPolicy, InterceptRequest
    from intercepts.services.intercept_requests import intercepts_request
    from intercepts.services.policy import shop_sign_agreement
    from intercepts.services.sending import intercept_send

    call_command("seed_demo", force=True)
    with SandboxServer(seed=42, paced=True) as sandbox:
        clock = _SteppedClock(minutes=31)
        sandbox.clock = sandbox.world.clock = sandbox.dispatcher._clock = clock
        sandbox.tick_s = 3600  # the clock thread stays out of the way; the test moves parcels
        repoint_sandbox_accounts(sandbox_url=sandbox.url, site_url="http://127.0.0.1:9")
        tracked = Parcel.objects.exclude(next_poll_at=None)
        _poll(tracked)  # the first poll when the demo starts: the sandbox sees every parcel
        for _minute in range(30):
            demo_tick()
            clock.advance(60)
            sandbox.world.tick()
            _poll(tracked.filter(order__order_no__startswith=TRAFFIC_PREFIX))
        clock.advance(60)
        sandbox.world.tick()
        _poll(tracked.exclude(stage__in=["delivered", "returned"]))

        # The seeded parcels have long moved on: what is left to intercept is the traffic's.
        assert AfterSale.objects.filter(order__order_no__startswith=TRAFFIC_PREFIX).count() == 58
        # No scan of the traffic's parcels is older than their order.
        from django.db.models import F

        from intercepts.models import TrackingEvent

        traffic_scans = TrackingEvent.objects.filter(
            parcel__order__order_no__startswith=TRAFFIC_PREFIX
        )
        assert traffic_scans.exists()
        assert not traffic_scans.filter(occurred_at__lt=F("parcel__order__paid_at")).exists()
        couriers = {"return": set(), "redirect": set()}
        for shop in Shop.objects.all():
            for action in ("return", "redirect"):
                pairs = _interceptable(shop, action)
                assert len(pairs) >= 3, (shop.code, action, len(pairs))
                couriers[action] |= {parcel.courier.code for _after_sale, parcel in pairs}
        assert len(couriers["return"]) >= 3 and len(couriers["redirect"]) >= 3, couriers

        policy = InterceptPolicy.current()
        accepted = {"return": set(), "redirect": set()}
        for action in ("return", "redirect"):
            for shop in Shop.objects.all():
                owner = shop.memberships.get(role=ShopMembership.Role.OWNER).user
                shop_sign_agreement(actor=owner, shop=shop, version=policy.agreement_version)
                for after_sale, parcel in _interceptable(shop, action):
                    if parcel.courier.code in accepted[action] or parcel.intercepts.exists():
                        continue
                    (intercept,) = intercepts_request(
                        actor=owner,
                        after_sale=after_sale,
                        parcels=[parcel],
                        action=action,
                        pin=DEMO_PIN,
                        new_address={
                            "name": "李四",
                            "phone": "13912345678",
                            "city": "杭州市",
                            "address": "西湖区文三路 1 号",
                        },
                    )
                    intercept_send(intercept_id=intercept.pk)
                    intercept.refresh_from_db()
                    assert intercept.status == InterceptRequest.Status.ACCEPTED, (
                        parcel.courier.code,
                        action,
                        intercept.status,
                        intercept.failure_reason,
                    )
                    accepted[action].add(parcel.courier.code)
        assert len(accepted["return"]) >= 3 and len(accepted["redirect"]) >= 3, accepted
