"""The intercept pages of the workbench: asking for an intercept from an after-sale, and the
request's live status with its withdraw button.

The admin classes route to these views (``AfterSaleAdmin`` and ``InterceptRequestAdmin``);
every write goes through ``intercepts.services``.
"""

import uuid
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.widgets import (
    UnfoldAdminPasswordWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from billing import selectors as billing_selectors
from billing.models import Hold, Wallet
from billing.money import format_fen
from intercepts.eligibility import RuleResult, fee_quote, intercept_eligibility, is_eligible
from intercepts.models import AfterSale, InterceptPolicy, InterceptRequest, Parcel, TrackingEvent
from intercepts.selectors import SuccessChance, intercept_success_chance
from intercepts.services.after_sales import after_sale_approve_refund
from intercepts.services.errors import DomainError
from intercepts.services.intercept_requests import (
    intercept_withdraw,
    intercepts_request,
    may_request_intercept,
    may_withdraw_intercept,
)
from intercepts.validators import validate_phone
from shops.access import access_for
from shops.models import PLATFORM_CS

Action = InterceptRequest.Action
Status = InterceptRequest.Status


class InterceptForm(forms.Form):
    """The confirmation: which parcels, a new address for a redirect, and the payment password
    (the merchant) or the reason (platform CS)."""

    # The page's one-time token; with a parcel id it is the request's idempotency key.
    token = forms.CharField(widget=forms.HiddenInput, max_length=40)
    parcels = forms.MultipleChoiceField(
        label=gettext_lazy("Parcels to intercept"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    receiver_name = forms.CharField(
        label=gettext_lazy("New receiver"), max_length=50, required=False
    )
    receiver_phone = forms.CharField(
        label=gettext_lazy("New receiver's phone"),
        max_length=20,
        required=False,
        validators=[validate_phone],
    )
    province = forms.CharField(label=gettext_lazy("Province"), max_length=20, required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=20, required=False)
    district = forms.CharField(label=gettext_lazy("District"), max_length=20, required=False)
    address = forms.CharField(label=gettext_lazy("Street address"), max_length=200, required=False)
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=255,
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
    )
    pin = forms.CharField(
        label=gettext_lazy("Payment password"),
        max_length=6,
        required=False,
        widget=UnfoldAdminPasswordWidget(
            attrs={"autocomplete": "off", "inputmode": "numeric", "maxlength": 6}
        ),
    )

    ADDRESS_FIELDS = ("receiver_name", "receiver_phone", "province", "city", "district", "address")

    def __init__(self, *args, parcels, action, channel, **kwargs):
        super().__init__(*args, **kwargs)
        self.action = action
        self.channel = channel
        self.fields["parcels"].choices = [(str(p.pk), p.waybill_no) for p in parcels]
        for name in self.ADDRESS_FIELDS:
            self.fields[name].widget = UnfoldAdminTextInputWidget()
        if channel == InterceptRequest.Channel.PLATFORM_CS:
            del self.fields["pin"]
            self.fields["reason"].required = True
            self.fields["reason"].label = _("Reason (kept with the request)")
        if action != Action.REDIRECT:
            for name in self.ADDRESS_FIELDS:
                del self.fields[name]
        else:
            for name in self.ADDRESS_FIELDS:
                self.fields[name].required = name != "district"

    def clean_pin(self):
        pin = self.cleaned_data["pin"].strip()
        if not pin:
            raise forms.ValidationError(_("Enter the shop's 6-digit payment password."))
        return pin

    def new_address(self) -> dict | None:
        if self.action != Action.REDIRECT:
            return None
        data = self.cleaned_data
        return {
            "name": data["receiver_name"],
            "phone": data["receiver_phone"],
            "province": data["province"],
            "city": data["city"],
            "district": data.get("district", ""),
            "address": data["address"],
        }


@dataclass
class ParcelView:
    """One parcel as the intercept page shows it."""

    parcel: Parcel
    lines: list
    latest: TrackingEvent | None
    chance: SuccessChance
    results: list[RuleResult]
    eligible: bool
    fee_fen: int | None
    fee_error: str
    open_intercept: InterceptRequest | None
    # The intercept that already stopped the parcel, if one did.
    caught_by: InterceptRequest | None = None

    @property
    def chance_percent(self) -> int:
        return round(self.chance.probability * 100)

    @property
    def courier_takes_it(self) -> bool:
        """False where the courier takes no such intercept: a chance of success means nothing
        beside that refusal."""
        return all(r.passed is not False for r in self.results if r.code == "courier_capable")


def _parcel_views(after_sale: AfterSale, action: str) -> list[ParcelView]:
    policy = InterceptPolicy.current()
    parcels = list(
        after_sale.order.parcels.select_related("courier__account", "shop", "order")
        .prefetch_related("lines")
        .order_by("pk")
    )
    views = []
    for parcel in parcels:
        results = intercept_eligibility(
            after_sale=after_sale, parcel=parcel, action=action, policy=policy
        )
        fee_fen, fee_error = fee_quote(parcel.courier_id, action)
        # One query for either: an intercept in progress, or one that already caught it.
        standing = (
            parcel.intercepts.filter(status__in=(*InterceptRequest.OPEN, *InterceptRequest.CAUGHT))
            .order_by("-pk")
            .first()
        )
        views.append(
            ParcelView(
                parcel=parcel,
                lines=list(parcel.lines.all()) or list(after_sale.order.lines.all()),
                latest=parcel.tracking_events.order_by("-occurred_at", "-id").first(),
                chance=intercept_success_chance(courier_id=parcel.courier_id, stage=parcel.stage),
                results=results,
                eligible=is_eligible(results),
                fee_fen=fee_fen,
                fee_error=fee_error,
                open_intercept=standing if standing and standing.is_open else None,
                caught_by=standing if standing and not standing.is_open else None,
            )
        )
    return views


def _agreement_needed(after_sale: AfterSale) -> bool:
    policy = InterceptPolicy.current()
    shop = after_sale.shop
    return "agreement_signed" in policy.rules and (
        not shop.intercept_agreement_signed_at
        or shop.intercept_agreement_version != policy.agreement_version
    )


def intercept_view(model_admin, request, object_id):
    """Ask to intercept an after-sale's parcels: every rule's answer, the chance, the fee, then
    the confirmation."""
    after_sale = model_admin.get_object(request, object_id)
    channel = may_request_intercept(actor=request.user, after_sale=after_sale)
    if channel is None:
        raise PermissionDenied
    here = request.get_full_path()
    if channel == InterceptRequest.Channel.WORKBENCH and _agreement_needed(after_sale):
        agreement = reverse("admin:intercepts_shop_agreement", args=[after_sale.shop_id])
        return redirect(f"{agreement}?{urlencode({'next': here})}")
    action = request.POST.get("action") or request.GET.get("action") or Action.RETURN
    if action not in Action.values:
        action = Action.RETURN
    # The confirmation needs only the parcels; the page's rules, chances and tracking are
    # worked out when it is shown (the service checks every rule again anyway).
    parcels = list(
        after_sale.order.parcels.select_related("courier__account", "shop", "order").order_by("pk")
    )
    form = InterceptForm(
        request.POST or None,
        parcels=parcels,
        action=action,
        channel=channel,
        initial={"token": uuid.uuid4().hex},
    )
    if request.method == "POST" and form.is_valid():
        chosen = set(form.cleaned_data["parcels"]) if len(parcels) > 1 else None
        try:
            made = intercepts_request(
                actor=request.user,
                after_sale=after_sale,
                parcels=[p for p in parcels if chosen is None or str(p.pk) in chosen],
                action=action,
                pin=form.cleaned_data.get("pin", ""),
                reason=form.cleaned_data.get("reason", ""),
                new_address=form.new_address(),
                idempotency_key=form.cleaned_data["token"],
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            model_admin.message_user(
                request,
                _("The intercept request is sent to the courier; its answer appears below."),
            )
            return redirect("admin:intercepts_interceptrequest_change", made[0].pk)
    views = _parcel_views(after_sale, action)
    pin_locked_until = (
        billing_selectors.payment_password_locked_until(shop_id=after_sale.shop_id)
        if channel == InterceptRequest.Channel.WORKBENCH
        else None
    )
    if not form.is_bound:
        form.initial["parcels"] = [str(view.parcel.pk) for view in views if view.eligible][:1]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": after_sale,
        "after_sale": after_sale,
        "title": _("Intercept on behalf of the merchant")
        if channel == InterceptRequest.Channel.PLATFORM_CS
        else _("Intercept the parcel"),
        "channel": channel,
        "is_cs": channel == InterceptRequest.Channel.PLATFORM_CS,
        "action": action,
        "actions": [(value, label, f"?action={value}") for value, label in Action.choices],
        "parcel_views": views,
        "multi": len(views) > 1,
        "any_eligible": any(view.eligible for view in views),
        "balances": billing_selectors.wallet_balances(shop_id=after_sale.shop_id),
        # The lock is shown when the page opens, not only after the next wrong try.
        "pin_locked_until": pin_locked_until,
        "wallet_url": _wallet_url(after_sale.shop_id) if pin_locked_until else "",
        "form": form,
        "address_fields": [form[name] for name in form.ADDRESS_FIELDS if name in form.fields],
        "back_url": reverse("admin:intercepts_aftersale_change", args=[after_sale.pk]),
    }
    return TemplateResponse(request, "admin/intercepts/aftersale/intercept.html", context)


def _confirm_page(model_admin, request, obj, **context) -> TemplateResponse:
    """A page that says what a money button will do; its one post does it."""
    return TemplateResponse(
        request,
        "admin/intercepts/confirm.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "original": obj,
            **context,
        },
    )


def _wallet_url(shop_id: int) -> str:
    wallet_id = Wallet.objects.filter(shop_id=shop_id).values_list("pk", flat=True).first()
    return reverse("admin:billing_wallet_change", args=[wallet_id]) if wallet_id else ""


def approve_refund_view(model_admin, request, object_id):
    """Approve the buyer's refund: the page says how much and what became of the parcels;
    the post approves it."""
    after_sale = model_admin.get_object(request, object_id)
    if not access_for(request.user).acts_for(after_sale.shop_id):
        raise PermissionDenied
    back_url = reverse("admin:intercepts_aftersale_change", args=[after_sale.pk])
    if request.method == "POST":
        try:
            after_sale_approve_refund(actor=request.user, after_sale=after_sale)
        except DomainError as exc:
            model_admin.message_user(request, str(exc), level=messages.ERROR)
        else:
            model_admin.message_user(request, _("The refund is approved."))
        return redirect(back_url)
    if after_sale.status != AfterSale.Status.PENDING:
        model_admin.message_user(
            request, _("This after-sale no longer awaits the merchant."), level=messages.WARNING
        )
        return redirect(back_url)
    order = after_sale.order
    amount = format_fen(after_sale.refund_amount_fen)
    parcels = list(order.parcels.select_related("courier").order_by("pk"))
    done = [
        intercept
        for intercept in after_sale.intercepts.filter(
            status__in=(Status.SUCCEEDED, Status.COMPLETED)
        ).order_by("pk")
    ]
    caught = [
        i
        for i in done
        if InterceptRequest.calls_for_refund(action=i.action, after_sale_kind=after_sale.kind)
    ]
    consequences = [
        _(
            "The buyer's refund of %(amount)s yuan is approved and the platform pays it back to "
            "the buyer. This cannot be undone."
        )
        % {"amount": amount}
    ]
    warnings = []
    if caught:
        consequences.append(_("The parcel was intercepted and is on its way back to you."))
    elif any(i.action == Action.REDIRECT for i in done):
        warnings.append(
            _(
                "The parcel was sent on to a new address: the buyer receives the goods. With "
                "the refund, the buyer keeps the goods and the money."
            )
        )
    elif parcels:
        warnings.append(
            _(
                "No parcel of this order was intercepted: if the goods reach the buyer, the "
                "buyer has the goods and the money."
            )
        )
    return _confirm_page(
        model_admin,
        request,
        after_sale,
        title=_("Approve the refund of %(amount)s yuan?") % {"amount": amount},
        facts=[
            (_("Order number"), order.order_no),
            (_("Buyer"), f"{order.buyer_name} {order.buyer_phone_masked}"),
            (_("After-sale type"), after_sale.get_kind_display()),
            (_("Refund (yuan)"), amount),
            *[
                (_("Parcel"), f"{p.courier.display_name} {p.waybill_no} · {p.get_stage_display()}")
                for p in parcels
            ],
        ],
        consequences=consequences,
        warnings=warnings,
        submit_label=_("Approve the refund of %(amount)s yuan") % {"amount": amount},
        back_url=back_url,
        back_label=_("Not now, back to the after-sale"),
        danger=False,
    )


def after_sale_page_context(request, after_sale: AfterSale) -> dict:
    """What the after-sale page needs for its intercept button and refund prompt."""
    channel = may_request_intercept(actor=request.user, after_sale=after_sale)
    qualifies = after_sale.order.parcels.exists() and (
        after_sale.arbitration in AfterSale.ARBITRATION_OPEN
        or (
            after_sale.kind in (AfterSale.Kind.REFUND_ONLY, AfterSale.Kind.CANCEL_ORDER)
            and after_sale.status in (AfterSale.Status.PENDING, AfterSale.Status.APPROVED)
        )
    )
    may_approve = access_for(request.user).acts_for(after_sale.shop_id)
    # The order's parcels already stopped or being stopped (by this after-sale or another of
    # the order): said on the page, with their records, and not offered again.
    standing = list(
        InterceptRequest.objects.filter(
            parcel__order_id=after_sale.order_id,
            status__in=(*InterceptRequest.OPEN, *InterceptRequest.CAUGHT),
        )
        .select_related("parcel")
        .order_by("pk")
    )
    # What this after-sale's intercepts that worked did: sent the goods back (a refund is due)
    # or on to a new address (the buyer receives them, no refund).
    done = {
        i.action
        for i in standing
        if i.status in InterceptRequest.CAUGHT and i.after_sale_id == after_sale.pk
    }
    caught = any(
        InterceptRequest.calls_for_refund(action=action, after_sale_kind=after_sale.kind)
        for action in done
    )
    pending = after_sale.status == AfterSale.Status.PENDING
    parcels_left = (
        qualifies
        and after_sale.order.parcels.exclude(pk__in=[i.parcel_id for i in standing]).exists()
    )
    return {
        "intercept_channel": channel if parcels_left else None,
        "standing_intercepts": [
            (
                i,
                i.status in InterceptRequest.CAUGHT,
                reverse("admin:intercepts_interceptrequest_change", args=[i.pk]),
            )
            for i in standing
        ],
        "intercept_url": reverse("admin:intercepts_aftersale_intercept", args=[after_sale.pk]),
        "may_approve_refund": may_approve and pending,
        "refund_prompt": may_approve and caught and pending,
        "redirected_note": Action.REDIRECT in done and not caught,
    }


# --- The request's live status -----------------------------------------------------------------


def may_withdraw(request, intercept: InterceptRequest) -> bool:
    return may_withdraw_intercept(actor=request.user, intercept=intercept) and (
        intercept.status == Status.CREATED
        or (intercept.status == Status.ACCEPTED and intercept.withdraw_requested_at is None)
    )


def panel_context(request, intercept: InterceptRequest) -> dict:
    waiting = intercept.status in (Status.CREATED, Status.SUBMITTED) or (
        intercept.status == Status.ACCEPTED and intercept.withdraw_requested_at is not None
    )
    after_sale = intercept.after_sale
    # What billing did with the fee; the status says the same (both move in one transaction)
    # where the request was loaded without its hold.
    fee_state = getattr(intercept, "fee_state", None) or (
        Hold.Status.CAPTURED
        if intercept.status in (Status.SUCCEEDED, Status.COMPLETED)
        else Hold.Status.RELEASED
        if intercept.status in (Status.REJECTED, Status.FAILED, Status.CANCELLED)
        else Hold.Status.HELD
    )
    return {
        "intercept": intercept,
        "fee_state": fee_state,
        "courier": intercept.parcel.courier,
        "steps": _steps(intercept),
        "waiting": waiting,
        # Keep asking while a result can still come; quickly while an answer is due.
        # Succeeded still waits for the parcel's return (completed).
        "poll_ms": 500
        if waiting
        else (5000 if intercept.status in (Status.ACCEPTED, Status.SUCCEEDED) else 0),
        "ended_badly": intercept.status in (Status.REJECTED, Status.FAILED),
        # The courier's failure code is for platform staff; merchants read the reason.
        "show_codes": access_for(request.user).is_platform,
        "may_withdraw": may_withdraw(request, intercept),
        "withdraw_url": reverse("admin:intercepts_interceptrequest_withdraw", args=[intercept.pk]),
        "panel_url": reverse("admin:intercepts_interceptrequest_panel", args=[intercept.pk]),
        "refund_prompt": (
            after_sale is not None
            and access_for(request.user).acts_for(intercept.shop_id)
            and intercept.status in (Status.SUCCEEDED, Status.COMPLETED)
            and after_sale.status == AfterSale.Status.PENDING
            and InterceptRequest.calls_for_refund(
                action=intercept.action, after_sale_kind=after_sale.kind
            )
        ),
        # A change of address that worked: the goods go to the buyer's new address, so the
        # page says so instead of asking for a refund.
        "redirected": intercept.action == Action.REDIRECT
        and intercept.status in (Status.SUCCEEDED, Status.COMPLETED),
        "after_sale_url": reverse("admin:intercepts_aftersale_change", args=[after_sale.pk])
        if after_sale
        else "",
        "claim_url": claim_url(request, intercept),
        "claims_list_url": claims_list_url(intercept),
    }


def claims_list_url(intercept: InterceptRequest) -> str:
    """The claims list searched by this parcel's waybill: where a claim already filed on a
    caught parcel is found (the list shows each user only what they may see)."""
    if intercept.status not in InterceptRequest.CAUGHT:
        return ""
    try:
        url = reverse("admin:claims_claim_changelist")
    except NoReverseMatch:  # the claims app is not installed
        return ""
    return f"{url}?{urlencode({'q': intercept.parcel.waybill_no})}"


def claim_url(request, intercept: InterceptRequest) -> str:
    """The claims filing form for a parcel this intercept caught, for whoever may file one (the
    shop's owner and agents; platform CS, offline). Named by its URL only: claims stands above
    intercepts, which never imports it; the form itself says when a claim is already filed."""
    if intercept.status not in InterceptRequest.CAUGHT:
        return ""
    access = access_for(request.user)
    if not (
        access.acts_for(intercept.shop_id)
        or access.is_superuser
        or PLATFORM_CS in access.platform_groups
    ):
        return ""
    try:
        url = reverse("admin:claims_claim_add")
    except NoReverseMatch:  # the claims app is not installed
        return ""
    return f"{url}?{urlencode({'intercept': intercept.pk})}"


def _steps(intercept: InterceptRequest) -> list[tuple[str, str]]:
    """The lifecycle's steps with each one's state: done, current or todo.

    Under way or successful: the happy path, up to where the request is. Ended otherwise: the
    steps it got through, then how it ended as the current step, so that the steps never point
    at a status the header has left behind ("ended" marks that last step).
    """
    path = [Status.CREATED, Status.SUBMITTED, Status.ACCEPTED, Status.SUCCEEDED, Status.COMPLETED]
    if intercept.status in path:
        reached = path.index(intercept.status)
        return [
            (
                Status(status).label,
                "done" if index < reached else ("current" if index == reached else "todo"),
            )
            for index, status in enumerate(path)
        ]
    # The last step of the happy path it passed: refused answers a request that was sent; a
    # failure comes after acceptance (or a submitted request's direct result); a withdrawal
    # is before sending unless the courier was asked to withdraw an accepted request.
    passed = {
        Status.REJECTED: Status.SUBMITTED,
        Status.FAILED: Status.ACCEPTED if intercept.courier_reference else Status.SUBMITTED,
        Status.CANCELLED: Status.ACCEPTED if intercept.withdraw_requested_at else Status.CREATED,
    }[intercept.status]
    steps = [(Status(status).label, "done") for status in path[: path.index(passed) + 1]]
    return [*steps, (Status(intercept.status).label, "ended")]


def panel_view(model_admin, request, object_id):
    """The status panel alone, which the record page fetches until the story ends."""
    intercept = model_admin.get_object(request, object_id)
    html = render_to_string(
        "admin/intercepts/interceptrequest/status_panel.html",
        panel_context(request, intercept),
        request=request,
    )
    response = HttpResponse(html)
    response["Cache-Control"] = "no-store"
    return response


def withdraw_view(model_admin, request, object_id):
    """Withdraw an intercept: the page says what becomes of the request and its held fee;
    the post withdraws it."""
    intercept = model_admin.get_object(request, object_id)
    back_url = reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk])
    if not may_withdraw_intercept(actor=request.user, intercept=intercept):
        raise PermissionDenied
    if not may_withdraw(request, intercept):
        if request.method == "POST":
            raise PermissionDenied
        # Moved on since the button was drawn: back to the record, which says where it is.
        model_admin.message_user(
            request, _("This intercept can no longer be withdrawn."), level=messages.WARNING
        )
        return redirect(back_url)
    if request.method == "POST":
        try:
            intercept = intercept_withdraw(actor=request.user, intercept=intercept)
        except DomainError as exc:
            model_admin.message_user(request, str(exc), level=messages.ERROR)
        else:
            if intercept.status == Status.CANCELLED:
                model_admin.message_user(
                    request, _("The intercept is withdrawn; its fee is back in the wallet.")
                )
            else:
                model_admin.message_user(request, _("The withdrawal is on its way to the courier."))
        return redirect(back_url)
    parcel = intercept.parcel
    courier = parcel.courier.display_name
    fee = format_fen(intercept.fee_fen)
    if intercept.status == Status.CREATED:
        consequences = [
            _(
                "The request has not reached the courier yet: it is withdrawn at once, and the "
                "held fee of %(fee)s yuan goes back to the wallet's available balance."
            )
            % {"fee": fee}
        ]
    else:
        consequences = [
            _(
                "%(courier)s is asked to withdraw the request, which it allows until the parcel "
                "is caught. Once it confirms, the held fee of %(fee)s yuan goes back to the "
                "wallet's available balance."
            )
            % {"courier": courier, "fee": fee},
        ]
    warnings = [
        _("The parcel then carries on to its receiver: %(address)s.")
        % {"address": f"{parcel.receiver_name} {parcel.receiver_address}"}
    ]
    if intercept.status == Status.ACCEPTED:
        warnings.append(
            _(
                "If the courier catches the parcel first, the intercept stands and the fee of "
                "%(fee)s yuan is charged."
            )
            % {"fee": fee}
        )
    return _confirm_page(
        model_admin,
        request,
        intercept,
        title=_("Withdraw the intercept?"),
        facts=[
            (_("Order number"), parcel.order.order_no),
            (_("Parcel"), f"{courier} {parcel.waybill_no}"),
            (_("Action"), intercept.get_action_display()),
            (_("Intercept status"), intercept.get_status_display()),
            (_("Fee held (yuan)"), fee),
        ],
        consequences=consequences,
        warnings=warnings,
        submit_label=_("Withdraw the intercept"),
        back_url=back_url,
        back_label=_("Keep the intercept"),
        danger=True,
    )


def safe_next(request, default: str) -> str:
    """Where to go after signing the agreement: a path on this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default
