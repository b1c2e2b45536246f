"""Finance's payouts by courier and month: the figures against sums the test makes itself from
claims paid through the services, months by the platform's calendar, the CSV equal to the page,
and who may open either."""

import csv
import io
import re
from datetime import date, datetime
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing import services as billing_services
from billing.models import Account, LedgerEntry, LedgerTransaction
from claims import selectors, services
from claims.models import Claim
from claims.selectors import PayoutPeriod
from couriers.models import Courier
from intercepts.models import InterceptRequest
from tests.factories import OrderLineFactory, ParcelFactory, make_intercept

pytestmark = pytest.mark.django_db

PAGE = "admin:claims_claimpayout_changelist"
EXPORT = "admin:claims_claimpayout_export"
ZONE = ZoneInfo(settings.TIME_ZONE)
Status = InterceptRequest.Status


def _this_month() -> date:
    return timezone.localdate().replace(day=1)


def _in_month(month: date, day: int = 15) -> datetime:
    """Noon on a day of ``month`` in the platform's time zone."""
    return datetime(month.year, month.month, day, 12, 0, tzinfo=ZONE)


@pytest.fixture
def wallet_b(world):
    wallet = billing_services.wallet_open(actor=world.other, shop_id=world.shop_b.pk)
    billing_services.wallet_top_up(
        actor=world.finance, wallet=wallet, amount_fen=100_000, external_reference="BANK-CLAIMS-B"
    )
    return wallet


@pytest.fixture
def couriers(db):
    return {"ZTO": Courier.objects.get(code="ZTO"), "YTO": Courier.objects.get(code="YTO")}


def approved_claim(world, *, shop, courier, claimed_fen: int, approved_fen: int) -> Claim:
    """A claim on a new parcel of ``shop`` at ``courier``, filed by the shop's owner, passed to
    the courier and approved by customer service: ready to pay."""
    owner = world.owner if shop == world.shop_a else world.other
    parcel = ParcelFactory(order__shop=shop, courier=courier)
    parcel.lines.set([OrderLineFactory(order=parcel.order, unit_price_fen=claimed_fen)])
    intercept = make_intercept(
        owner, parcel, None, Status.SUBMITTED, Status.ACCEPTED, Status.SUCCEEDED
    )
    claim = services.claim_file(
        actor=owner,
        intercept=intercept,
        reason=Claim.Reason.LOST,
        amount_claimed_fen=claimed_fen,
    )
    services.claim_send_to_courier(actor=world.cs, claim=claim)
    services.claim_approve(
        actor=world.cs,
        claim=claim,
        amount_fen=approved_fen,
        note="" if approved_fen == claimed_fen else "快递公司按折旧核定",
    )
    return claim


def paid_claim(world, *, paid_in: date | None = None, offline: bool = False, **kwargs) -> Claim:
    claim = approved_claim(world, **kwargs)
    services.claim_pay(
        actor=world.finance,
        claim=claim,
        offline=offline,
        payment_reference=f"BANK-PAY-{claim.pk}" if offline else "",
    )
    if paid_in is not None:
        # The service stamps the payment with the present moment and nothing here moves the
        # clock; the report reads only ``paid_at``, so an earlier payment is the same claim,
        # paid through the service, with its payment moved into the month under test.
        Claim.objects.filter(pk=claim.pk).update(paid_at=_in_month(paid_in))
    claim.refresh_from_db()
    return claim


@pytest.fixture
def paid(world, wallet_a, wallet_b, evidence_dir, couriers):
    """Claims paid over two couriers and two months, one of them offline, one approved and not
    paid, one paid a year ago (outside the default twelve months)."""
    this_month = _this_month()
    last_month = selectors.add_months(this_month, -1)
    zto, yto = couriers["ZTO"], couriers["YTO"]
    a, b = world.shop_a, world.shop_b
    plan = [
        # (shop, courier, claimed, approved, offline, paid in)
        (a, zto, 12_900, 12_900, False, this_month),
        (a, zto, 30_000, 25_050, False, this_month),
        (b, zto, 50_000, 50_000, True, this_month),
        (a, zto, 8_000, 8_000, False, last_month),
        (b, yto, 99_900, 99_900, False, this_month),
        (a, yto, 20_000, 19_999, True, last_month),
    ]
    claims = [
        paid_claim(
            world,
            shop=shop,
            courier=courier,
            claimed_fen=claimed,
            approved_fen=approved,
            offline=offline,
            paid_in=None if month == this_month else month,
        )
        for shop, courier, claimed, approved, offline, month in plan
    ]
    unpaid = approved_claim(world, shop=a, courier=zto, claimed_fen=7_000, approved_fen=7_000)
    year_ago = paid_claim(
        world,
        shop=a,
        courier=yto,
        claimed_fen=6_000,
        approved_fen=6_000,
        paid_in=selectors.add_months(this_month, -12),
    )
    return {
        "this_month": this_month,
        "last_month": last_month,
        "claims": claims,
        "unpaid": unpaid,
        "year_ago": year_ago,
    }


def _expected(claims, *, courier=None, shop=None) -> dict:
    """(courier code, month) -> [claims, into wallets, offline]: summed here from the claims
    themselves, as paid, without the report's query."""
    sums: dict = {}
    for claim in claims:
        if (courier and claim.courier_id != courier.pk) or (shop and claim.shop_id != shop.pk):
            continue
        month = timezone.localtime(claim.paid_at, ZONE).date().replace(day=1)
        row = sums.setdefault((claim.courier.code, month), [0, 0, 0])
        row[0] += 1
        row[1 if claim.payout == Claim.Payout.WALLET else 2] += claim.amount_approved_fen
    return sums


def _report_figures(report) -> dict:
    codes = dict(Courier.objects.values_list("pk", "code"))
    return {
        (codes[row.courier_id], row.month): [row.claims, row.wallet_fen, row.offline_fen]
        for row in report.rows
    }


def _default_period(**kwargs) -> PayoutPeriod:
    this_month = _this_month()
    return PayoutPeriod(
        month_from=selectors.add_months(this_month, -11), month_to=this_month, **kwargs
    )


# --- The figures -----------------------------------------------------------------------------


def test_the_figures_are_the_sums_of_the_claims_paid(world, paid):
    report = selectors.payouts_by_courier_month(_default_period())
    this_month, last_month = paid["this_month"], paid["last_month"]
    expected = _expected(paid["claims"])
    assert expected == {
        ("ZTO", this_month): [3, 12_900 + 25_050, 50_000],
        ("ZTO", last_month): [1, 8_000, 0],
        ("YTO", this_month): [1, 99_900, 0],
        ("YTO", last_month): [1, 0, 19_999],
    }
    assert _report_figures(report) == expected
    assert [row.total_fen for row in report.rows] == [
        sum(expected[key][1:]) for key in _report_figures(report)
    ]
    # The approved claim not yet paid and the one paid a year ago are in no row.
    assert (report.totals.claims, report.totals.wallet_fen, report.totals.offline_fen) == (
        6,
        12_900 + 25_050 + 8_000 + 99_900,
        50_000 + 19_999,
    )
    assert report.totals.total_fen == sum(c.amount_approved_fen for c in paid["claims"])


def test_the_wallet_column_is_what_the_ledger_credited(world, paid):
    report = selectors.payouts_by_courier_month(_default_period())
    in_period = [c for c in paid["claims"] if c.payout == Claim.Payout.WALLET]
    credited = sum(
        LedgerEntry.objects.filter(
            transaction__kind=LedgerTransaction.Kind.COMPENSATION,
            transaction__reference__in=[c.reference for c in in_period],
            account__kind=Account.Kind.AVAILABLE,
            side=LedgerEntry.Side.CREDIT,
        ).values_list("amount_fen", flat=True)
    )
    assert report.totals.wallet_fen == credited
    # Offline payments moved no money on the platform.
    offline = [c.reference for c in paid["claims"] if c.payout == Claim.Payout.OFFLINE]
    assert not LedgerTransaction.objects.filter(reference__in=offline).exists()


def test_an_approved_claim_counts_once_it_is_paid(world, paid):
    before = selectors.payouts_by_courier_month(_default_period())
    unpaid = paid["unpaid"]
    assert unpaid.status == Claim.Status.APPROVED and unpaid.paid_at is None
    services.claim_pay(actor=world.finance, claim=unpaid)
    after = selectors.payouts_by_courier_month(_default_period())
    assert after.totals.claims == before.totals.claims + 1
    assert after.totals.wallet_fen == before.totals.wallet_fen + 7_000


def test_a_paid_claim_still_counts_once_closed(world, paid):
    claim = paid["claims"][0]
    services.claim_close(actor=world.cs, claim=claim)
    assert claim.status == Claim.Status.CLOSED
    report = selectors.payouts_by_courier_month(_default_period())
    assert _report_figures(report) == _expected(paid["claims"])


def test_filters_by_courier_and_by_shop(world, paid, couriers):
    yto = couriers["YTO"]
    by_courier = selectors.payouts_by_courier_month(_default_period(courier_id=yto.pk))
    assert _report_figures(by_courier) == _expected(paid["claims"], courier=yto)
    assert {code for code, _month in _report_figures(by_courier)} == {"YTO"}
    by_shop = selectors.payouts_by_courier_month(_default_period(shop_id=world.shop_b.pk))
    assert _report_figures(by_shop) == {
        ("ZTO", paid["this_month"]): [1, 0, 50_000],
        ("YTO", paid["this_month"]): [1, 99_900, 0],
    }


def test_a_longer_period_reaches_the_claim_paid_a_year_ago(world, paid):
    this_month = paid["this_month"]
    year_ago = selectors.add_months(this_month, -12)
    report = selectors.payouts_by_courier_month(
        PayoutPeriod(month_from=year_ago, month_to=this_month)
    )
    assert _report_figures(report)[("YTO", year_ago)] == [1, 6_000, 0]
    only_then = selectors.payouts_by_courier_month(
        PayoutPeriod(month_from=year_ago, month_to=year_ago)
    )
    assert _report_figures(only_then) == {("YTO", year_ago): [1, 6_000, 0]}


def test_months_are_the_platforms_calendar_not_utc(world, wallet_a, evidence_dir, couriers):
    """31 March 23:30 in Shanghai is 15:30 UTC, still March; 1 April 00:10 in Shanghai is
    31 March 16:10 UTC, already April."""
    late_march = paid_claim(
        world, shop=world.shop_a, courier=couriers["ZTO"], claimed_fen=1_000, approved_fen=1_000
    )
    early_april = paid_claim(
        world, shop=world.shop_a, courier=couriers["ZTO"], claimed_fen=2_000, approved_fen=2_000
    )
    Claim.objects.filter(pk=late_march.pk).update(
        paid_at=datetime(2026, 3, 31, 23, 30, tzinfo=ZONE)
    )
    Claim.objects.filter(pk=early_april.pk).update(paid_at=datetime(2026, 4, 1, 0, 10, tzinfo=ZONE))
    march, april = date(2026, 3, 1), date(2026, 4, 1)
    report = selectors.payouts_by_courier_month(PayoutPeriod(month_from=march, month_to=april))
    assert _report_figures(report) == {("ZTO", march): [1, 1_000, 0], ("ZTO", april): [1, 2_000, 0]}
    only_april = selectors.payouts_by_courier_month(PayoutPeriod(month_from=april, month_to=april))
    assert _report_figures(only_april) == {("ZTO", april): [1, 2_000, 0]}


def test_the_report_is_one_query_however_many_rows(world, paid):
    with CaptureQueriesContext(connection) as context:
        report = selectors.payouts_by_courier_month(_default_period())
    assert len(report.rows) == 4 and len(context.captured_queries) == 1


# --- The page and its CSV --------------------------------------------------------------------


def _page_rows(html: str) -> list[list[str]]:
    """The table's rows as the reader sees them: headings, one line per row, the totals."""
    table = re.search(r'<table[^>]*id="claim-payouts".*?</table>', html, re.S).group(0)
    return [
        [" ".join(unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in cells]
        for cells in (
            re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
        )
    ]


def _read_csv(response) -> list[list[str]]:
    data = b"".join(response.streaming_content)
    assert data.startswith("\ufeff".encode())  # so that Excel reads it as UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_the_page_shows_the_figures_in_yuan_with_a_totals_row(world, login, paid):
    response = login(world.finance).get(reverse(PAGE))
    assert response.status_code == 200
    rows = _page_rows(response.content.decode())
    this_month, last_month = paid["this_month"], paid["last_month"]
    assert rows == [
        ["快递公司", "月份", "赔付件数", "赔付到钱包（元）", "线下赔付（元）", "合计（元）"],
        ["中通快递", f"{last_month:%Y-%m}", "1", "80.00", "0.00", "80.00"],
        ["中通快递", f"{this_month:%Y-%m}", "3", "379.50", "500.00", "879.50"],
        ["圆通速递", f"{last_month:%Y-%m}", "1", "0.00", "199.99", "199.99"],
        ["圆通速递", f"{this_month:%Y-%m}", "1", "999.00", "0.00", "999.00"],
        ["合计", "", "6", "1,458.50", "699.99", "2,158.49"],
    ]


def test_the_csv_rows_are_the_pages(world, login, paid, couriers):
    client = login(world.finance)
    filters = {
        "month_from": f"{paid['last_month']:%Y-%m}",
        "month_to": f"{paid['this_month']:%Y-%m}",
        "courier": couriers["ZTO"].pk,
    }
    page = _page_rows(client.get(reverse(PAGE), filters).content.decode())
    response = client.get(reverse(EXPORT), filters)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = _read_csv(response)
    # The page groups thousands for reading; the CSV writes plain numbers for Excel.
    assert rows == [[cell.replace(",", "") for cell in row] for row in page]
    assert len(rows) == 4 and rows[-1][0] == "合计"


def test_the_csv_for_one_shop_is_named_after_it(world, login, paid):
    response = login(world.finance).get(
        reverse(EXPORT),
        {"month_from": "2026-01", "month_to": "2026-12", "shop": world.shop_b.pk},
    )
    assert response.status_code == 200
    assert "shop-b" in response["Content-Disposition"]
    assert "202601-202612" in response["Content-Disposition"]


def test_the_default_period_is_the_last_twelve_months(world, login):
    page = login(world.finance).get(reverse(PAGE)).content.decode()
    this_month = _this_month()
    first = selectors.add_months(this_month, -11)
    assert f'name="month_from" value="{first:%Y-%m}"' in page
    assert f'name="month_to" value="{this_month:%Y-%m}"' in page
    assert "此期间没有已赔付的索赔。" in page


@pytest.mark.parametrize(
    ("month_from", "month_to", "message"),
    [
        ("2026-05", "2026-04", "结束日期早于开始日期"),
        ("2024-01", "2026-01", "本页最多统计 24 个月"),
        ("2026-13", "2026-12", "请输入月份，例如 2026-03。"),
    ],
)
@pytest.mark.parametrize("route", [PAGE, EXPORT])
def test_a_bad_period_shows_the_filters_again_with_a_chinese_error(
    world, login, route, month_from, month_to, message
):
    response = login(world.finance).get(
        reverse(route), {"month_from": month_from, "month_to": month_to}
    )
    assert response.status_code == 400
    assert message in response.content.decode()


# --- Who may ---------------------------------------------------------------------------------

CAST = [
    ("owner", 403),
    ("agent", 403),
    ("viewer", 403),
    ("other", 403),
    ("cs", 403),
    ("finance", 200),
    ("anonymous", 302),
]


@pytest.mark.parametrize(("who", "status"), CAST)
@pytest.mark.parametrize("route", [PAGE, EXPORT])
def test_only_finance_opens_the_page_and_the_export(world, login, paid, route, who, status):
    response = login(world.user(who)).get(reverse(route))
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith(reverse("admin:login"))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert ("999.00" in body.decode()) == (status == 200)


def test_a_superuser_opens_it_too(world, login, paid):
    boss = User.objects.create_superuser("boss", password="pw-for-tests-123")
    assert login(boss).get(reverse(PAGE)).status_code == 200


@pytest.mark.parametrize(
    ("who", "shown"),
    [
        ("owner", False),
        ("agent", False),
        ("viewer", False),
        ("other", False),
        ("cs", False),
        ("finance", True),
    ],
)
def test_the_sidebar_shows_it_to_finance_alone(world, login, who, shown):
    index = login(world.user(who)).get(reverse("admin:index")).content.decode()
    assert (f'href="{reverse(PAGE)}"' in index) == shown
