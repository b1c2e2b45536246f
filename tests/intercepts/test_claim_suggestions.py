"""Claim suggestions ("建议索赔") on stored tracking: an intercept not back N days after it
succeeded (the policy's days), or whose parcel is scanned damaged or lost after it was caught.

The tracking arrives as the couriers send it: signed kuaidi100 and Kdniao pushes posted to our
push endpoint and drained (what is queued on commit runs), with the sandbox's protocol codes for
the diversion and the return and the damage codes of ``couriers.codes``; a loss through the
scan store the pushes and polls use. The intercepts succeed from that tracking, so their success
time is the one the service wrote. The hourly check runs with a ``now`` days ahead, as the
reconciler's tests move time.
"""

import json
import threading
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing import services as billing_services
from couriers import signing
from couriers.adapters.common import format_local_time
from couriers.codes import DAMAGE_CODES
from couriers.models import Courier, CourierAccount
from couriers.sandbox import KDNIAO_CODES, KUAIDI100_CODES
from couriers.stages import ParcelStage
from couriers.types import TrackingScan
from intercepts.models import InterceptEvent, InterceptPolicy, InterceptRequest
from intercepts.services.claim_watch import (
    claim_suggest,
    claims_suggest_from_tracking,
    claims_suggest_overdue,
)
from intercepts.services.policy import intercept_policy_save
from intercepts.tracking.pushes import flag_lower, pushes_apply_received
from intercepts.tracking.scans import parcel_apply_scans
from shops import webhooks
from shops.models import WebhookDelivery
from tests.factories import list_page_queries, make_after_sale, make_intercept

S = InterceptRequest.Status
Reason = InterceptRequest.ClaimSuggestion
SALT = "claims-push-salt"
APP_KEY = "claims-app-key"
FORM = "application/x-www-form-urlencoded"
LIST = "admin:intercepts_interceptrequest_changelist"


@pytest.fixture(autouse=True)
def _drain_asleep():
    flag_lower()


@pytest.fixture
def gateways(world, settings):
    """ZTO served by a kuaidi100 account, Yunda by a Kdniao one; both shops' wallets funded;
    two webhook endpoints for shop A, one for shop B."""
    settings.WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    k100 = CourierAccount.objects.create(
        name="k100", protocol="kuaidi100", base_url="http://127.0.0.1:9/k100", salt=SALT
    )
    kdn = CourierAccount.objects.create(
        name="kdn",
        protocol="kdniao",
        base_url="http://127.0.0.1:9/kdn",
        app_key=APP_KEY,
        ebusiness_id="1",
    )
    Courier.objects.filter(code="ZTO").update(account=k100)
    Courier.objects.filter(code="YUNDA").update(account=kdn)
    for shop, owner in ((world.shop_a, world.owner), (world.shop_b, world.other)):
        wallet = billing_services.wallet_open(actor=owner, shop_id=shop.pk)
        billing_services.wallet_top_up(
            actor=world.finance,
            wallet=wallet,
            amount_fen=100_000,
            external_reference=f"BANK-CLAIM-WATCH-{shop.pk}",
        )
        urls = ["http://127.0.0.1:9/erp-1", "http://127.0.0.1:9/erp-2"]
        for url in urls if shop == world.shop_a else urls[:1]:
            webhooks.webhook_endpoint_create(actor=owner, shop=shop, url=url)
    return {"kuaidi100": k100, "kdniao": kdn}


def _k100_push(parcel, scans) -> dict:
    """A signed kuaidi100 push of ``scans`` (time, advanced code), newest first as sent."""
    data = [
        {
            "time": format_local_time(at),
            "ftime": format_local_time(at),
            "context": f"scan {code}",
            "statusCode": code,
        }
        for at, code in sorted(scans, reverse=True)
    ]
    param = json.dumps(
        {
            "status": "polling",
            "message": "",
            "lastResult": {
                "nu": parcel.waybill_no,
                "com": parcel.courier.kuaidi100_code,
                "state": "0",
                "data": data,
            },
        },
        ensure_ascii=False,
    )
    return {"param": param, "sign": signing.kuaidi100_push_sign(param, SALT)}


def _kdniao_push(parcel, scans) -> dict:
    """A signed Kdniao track push (RequestType 102, value-added codes) of ``scans``."""
    request_data = json.dumps(
        {
            "EBusinessID": "1",
            "PushTime": format_local_time(timezone.now()),
            "Count": "1",
            "Data": [
                {
                    "EBusinessID": "1",
                    "ShipperCode": parcel.courier.kdniao_code,
                    "LogisticCode": parcel.waybill_no,
                    "Success": True,
                    "State": "2",
                    "StateEx": sorted(scans)[-1][1],
                    "Traces": [
                        {"AcceptTime": format_local_time(at), "AcceptStation": "网点", "Action": c}
                        for at, c in sorted(scans)
                    ],
                }
            ],
        },
        ensure_ascii=False,
    )
    return {
        "RequestData": request_data,
        "DataSign": signing.kdniao_data_sign(request_data, APP_KEY),
        "RequestType": "102",
    }


@pytest.fixture
def push(client, gateways, django_capture_on_commit_callbacks):
    """POST a courier's push to our endpoint; the drain and what it queues run at once."""

    def _push(parcel, scans):
        protocol = parcel.courier.account.protocol
        form = _k100_push(parcel, scans) if protocol == "kuaidi100" else _kdniao_push(parcel, scans)
        url = reverse("courier-push", args=[gateways[protocol].pk])
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, urlencode(form), content_type=FORM)
        assert response.status_code == 200

    return _push


def _code(protocol: str, stage: str) -> str:
    return (KUAIDI100_CODES if protocol == "kuaidi100" else KDNIAO_CODES)[stage]


def _damage(protocol: str) -> str:
    [code] = DAMAGE_CODES[protocol]
    return code


def _accepted(world, shop=None, courier="ZTO"):
    """An intercept the courier accepted, on a fresh parcel of ``shop`` (A by default)."""
    shop = shop or world.shop_a
    owner = world.owner if shop == world.shop_a else world.other
    after_sale, parcel = make_after_sale(shop, courier=Courier.objects.get(code=courier))
    intercept = make_intercept(owner, parcel, after_sale, S.SUBMITTED, S.ACCEPTED)
    return intercept, parcel


def _caught(world, push, shop=None, courier="ZTO", minutes_ago=5):
    """An intercept that succeeded because its parcel's tracking shows it returning."""
    intercept, parcel = _accepted(world, shop, courier)
    protocol = parcel.courier.account.protocol
    at = timezone.now() - timedelta(minutes=minutes_ago)
    push(parcel, [(at, _code(protocol, ParcelStage.RETURNING))])
    intercept.refresh_from_db()
    assert intercept.status == S.SUCCEEDED and intercept.succeeded_at is not None
    return intercept, parcel


def _state(intercept) -> tuple[str, bool]:
    intercept.refresh_from_db()
    return intercept.claim_suggestion, intercept.claim_suggested_at is not None


def _deliveries(shop) -> list[int]:
    """The endpoints of ``shop`` that got a claim.suggested delivery, one entry per delivery."""
    return sorted(
        WebhookDelivery.objects.filter(shop=shop, event_type=webhooks.CLAIM_SUGGESTED).values_list(
            "endpoint_id", flat=True
        )
    )


def _json_time(value) -> str:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _notes(intercept) -> list[str]:
    return list(
        intercept.events.filter(from_status=intercept.status, to_status=intercept.status)
        .exclude(note="")
        .values_list("note", flat=True)
    )


# --- Not back in time ---------------------------------------------------------------------------


def test_quiet_for_seven_days_after_success_is_marked_not_back(world, push):
    intercept, _parcel = _caught(world, push)
    week = intercept.succeeded_at + timedelta(days=7)
    assert claims_suggest_overdue(now=week) == 1
    intercept.refresh_from_db()
    assert (intercept.claim_suggestion, intercept.claim_suggested_at) == (Reason.NOT_BACK, week)
    assert intercept.status == S.SUCCEEDED
    assert _notes(intercept) == ["建议索赔：拦截成功 7 天后，包裹仍未退回。"]


def test_six_days_and_twenty_three_hours_is_not_yet(world, push):
    intercept, _parcel = _caught(world, push)
    assert claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=6, hours=23)) == 0
    assert _state(intercept) == ("", False)


def test_the_policy_days_move_the_boundary(world, push):
    policy = InterceptPolicy.current()
    policy.claim_suggest_after_days = 3
    intercept_policy_save(actor=world.cs, policy=policy)
    intercept, _parcel = _caught(world, push)
    assert claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=2, hours=23)) == 0
    assert claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=3)) == 1
    assert _state(intercept) == (Reason.NOT_BACK, True)
    assert _notes(intercept) == ["建议索赔：拦截成功 3 天后，包裹仍未退回。"]


def test_the_policy_refuses_zero_days(world):
    from django.core.exceptions import ValidationError

    policy = InterceptPolicy.current()
    policy.claim_suggest_after_days = 0
    with pytest.raises(ValidationError):
        intercept_policy_save(actor=world.cs, policy=policy)
    assert InterceptPolicy.current().claim_suggest_after_days == 7


def test_platform_staff_edit_the_days_in_the_policy_page(world, login):
    policy = InterceptPolicy.current()
    url = reverse("admin:intercepts_interceptpolicy_change", args=[policy.pk])
    client = login(world.cs)
    assert "拦截成功后建议索赔的天数" in client.get(url).content.decode()
    form = {
        "rules": policy.rules,
        "excluded_categories": policy.excluded_categories,
        "value_cap_fen": "1000.00",
        "return_stages": policy.return_stages,
        "redirect_stages": policy.redirect_stages,
        "agreement_version": policy.agreement_version,
        "claim_suggest_after_days": "0",
        "shipment_notice_days": "6",
        "shipment_hold_days": "10",
        "receipt_confirm_days": "15",
        "receipt_extend_days": "5",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200 and "至少 1 天。" in refused.content.decode()
    assert client.post(url, {**form, "claim_suggest_after_days": "3"}).status_code == 302
    assert InterceptPolicy.current().claim_suggest_after_days == 3


def test_a_completed_intercept_is_never_marked_not_back(world, push):
    intercept, parcel = _caught(world, push)
    push(
        parcel, [(timezone.now() - timedelta(minutes=1), _code("kuaidi100", ParcelStage.RETURNED))]
    )
    intercept.refresh_from_db()
    assert intercept.status == S.COMPLETED
    assert claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=30)) == 0
    assert _state(intercept) == ("", False)


def test_the_not_back_mark_is_withdrawn_when_the_parcel_comes_back(world, push):
    intercept, parcel = _caught(world, push)
    claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=8))
    assert _state(intercept) == (Reason.NOT_BACK, True)
    push(
        parcel, [(timezone.now() - timedelta(minutes=1), _code("kuaidi100", ParcelStage.RETURNED))]
    )
    intercept.refresh_from_db()
    assert (intercept.status, intercept.claim_suggestion, intercept.claim_suggested_at) == (
        S.COMPLETED,
        "",
        None,
    )
    assert _notes(intercept)[-1] == "撤销索赔建议：包裹已退回寄件人。"


# --- Damage and loss in the tracking --------------------------------------------------------------


@pytest.mark.parametrize("courier", ["ZTO", "YUNDA"], ids=["kuaidi100-209", "kdniao-414"])
def test_a_damage_scan_after_success_marks_damaged_on_the_tracking_update(world, push, courier):
    intercept, parcel = _caught(world, push, courier=courier)
    protocol = parcel.courier.account.protocol
    push(parcel, [(timezone.now() - timedelta(minutes=2), _damage(protocol))])
    assert parcel.tracking_events.filter(raw_code=_damage(protocol), stage="exception").exists()
    assert _state(intercept) == (Reason.DAMAGED, True)
    assert _notes(intercept) == [
        f"建议索赔：轨迹显示破损（快递状态码 {_damage(protocol)}）。",
    ]
    assert len(_deliveries(world.shop_a)) == 2


def test_caught_and_damaged_in_one_push_is_marked_damaged(world, push):
    intercept, parcel = _accepted(world)
    now = timezone.now()
    push(
        parcel,
        [
            (now - timedelta(minutes=6), _code("kuaidi100", ParcelStage.RETURNING)),
            (now - timedelta(minutes=3), _damage("kuaidi100")),
        ],
    )
    intercept.refresh_from_db()
    assert (intercept.status, intercept.claim_suggestion) == (S.SUCCEEDED, Reason.DAMAGED)


def test_a_damage_scan_before_the_success_does_not_mark(world, push):
    intercept, parcel = _accepted(world)
    now = timezone.now()
    # Scanned damaged while the courier was still to catch it, then caught.
    push(parcel, [(now - timedelta(minutes=8), _damage("kuaidi100"))])
    assert _state(intercept) == ("", False)
    push(parcel, [(now - timedelta(minutes=5), _code("kuaidi100", ParcelStage.RETURNING))])
    intercept.refresh_from_db()
    assert intercept.status == S.SUCCEEDED
    assert claims_suggest_from_tracking(parcel_ids=[parcel.pk]) == 0
    assert _state(intercept) == ("", False)
    # A week on it is late, not damaged: the early scan never counts.
    claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=7))
    assert _state(intercept) == (Reason.NOT_BACK, True)


def test_an_exception_that_is_not_damage_does_not_mark(world, push):
    intercept, parcel = _caught(world, push)
    push(parcel, [(timezone.now() - timedelta(minutes=2), "208")])  # 滞留: held up, not broken
    assert parcel.tracking_events.filter(raw_code="208", stage="exception").exists()
    assert _state(intercept) == ("", False)


def test_the_beat_gives_a_missed_damage_scan_its_reason(world, push, client, gateways):
    """A damage scan stored while the check after it was lost (the worker died once the scans
    were committed) is found by the hourly check once the intercept is overdue: damaged."""
    intercept, parcel = _caught(world, push)
    form = _k100_push(parcel, [(timezone.now() - timedelta(minutes=2), _damage("kuaidi100"))])
    url = reverse("courier-push", args=[gateways["kuaidi100"].pk])
    # Stored and drained, but what the drain queues on commit never runs.
    assert client.post(url, urlencode(form), content_type=FORM).status_code == 200
    assert pushes_apply_received() == 1
    assert parcel.tracking_events.filter(raw_code=_damage("kuaidi100")).exists()
    assert _state(intercept) == ("", False)
    claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=7))
    assert _state(intercept) == (Reason.DAMAGED, True)


def test_a_loss_after_a_not_back_mark_replaces_it_and_tells_the_erp_again(
    world, push, django_capture_on_commit_callbacks
):
    intercept, parcel = _caught(world, push)
    claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=7))
    assert _state(intercept) == (Reason.NOT_BACK, True)
    lost = TrackingScan(
        waybill_no=parcel.waybill_no,
        occurred_at=timezone.now() - timedelta(minutes=1),
        raw_code="LOST",
        stage=ParcelStage.LOST,
        description="快件遗失",
    )
    with django_capture_on_commit_callbacks(execute=True):
        parcel_apply_scans(parcel_id=parcel.pk, scans=[lost], source="poll")
    assert _state(intercept) == (Reason.LOST, True)
    # A weaker reason never comes back over it.
    claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=9))
    assert claim_suggest(intercept_id=intercept.pk, reason=Reason.DAMAGED) is False
    assert _state(intercept) == (Reason.LOST, True)
    assert len(_deliveries(world.shop_a)) == 4  # two marks, two endpoints each


# --- Once, and only to the shop ---------------------------------------------------------------


def test_running_twice_marks_once_and_tells_each_endpoint_once(world, push):
    intercept, parcel = _caught(world, push)
    other, _other_parcel = _caught(world, push, shop=world.shop_b)
    week = max(intercept.succeeded_at, other.succeeded_at) + timedelta(days=7)
    assert claims_suggest_overdue(now=week) == 2
    assert claims_suggest_overdue(now=week + timedelta(hours=1)) == 0
    endpoints_a = list(world.shop_a.webhook_endpoints.order_by("pk").values_list("pk", flat=True))
    assert _deliveries(world.shop_a) == endpoints_a
    delivery = WebhookDelivery.objects.filter(
        shop=world.shop_a, event_type=webhooks.CLAIM_SUGGESTED
    ).first()
    body = json.loads(delivery.body)
    assert body["type"] == "claim.suggested" and body["shop"] == "shop-a"
    assert body["data"] == {
        "id": intercept.pk,
        "status": "succeeded",
        "action": "return",
        "waybill": parcel.waybill_no,
        "courier": "ZTO",
        "reason": "not_back",
        # As JSON writes them (Django's encoder: milliseconds, "Z").
        "succeeded_at": _json_time(intercept.succeeded_at),
        "suggested_at": _json_time(week),
    }
    assert delivery.object_key == f"intercept:{intercept.pk}"
    # Shop B's one endpoint hears of its own intercept only.
    [b_delivery] = WebhookDelivery.objects.filter(
        shop=world.shop_b, event_type=webhooks.CLAIM_SUGGESTED
    )
    assert json.loads(b_delivery.body)["data"]["id"] == other.pk


def test_a_repeated_damage_push_marks_once(world, push):
    intercept, parcel = _caught(world, push)
    damaged = [(timezone.now() - timedelta(minutes=2), _damage("kuaidi100"))]
    push(parcel, damaged)
    push(parcel, damaged)
    assert claims_suggest_from_tracking(parcel_ids=[parcel.pk]) == 0
    assert _state(intercept) == (Reason.DAMAGED, True)
    assert len(_notes(intercept)) == 1
    assert len(_deliveries(world.shop_a)) == 2 and _deliveries(world.shop_b) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.postgres
def test_two_checks_at_once_mark_once(world, push):
    intercept, _parcel = _caught(world, push)
    week = intercept.succeeded_at + timedelta(days=7)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(claims_suggest_overdue(now=week))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(results) == [0, 0, 0, 1]
    assert len(_deliveries(world.shop_a)) == 2
    assert (
        InterceptEvent.objects.filter(intercept=intercept, note__startswith="建议索赔").count() == 1
    )


# --- The workbench -------------------------------------------------------------------------------


@pytest.fixture
def marked(world, push):
    """Shop A: one intercept late (suggested), one caught yesterday (not); shop B: one late."""
    late, _ = _caught(world, push)
    other, _ = _caught(world, push, shop=world.shop_b)
    claims_suggest_overdue(now=max(late.succeeded_at, other.succeeded_at) + timedelta(days=7))
    fresh, _ = _caught(world, push)  # succeeded now: nowhere near overdue
    return {"late": late, "fresh": fresh, "other": other}


def _order_no(intercept) -> str:
    return intercept.parcel.order.order_no


@pytest.mark.parametrize(
    ("who", "shown"),
    [
        ("owner", {"late"}),
        ("agent", {"late"}),
        ("viewer", {"late"}),
        ("other", {"other"}),
        ("cs", {"late", "other"}),
        ("finance", {"late", "other"}),
        ("anonymous", None),
    ],
)
def test_the_filter_shows_the_suggested_intercepts_one_may_see(world, login, marked, who, shown):
    response = login(world.user(who)).get(reverse(LIST), {"claim": "suggested"})
    if shown is None:
        assert response.status_code == 302  # to the sign-in page
        return
    html = response.content.decode()
    assert {name for name, i in marked.items() if _order_no(i) in html} == shown


def test_the_filter_for_none_suggested(world, login, marked):
    html = login(world.owner).get(reverse(LIST), {"claim": "none"}).content.decode()
    assert {name for name, i in marked.items() if _order_no(i) in html} == {"fresh"}


def test_the_list_shows_the_reason_and_costs_the_same_queries(world, login, push, marked):
    client = login(world.owner)
    page = client.get(reverse(LIST)).content.decode()
    assert "建议索赔" in page and "超时未退回" in page
    few = len(list_page_queries(client, reverse(LIST), {"claim": "suggested"}))
    for _ in range(3):
        intercept, _parcel = _caught(world, push)
        claims_suggest_overdue(now=intercept.succeeded_at + timedelta(days=7))
    assert len(list_page_queries(client, reverse(LIST), {"claim": "suggested"})) == few <= 10


def test_the_record_page_shows_the_suggestion_with_its_reason_and_time(world, login, marked):
    late = marked["late"]
    late.refresh_from_db()
    page = login(world.owner).get(
        reverse("admin:intercepts_interceptrequest_change", args=[late.pk])
    )
    html = page.content.decode()
    assert 'id="claim-suggestion"' in html and "超时未退回" in html
    assert timezone.localtime(late.claim_suggested_at).strftime("%Y-%m-%d %H:%M") in html
    assert "建议索赔：拦截成功 7 天后，包裹仍未退回。" in html  # its history
    fresh = login(world.owner).get(
        reverse("admin:intercepts_interceptrequest_change", args=[marked["fresh"].pk])
    )
    assert 'id="claim-suggestion"' not in fresh.content.decode()


def test_the_policy_holds_settlements_later_than_the_first_notice(world, login):
    policy = InterceptPolicy.current()
    url = reverse("admin:intercepts_interceptpolicy_change", args=[policy.pk])
    client = login(world.cs)
    page = client.get(url).content.decode()
    assert "发货后无终态几天记为异常" in page and "发货后无终态几天暂停结算" in page
    form = {
        "rules": policy.rules,
        "excluded_categories": policy.excluded_categories,
        "value_cap_fen": "1000.00",
        "return_stages": policy.return_stages,
        "redirect_stages": policy.redirect_stages,
        "agreement_version": policy.agreement_version,
        "claim_suggest_after_days": "7",
        "shipment_notice_days": "6",
        "shipment_hold_days": "6",
        "receipt_confirm_days": "15",
        "receipt_extend_days": "5",
    }
    refused = client.post(url, form)
    assert refused.status_code == 200
    assert "暂停结算须晚于首次提醒，请增加天数。" in refused.content.decode()
    assert client.post(url, {**form, "shipment_hold_days": "8"}).status_code == 302
    policy.refresh_from_db()
    assert (policy.shipment_notice_days, policy.shipment_hold_days) == (6, 8)
