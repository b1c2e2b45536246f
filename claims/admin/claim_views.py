"""The claim pages beside the list: filing a claim from an intercept record, the buttons on a
claim, and its evidence files.

``ClaimAdmin`` routes here. Every write calls ``claims.services`` and shows its refusal
(``ClaimError``, in the user's language) on the form or as a message; nothing here decides a
rule the services decide.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing.money import format_fen
from claims import forms as claim_forms
from claims import services
from claims.models import Claim, ClaimEvidence
from claims.services import ClaimError
from intercepts import selectors as intercept_selectors
from intercepts.models import InterceptRequest
from shops import evidence as shop_evidence
from shops.access import access_for, scope_to_shops
from shops.models import ShopMembership

Status = Claim.Status
# Evidence can still change the courier's mind until it decides.
EVIDENCE_OPEN = (Status.SUBMITTED, Status.WITH_COURIER, Status.APPEALED)
MERCHANT_WRITE = (ShopMembership.Role.OWNER, ShopMembership.Role.AGENT)


def _change_url(claim: Claim) -> str:
    return reverse("admin:claims_claim_change", args=[claim.pk])


# --- Who may press which button ----------------------------------------------------------------


def _merchant(user, claim: Claim) -> bool:
    return services.acts_for_shop(user, claim.shop_id)


def _cs(user, claim: Claim) -> bool:
    return services.is_claims_cs(user)


def _finance(user, claim: Claim) -> bool:
    return services.is_claims_finance(user)


def _merchant_or_cs(user, claim: Claim) -> bool:
    return _merchant(user, claim) or _cs(user, claim)


def _cs_or_finance(user, claim: Claim) -> bool:
    return _cs(user, claim) or _finance(user, claim)


def claim_buttons(request, claim: Claim) -> dict:
    """Which forms the claim page shows this user now: by role, then by the claim's status (the
    services check both again when the form is sent)."""
    user = request.user
    merchant, cs, finance = _merchant(user, claim), _cs(user, claim), _finance(user, claim)
    status = claim.status
    buttons = {
        "can_withdraw": merchant and status in Claim.WITHDRAWABLE,
        "can_appeal": merchant and status == Status.REJECTED and claim.appealed_at is None,
        "can_add_evidence": (merchant or cs) and status in EVIDENCE_OPEN,
        "can_send": cs and status in (Status.SUBMITTED, Status.APPEALED),
        "can_decide": cs and status == Status.WITH_COURIER,
        "can_close": status in (Status.REJECTED, Status.PAID) and services.may_close(user, claim),
        "can_pay": finance and status == Status.APPROVED,
    }
    buttons["any_button"] = any(buttons.values())
    buttons["action_urls"] = {
        name: reverse(f"admin:claims_claim_{name}", args=[claim.pk]) for name in ACTIONS
    }
    buttons["accept_files"] = claim_forms.ACCEPT
    # What the approve form starts from: the amount claimed, as it is typed (no separators).
    buttons["approve_initial"] = format_fen(claim.amount_claimed_fen).replace(",", "")
    return buttons


# --- The buttons' posts ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimAction:
    """One button on a claim: who may press it, its form, the service it calls and what the
    user is told. ``run`` returns False where nothing changed (already done)."""

    may: Callable[[Any, Claim], bool]
    form: type
    run: Callable[[Any, Claim, dict], Any]
    done: Callable[[Claim, Any], str]
    unchanged: Callable[[Claim], str] | None = None


def _added(claim: Claim, added) -> str:
    count = len(added)
    return ngettext(
        "%(count)d file was added to the claim.", "%(count)d files were added to the claim.", count
    ) % {"count": count}


def _paid(claim: Claim, _result) -> str:
    if claim.payout == Claim.Payout.WALLET:
        return _("%(amount)s yuan was credited to the shop's wallet.") % {
            "amount": format_fen(claim.amount_approved_fen)
        }
    return _("The payment of %(amount)s yuan outside the platform was recorded.") % {
        "amount": format_fen(claim.amount_approved_fen)
    }


ACTIONS: dict[str, ClaimAction] = {
    "withdraw": ClaimAction(
        may=_merchant,
        form=claim_forms.NoteForm,
        run=lambda user, claim, data: services.claim_withdraw(
            actor=user, claim=claim, note=data["note"]
        ),
        done=lambda claim, _r: _("The claim was withdrawn."),
    ),
    "appeal": ClaimAction(
        may=_merchant,
        form=claim_forms.AppealForm,
        run=lambda user, claim, data: services.claim_appeal(
            actor=user, claim=claim, note=data["note"]
        ),
        done=lambda claim, _r: _("The appeal was filed; customer service passes it on."),
    ),
    "evidence": ClaimAction(
        may=_merchant_or_cs,
        form=claim_forms.EvidenceForm,
        run=lambda user, claim, data: services.claim_add_evidence(
            actor=user, claim=claim, files=data["files"]
        ),
        done=_added,
    ),
    "send": ClaimAction(
        may=_cs,
        form=claim_forms.NoteForm,
        run=lambda user, claim, data: services.claim_send_to_courier(
            actor=user, claim=claim, note=data["note"]
        ),
        done=lambda claim, _r: (
            _("The claim was passed to %(courier)s.") % {"courier": claim.courier.display_name}
        ),
    ),
    "approve": ClaimAction(
        may=_cs,
        form=claim_forms.ApproveForm,
        run=lambda user, claim, data: services.claim_approve(
            actor=user, claim=claim, amount_fen=data["amount_fen"], note=data["note"]
        ),
        done=lambda claim, _r: (
            _("The claim was approved for %(amount)s yuan.")
            % {"amount": format_fen(claim.amount_approved_fen)}
        ),
        unchanged=lambda claim: _("The claim was already approved."),
    ),
    "reject": ClaimAction(
        may=_cs,
        form=claim_forms.RejectForm,
        run=lambda user, claim, data: services.claim_reject(
            actor=user, claim=claim, reason=data["reason"]
        ),
        done=lambda claim, _r: _("The claim was rejected."),
        unchanged=lambda claim: _("The claim was already rejected."),
    ),
    "close": ClaimAction(
        may=services.may_close,
        form=claim_forms.NoteForm,
        run=lambda user, claim, data: services.claim_close(
            actor=user, claim=claim, note=data["note"]
        ),
        done=lambda claim, _r: _("The claim was closed."),
        unchanged=lambda claim: _("The claim was already closed."),
    ),
    "pay": ClaimAction(
        may=_finance,
        form=claim_forms.PayForm,
        run=lambda user, claim, data: services.claim_pay(
            actor=user,
            claim=claim,
            offline=data["payout"] == claim_forms.PayForm.OFFLINE,
            payment_reference=data["payment_reference"],
        ),
        done=_paid,
        unchanged=lambda claim: _("This claim was already paid; nothing was paid again."),
    ),
}


def _form_errors(form) -> list[str]:
    lines = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        for error in errors:
            lines.append(
                _("%(field)s: %(error)s") % {"field": label, "error": error} if label else error
            )
    return lines


def action_view(model_admin, request, object_id, name: str):
    """One button's post: the user's role, then the service; back to the claim either way,
    with what happened or why not."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    action = ACTIONS[name]
    claim = model_admin.get_object(request, object_id)  # another shop's claim: 404
    if not action.may(request.user, claim):
        raise PermissionDenied
    form = action.form(request.POST, request.FILES)
    if not form.is_valid():
        for line in _form_errors(form):
            model_admin.message_user(request, line, level=messages.ERROR)
        return redirect(_change_url(claim))
    try:
        result = action.run(request.user, claim, form.cleaned_data)
    except ClaimError as exc:
        model_admin.message_user(request, str(exc), level=messages.ERROR)
    else:
        claim.refresh_from_db()
        if result is False and action.unchanged is not None:
            model_admin.message_user(request, action.unchanged(claim), level=messages.WARNING)
        else:
            model_admin.message_user(request, action.done(claim, result), level=messages.SUCCESS)
    return redirect(_change_url(claim))


# --- Evidence files ----------------------------------------------------------------------------


def evidence_view(model_admin, request, object_id, evidence_id: int):
    """One evidence file, to whoever may see its claim; to anyone else it does not exist."""
    claim = model_admin.get_object(request, object_id)  # another shop's claim: 404
    if not model_admin.has_view_permission(request, claim):
        raise Http404
    item = ClaimEvidence.objects.filter(claim_id=claim.pk, pk=evidence_id).first()
    if item is None:
        raise Http404
    return shop_evidence.file_response(item)


def evidence_url(claim_id: int, evidence_id: int) -> str:
    return reverse("admin:claims_claim_evidence", args=[claim_id, evidence_id])


# --- Filing ------------------------------------------------------------------------------------


def _filing_mode(user, intercept: InterceptRequest) -> str | None:
    """ "online" for the shop's owner and agents, "offline" for platform customer service (who
    records what the merchant phoned in), None for anyone else."""
    if services.acts_for_shop(user, intercept.shop_id):
        return "online"
    if services.is_claims_cs(user):
        return "offline"
    return None


def _filing_shop_ids(user) -> list[int] | None:
    """The shops whose intercepts the user may file claims on; None for every shop."""
    access = access_for(user)
    if services.is_claims_cs(user):
        return None
    return [shop for shop, role in access.shop_roles.items() if role in MERCHANT_WRITE]


def _page(model_admin, request, template: str, **context) -> TemplateResponse:
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "back_url": reverse("admin:claims_claim_changelist"),
            **context,
        },
    )


def file_view(model_admin, request):
    """The filing form (the admin's "add" page): for one intercept (``?intercept=<id>``, the
    intercept record's button), or first a search for it by waybill or order number."""
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    intercept_id = request.GET.get("intercept", "")
    if not intercept_id:
        return _find_view(model_admin, request)
    if not (intercept_id.isascii() and intercept_id.isdigit()):
        raise Http404
    intercepts = scope_to_shops(
        InterceptRequest.objects.select_related("parcel__courier", "parcel__order", "shop"),
        request.user,
    )
    intercept = intercepts.filter(pk=int(intercept_id)).first()
    if intercept is None:
        raise Http404
    mode = _filing_mode(request.user, intercept)
    if mode is None:
        # A shop member who only reads this shop (a viewer), or finance.
        raise PermissionDenied
    offline = mode == "offline"
    parcel = intercept.parcel
    value_fen, ceiling_fen = services.claim_ceiling_fen(parcel)
    form = claim_forms.ClaimFileForm(
        request.POST or None,
        request.FILES or None,
        intercept=intercept,
        offline=offline,
        initial={"amount_claimed_fen": ceiling_fen or None},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            claim = services.claim_file(
                actor=request.user,
                intercept=intercept,
                reason=data["reason"],
                amount_claimed_fen=data["amount_claimed_fen"],
                description=data["description"],
                files=data["files"],
                offline=offline,
                contact_note=data.get("contact_note", ""),
            )
        except ClaimError as exc:
            form.add_error(None, str(exc))
        else:
            model_admin.message_user(
                request,
                _("Claim #%(id)s was filed for %(amount)s yuan.")
                % {"id": claim.pk, "amount": format_fen(claim.amount_claimed_fen)},
                level=messages.SUCCESS,
            )
            return redirect(_change_url(claim))
    refusal = services.claim_refusal(intercept)
    existing = (
        Claim.objects.filter(intercept_id=intercept.pk)
        .exclude(status=Status.WITHDRAWN)
        .values_list("pk", flat=True)
        .first()
    )
    return _page(
        model_admin,
        request,
        "admin/claims/claim/file.html",
        title=_("Record a claim for the merchant") if offline else _("File a claim"),
        form=form,
        offline=offline,
        intercept=intercept,
        parcel=parcel,
        courier=parcel.courier,
        lines=list(parcel.lines.all()),
        goods_value_fen=value_fen,
        ceiling_fen=ceiling_fen,
        refusal=refusal,
        existing_url=_change_url(Claim(pk=existing)) if existing else "",
        intercept_url=reverse("admin:intercepts_interceptrequest_change", args=[intercept.pk]),
    )


def _find_view(model_admin, request):
    """Which intercepted parcel to claim on, by its whole waybill or order number."""
    form = claim_forms.FindInterceptForm(request.GET if "number" in request.GET else None)
    found: list[InterceptRequest] = []
    if form.is_bound and form.is_valid():
        shop_ids = _filing_shop_ids(request.user)
        parcel_ids = intercept_selectors.parcel_ids_for_number(
            form.cleaned_data["number"], shop_ids=shop_ids
        )
        rows = InterceptRequest.objects.filter(
            parcel_id__in=parcel_ids, status__in=InterceptRequest.CAUGHT
        ).select_related("parcel__courier", "parcel__order")
        if shop_ids is not None:
            rows = rows.filter(shop_id__in=shop_ids)
        found = list(rows.order_by("-id")[:20])
        if len(found) == 1:
            add = reverse("admin:claims_claim_add")
            return redirect(f"{add}?{urlencode({'intercept': found[0].pk})}")
        if not found:
            form.add_error(
                "number",
                _("No parcel with this number was intercepted successfully in your shops."),
            )
    add = reverse("admin:claims_claim_add")
    return _page(
        model_admin,
        request,
        "admin/claims/claim/find.html",
        title=_("File a claim"),
        form=form,
        found=[(i, f"{add}?{urlencode({'intercept': i.pk})}") for i in found],
    )
