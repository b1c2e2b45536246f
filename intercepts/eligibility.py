"""May this parcel be intercepted? Every named rule's answer, so a page can show them all.

Each rule has a code, a title and a check that returns None when it passes or the reason (in
the user's language) when it does not. Which rules apply, and their settings, are the
platform's ``InterceptPolicy``; a rule the policy leaves out is reported as not applied. The
sources: Douyin (not cross-border, shop operating normally, agreement signed, excluded goods,
value under 1000 yuan, refund-only after-sale not completed, between pickup and delivery), JD
(wallet with enough money, e-waybill with the courier, more excluded goods, no multi-parcel
orders, cancelled orders), Kdniao (stages that allow an intercept or a change of address).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import selectors as billing_selectors
from billing.money import format_fen
from billing.services import BillingError
from couriers.adapters import get_adapter
from couriers.adapters.common import InterceptAction
from couriers.stages import stage_label

ADAPTER_ACTIONS = {
    "return": InterceptAction.RETURN_TO_SENDER_ADDRESS,
    "redirect": InterceptAction.REDIRECT_NEW_ADDRESS,
}


@dataclass(frozen=True)
class RuleResult:
    code: str
    title: str
    passed: bool | None  # None: the policy does not apply this rule
    message: str = ""


@dataclass
class Case:
    """What the rules look at: one parcel of an after-sale, one action, under a policy."""

    after_sale: object
    parcel: object
    action: str
    policy: object

    @property
    def shop(self):
        return self.parcel.shop

    @cached_property
    def fee(self) -> tuple[int | None, str]:
        return fee_quote(self.parcel.courier_id, self.action)


def fee_quote(courier_id: int, action: str) -> tuple[int | None, str]:
    """(fee in fen, "") for the action with the courier, or (None, why there is none)."""
    try:
        return billing_selectors.quote(courier_id, action), ""
    except BillingError as exc:
        return None, str(exc)


def _not_cross_border(case: Case) -> str | None:
    if case.shop.is_cross_border:
        return _("Cross-border shops cannot intercept parcels.")
    return None


def _shop_operating(case: Case) -> str | None:
    if case.shop.status != "normal":
        return _("The shop is not operating normally (%(status)s).") % {
            "status": case.shop.get_status_display()
        }
    return None


def _agreement_signed(case: Case) -> str | None:
    shop = case.shop
    if not shop.intercept_agreement_signed_at:
        return _("The shop has not signed the intercept service agreement.")
    if shop.intercept_agreement_version != case.policy.agreement_version:
        return _("The intercept service agreement has a new version to sign.")
    return None


def _wallet_funds(case: Case) -> str | None:
    fee, refusal = case.fee
    if fee is None:
        return refusal
    balances = billing_selectors.wallet_balances(shop_id=case.shop.pk)
    if balances is None:
        return _("The shop has no wallet yet; open it and top it up first.")
    if balances.available_fen < fee:
        return _("The wallet has %(available)s yuan available; the fee is %(fee)s yuan.") % {
            "available": format_fen(balances.available_fen),
            "fee": format_fen(fee),
        }
    return None


def _ewaybill(case: Case) -> str | None:
    from shops.models import EwaybillAccount

    if not EwaybillAccount.objects.filter(
        shop_id=case.shop.pk, courier_id=case.parcel.courier_id
    ).exists():
        return _("The shop has no e-waybill account with %(courier)s.") % {
            "courier": case.parcel.courier.display_name
        }
    return None


def _after_sale_state(case: Case) -> str | None:
    after_sale = case.after_sale
    if after_sale is None:
        return _("An intercept needs an after-sale.")
    if after_sale.arbitration in after_sale.ARBITRATION_OPEN:
        return None
    if after_sale.kind == "refund_only" and after_sale.status in ("pending", "approved"):
        return None
    if after_sale.kind == "cancel_order" and after_sale.status in ("pending", "approved"):
        return None  # the order was cancelled after it shipped
    return _(
        "Only a refund-only after-sale not yet completed, an order cancelled after shipping or "
        "an after-sale under arbitration allows an intercept."
    )


def _goods_categories(case: Case) -> str | None:
    lines = list(case.parcel.lines.all()) or list(case.parcel.order.lines.all())
    excluded = set(case.policy.excluded_categories)
    blocked = sorted({line.get_category_display() for line in lines if line.category in excluded})
    if blocked:
        return _("These goods cannot be intercepted: %(categories)s.") % {
            "categories": "、".join(blocked)
        }
    return None


def _value_cap(case: Case) -> str | None:
    if case.parcel.declared_value_fen > case.policy.value_cap_fen:
        return _("The parcel is worth %(value)s yuan, above the %(cap)s yuan limit.") % {
            "value": format_fen(case.parcel.declared_value_fen),
            "cap": format_fen(case.policy.value_cap_fen),
        }
    return None


def _courier_capable(case: Case) -> str | None:
    courier = case.parcel.courier
    allowed = courier.can_redirect if case.action == "redirect" else courier.can_return_to_sender
    account = courier.account
    if allowed and account is not None and account.is_active:
        capabilities = get_adapter(account.config()).capabilities
        if capabilities.can_intercept and ADAPTER_ACTIONS[case.action] in (
            capabilities.intercept_actions
        ):
            return None
    return _("%(courier)s does not take this intercept through the platform.") % {
        "courier": courier.display_name
    }


def _stage_window(case: Case) -> str | None:
    if case.parcel.stage not in case.policy.stages_for(case.action):
        return _("The parcel is %(stage)s; this intercept is not possible at this stage.") % {
            "stage": stage_label(case.parcel.stage)
        }
    return None


def _no_open_intercept(case: Case) -> str | None:
    from intercepts.models import InterceptRequest

    status = (
        InterceptRequest.objects.filter(
            parcel_id=case.parcel.pk,
            status__in=(*InterceptRequest.OPEN, *InterceptRequest.CAUGHT),
        )
        .values_list("status", flat=True)
        .first()
    )
    if status in InterceptRequest.CAUGHT:
        return _("This parcel was already intercepted; it cannot be intercepted again.")
    if status is not None:
        return _("This parcel already has an intercept in progress.")
    return None


def _multi_parcel(case: Case) -> str | None:
    if case.policy.allow_one_parcel_of_many:
        return None
    if case.parcel.order.parcels.count() > 1:
        return _(
            "The order was shipped in several parcels: the platform's rules do not intercept "
            "multi-parcel orders."
        )
    return None


RULES: dict[str, tuple[str, Callable[[Case], str | None]]] = {
    "not_cross_border": (gettext_lazy("Shop is not cross-border"), _not_cross_border),
    "shop_operating": (gettext_lazy("Shop operating normally"), _shop_operating),
    "agreement_signed": (gettext_lazy("Intercept agreement signed"), _agreement_signed),
    "wallet_funds": (gettext_lazy("Wallet can pay the fee"), _wallet_funds),
    "ewaybill": (gettext_lazy("E-waybill with the courier"), _ewaybill),
    "after_sale_state": (gettext_lazy("After-sale allows an intercept"), _after_sale_state),
    "goods_categories": (gettext_lazy("Goods may be intercepted"), _goods_categories),
    "value_cap": (gettext_lazy("Parcel value within the limit"), _value_cap),
    "courier_capable": (gettext_lazy("Courier takes the intercept"), _courier_capable),
    "stage_window": (gettext_lazy("Stage allows the intercept"), _stage_window),
    "no_open_intercept": (
        gettext_lazy("Not intercepted already, none in progress"),
        _no_open_intercept,
    ),
    "multi_parcel": (gettext_lazy("Multi-parcel order rule"), _multi_parcel),
}
RULE_CODES = tuple(RULES)


def intercept_eligibility(*, after_sale, parcel, action: str, policy=None) -> list[RuleResult]:
    """Every rule's result for intercepting ``parcel`` with ``action``, in a fixed order."""
    from intercepts.models import InterceptPolicy

    policy = policy or InterceptPolicy.current()
    case = Case(after_sale=after_sale, parcel=parcel, action=action, policy=policy)
    applied = set(policy.rules)
    results = []
    for code, (title, check) in RULES.items():
        if code not in applied:
            results.append(RuleResult(code, str(title), None, _("Not applied by the platform.")))
            continue
        reason = check(case)
        results.append(RuleResult(code, str(title), reason is None, reason or ""))
    return results


def is_eligible(results: list[RuleResult]) -> bool:
    return all(result.passed is not False for result in results)
