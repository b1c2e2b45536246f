"""Reads on claims that more than one page needs: finance's payouts by courier and month."""

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from claims.models import Claim
from couriers.models import Courier


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    """The first day of the month ``count`` months after ``month``'s (before, if negative)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> int:
    """How many months from ``first``'s to ``last``'s, both included."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


@dataclass(frozen=True)
class PayoutPeriod:
    """Whole months of the platform's calendar (``settings.TIME_ZONE``), both included, and
    optionally one courier and one shop."""

    month_from: date
    month_to: date
    courier_id: int | None = None
    shop_id: int | None = None

    def bounds(self) -> tuple[datetime, datetime]:
        # The platform's months, whatever time zone the person asking is in: a payout at
        # 23:30 on 31 March in Shanghai is March's, as it is on the finance exports.
        zone = ZoneInfo(settings.TIME_ZONE)
        start = datetime.combine(month_start(self.month_from), time.min, tzinfo=zone)
        end = datetime.combine(add_months(month_start(self.month_to), 1), time.min, tzinfo=zone)
        return start, end


@dataclass(frozen=True)
class PayoutRow:
    """One courier's payouts in one month (or, with neither, the period's totals)."""

    courier_id: int | None
    courier_name: str
    month: date | None
    claims: int
    wallet_fen: int
    offline_fen: int

    @property
    def total_fen(self) -> int:
        return self.wallet_fen + self.offline_fen


@dataclass(frozen=True)
class PayoutReport:
    period: PayoutPeriod
    rows: list[PayoutRow]
    totals: PayoutRow


def _fen_sum(payout: str):
    return Coalesce(
        Sum("amount_approved_fen", filter=Q(payout=payout)),
        Value(0),
    )


def payouts_by_courier_month(period: PayoutPeriod) -> PayoutReport:
    """Claims paid in the period, grouped by courier and by the month they were paid in: how
    many, how much into shops' wallets and how much outside the platform. One query.

    A claim counts once it is paid, whatever happens to it afterwards (a paid claim may be
    closed); approved claims not yet paid do not count.
    """
    start, end = period.bounds()
    paid = Claim.objects.filter(paid_at__gte=start, paid_at__lt=end)
    if period.courier_id:
        paid = paid.filter(courier_id=period.courier_id)
    if period.shop_id:
        paid = paid.filter(shop_id=period.shop_id)
    grouped = (
        paid.annotate(month=TruncMonth("paid_at", tzinfo=ZoneInfo(settings.TIME_ZONE)))
        .values(
            "courier_id",
            "courier__code",
            "courier__sort_order",
            "courier__name_zh",
            "courier__name_en",
            "month",
        )
        .annotate(
            claims=Count("id"),
            wallet_fen=_fen_sum(Claim.Payout.WALLET),
            offline_fen=_fen_sum(Claim.Payout.OFFLINE),
        )
        .order_by("courier__sort_order", "courier__code", "month")
    )
    zone = ZoneInfo(settings.TIME_ZONE)
    rows = [
        PayoutRow(
            courier_id=row["courier_id"],
            courier_name=Courier.localized_name(row["courier__name_zh"], row["courier__name_en"]),
            month=timezone.localtime(row["month"], zone).date(),
            claims=row["claims"],
            wallet_fen=row["wallet_fen"],
            offline_fen=row["offline_fen"],
        )
        for row in grouped
    ]
    totals = PayoutRow(
        courier_id=None,
        courier_name="",
        month=None,
        claims=sum(row.claims for row in rows),
        wallet_fen=sum(row.wallet_fen for row in rows),
        offline_fen=sum(row.offline_fen for row in rows),
    )
    return PayoutReport(period=period, rows=rows, totals=totals)
