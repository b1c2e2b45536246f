"""Finance's payouts by courier and month as CSV, the same rows the page shows.

Written as the finance exports write theirs (``billing.exports``): UTF-8 with a byte-order mark
so that Excel shows the Chinese, headings in the language of whoever asked, every value quoted
and an empty cell for a missing one, amounts in yuan with two decimals and no thousands
separators, "\\n" line ends. The table has one row per courier and month, so it is built at once
from the report rather than streamed from the database.
"""

import csv
import io
from collections.abc import Iterator

from django.utils.translation import gettext as _

from claims.selectors import PayoutReport, PayoutRow


def _yuan_text(amount_fen: int) -> str:
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{yuan}.{fen:02d}"


def headers() -> list[str]:
    return [
        _("Courier"),
        _("Month"),
        _("Claims paid"),
        _("Paid into wallets (yuan)"),
        _("Paid offline (yuan)"),
        _("Total (yuan)"),
    ]


def _cells(row: PayoutRow, label: str = "") -> list[str]:
    return [
        row.courier_name or label,
        f"{row.month:%Y-%m}" if row.month else "",
        str(row.claims),
        _yuan_text(row.wallet_fen),
        _yuan_text(row.offline_fen),
        _yuan_text(row.total_fen),
    ]


def payout_lines(report: PayoutReport) -> list[list[str]]:
    """The CSV's lines: the headings, one line per courier and month, then the totals."""
    return [
        headers(),
        *(_cells(row) for row in report.rows),
        _cells(report.totals, label=_("Total")),
    ]


def csv_chunks(report: PayoutReport) -> Iterator[bytes]:
    """The CSV file in pieces: a byte-order mark and the headings, then the rows. The lines are
    made at once, in the language of the request, before the response is sent."""
    lines = payout_lines(report)
    return _encoded(lines)


def _encoded(lines: list[list[str]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NOTNULL, lineterminator="\n")
    writer.writerow(lines[0])
    yield ("\ufeff" + buffer.getvalue()).encode()
    buffer.seek(0)
    buffer.truncate()
    writer.writerows(lines[1:])
    yield buffer.getvalue().encode()


def filename(report: PayoutReport, shop_code: str = "") -> str:
    period = report.period
    parts = [_("claim-payouts"), f"{period.month_from:%Y%m}", f"{period.month_to:%Y%m}"]
    if shop_code:
        parts.append(shop_code)
    return "-".join(parts) + ".csv"
