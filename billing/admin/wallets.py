"""Billing's workbench pages: wallets with their entries and holds, top-ups, adjustments, fee
rules and invoices.

Each is scoped to the user's shops by ``shops.scoped_admin.ShopScopedAdmin``. Every button
calls a billing service and reports its refusal in Chinese.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.decorators import display

from billing import selectors, services
from billing.forms import (
    AdjustmentForm,
    InvoiceDecisionForm,
    InvoiceRequestForm,
    PinResetForm,
    PinSetForm,
    TopUpForm,
)
from billing.models import (
    Adjustment,
    AdjustmentEvent,
    FeeRule,
    Hold,
    HoldEvent,
    InvoiceEvent,
    InvoiceLine,
    InvoiceRequest,
    LedgerEntry,
    PaymentPassword,
    TopUp,
    TopUpEvent,
    Wallet,
)
from billing.money import YuanFormField, format_fen
from billing.references import describe, find
from billing.services import BillingError
from billing.statements import statement_filename, statement_pdf
from billing.validators import normalise_reference
from shops import signin
from shops.access import access_for
from shops.scoped_admin import (
    MERCHANT_ALL,
    MERCHANT_WRITE,
    NOBODY,
    OWNER,
    PLATFORM_ALL,
    PLATFORM_FINANCE,
    LazyChangeList,
    ScopedTabularInline,
    ShopColumnForPlatformMixin,
    ShopScopedAdmin,
    StatusHistoryInline,
    StrictLookupsMixin,
    is_platform_staff,
)

FINANCE = frozenset({PLATFORM_FINANCE})
READ_ONLY = {"view": MERCHANT_ALL | PLATFORM_ALL, "add": NOBODY, "change": NOBODY, "delete": NOBODY}


def _is_finance(request) -> bool:
    access = access_for(request.user)
    return request.user.is_active and (access.is_superuser or PLATFORM_FINANCE in access.roles())


def _is_owner(request, shop_id: int) -> bool:
    return request.user.is_active and OWNER in access_for(request.user).roles(shop_id)


def _can_request_invoice(request, shop_id: int) -> bool:
    return request.user.is_active and bool(access_for(request.user).roles(shop_id) & MERCHANT_WRITE)


def _yuan(amount_fen: int | None) -> str:
    return format_fen(amount_fen) if amount_fen is not None else "-"


def _without_reference_for_merchants(request, names) -> tuple:
    """Columns or fields without the fee's reference (intercept:42) for merchants, who know the
    order and waybill shown beside it; platform staff keep it."""
    if access_for(request.user).is_platform:
        return tuple(names)
    return tuple(name for name in names if name != "reference")


def _signed_yuan(entry: LedgerEntry) -> str:
    sign = "+" if entry.side == LedgerEntry.Side.CREDIT else "−"
    return f"{sign}{format_fen(entry.amount_fen)}"


class WalletFilter(admin.SimpleListFilter):
    """Entries or holds of one wallet (the wallet page links here); offers no choices itself,
    and the list's own scoping decides whether the wallet is visible at all."""

    title = _("wallet")
    parameter_name = "wallet"

    def lookups(self, request, model_admin):
        return ()

    def has_output(self):
        return False

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(wallet_id=int(value))
        return queryset


# --- Wallets ---------------------------------------------------------------------------------


class WalletAddForm(forms.ModelForm):
    class Meta:
        model = Wallet
        fields = ("shop",)


@admin.register(Wallet)
class WalletAdmin(ShopScopedAdmin):
    form = WalletAddForm
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        # The shop owner or platform finance opens a wallet; nobody edits one: money moves
        # only through the top-up, adjustment and fee services.
        "add": frozenset({OWNER, PLATFORM_FINANCE}),
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = ("shop", "available", "held", "opened_at")
    list_select_related = ("shop",)
    search_fields = ("shop__name", "shop__code")
    search_help_text = _("Shop name or shop code")
    ordering = ("-id",)
    change_form_before_template = "admin/billing/wallet/actions.html"
    readonly_fields = (
        "shop",
        "available",
        "held",
        "opened_by_name",
        "opened_at",
        "payment_password_state",
        "recent_movements",
        "recent_entries",
    )

    def get_queryset(self, request):
        return selectors.with_balances(super().get_queryset(request))

    # Names only: a readonly user field links to the user's admin page, which no merchant
    # may open.
    @display(description=Wallet._meta.get_field("opened_by").verbose_name)
    def opened_by_name(self, obj: Wallet) -> str:
        return obj.opened_by.get_username() if obj.opened_by_id else ""

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("shop",)
        # Merchants read one line per movement of their money; platform staff the ledger's
        # entries, both legs of each posting.
        hidden = "recent_movements" if is_platform_staff(request) else "recent_entries"
        return tuple(name for name in self.readonly_fields if name != hidden)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "shop":
            field.queryset = field.queryset.filter(wallet__isnull=True)
        return field

    def _may_open_one(self, request) -> bool:
        """Whether an "add" link leads anywhere: while a shop the user may open a wallet for
        has none yet. Asked by the list only: the sidebar and the index are built on every page,
        and a query more on each is not worth a button (the add page offers no choice then)."""
        if not self.has_add_permission(request):
            return False
        field = self.formfield_for_foreignkey(Wallet._meta.get_field("shop"), request)
        return field.queryset.exists()

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**(extra_context or {}), "has_add_permission": self._may_open_one(request)}
        )

    def save_checked(self, request, obj, form, change):
        wallet = services.wallet_open(actor=request.user, shop_id=obj.shop_id)
        obj.pk = wallet.pk
        obj._state.adding = False

    @display(description=_("available (yuan)"))
    def available(self, obj: Wallet) -> str:
        return _yuan(obj.available_fen)

    @display(description=_("held (yuan)"))
    def held(self, obj: Wallet) -> str:
        return _yuan(obj.held_fen)

    @display(description=_("payment password"))
    def payment_password_state(self, obj: Wallet) -> str:
        # Unfold asks a read-only field for its value several times per page.
        if not hasattr(obj, "_payment_password"):
            obj._payment_password = PaymentPassword.objects.filter(shop_id=obj.shop_id).first()
        password = obj._payment_password
        if password is None:
            return _("Not set")
        if password.locked_until and password.locked_until > timezone.now():
            return _("Locked until %(time)s") % {
                "time": date_format(timezone.localtime(password.locked_until), "H:i")
            }
        return _("Set")

    @display(description=_("latest movements"))
    def recent_movements(self, obj: Wallet) -> str:
        if not hasattr(obj, "_recent_movements"):
            obj._recent_movements = selectors.wallet_movements(wallet=obj, limit=20)[0]
        table = render_to_string(
            "admin/billing/wallet/movements_table.html",
            # The field's column is narrow: the fee lines' explanations are on the full page.
            {"movements": obj._recent_movements, "compact": True},
        )
        return format_html(
            '{}<p class="mt-2"><a class="text-primary-600" href="{}" id="all-movements">{}</a></p>',
            mark_safe(table),  # rendered by the template engine, which escaped every value
            reverse("admin:billing_wallet_movements", args=[obj.pk]),
            _("All movements of this wallet"),
        )

    @display(description=_("latest entries"))
    def recent_entries(self, obj: Wallet) -> str:
        if not hasattr(obj, "_recent_entries"):
            obj._recent_entries = list(selectors.wallet_recent_entries(wallet=obj, limit=20))
        entries = obj._recent_entries
        if not entries:
            return _("No entries yet.")
        header = format_html(
            "<tr>{}</tr>",
            format_html_join(
                "",
                '<th class="px-2 py-1 text-left font-semibold">{}</th>',
                (
                    (label,)
                    for label in (
                        _("time"),
                        _("kind"),
                        _("reference"),
                        _("account"),
                        _("amount (yuan)"),
                        _("balance after (yuan)"),
                        _("note"),
                    )
                ),
            ),
        )
        rows = format_html_join(
            "",
            '<tr class="border-t border-base-200 dark:border-base-800">'
            '<td class="px-2 py-1 whitespace-nowrap">{}</td><td class="px-2 py-1">{}</td>'
            '<td class="px-2 py-1 font-mono">{}</td><td class="px-2 py-1">{}</td>'
            '<td class="px-2 py-1 text-right font-mono">{}</td>'
            '<td class="px-2 py-1 text-right font-mono">{}</td><td class="px-2 py-1">{}</td></tr>',
            (
                (
                    date_format(timezone.localtime(e.created_at), "SHORT_DATETIME_FORMAT"),
                    e.transaction.get_kind_display(),
                    e.transaction.reference,
                    e.account.get_kind_display(),
                    _signed_yuan(e),
                    format_fen(e.balance_after_fen),
                    e.transaction.memo,
                )
                for e in entries
            ),
        )
        link = reverse("admin:billing_ledgerentry_changelist") + f"?wallet={obj.pk}"
        return format_html(
            '<table class="w-full text-sm" id="wallet-entries"><thead>{}</thead>'
            '<tbody>{}</tbody></table><p class="mt-2"><a class="text-primary-600" href="{}">{}'
            "</a></p>",
            header,
            rows,
            link,
            _("All entries of this wallet"),
        )

    # --- Buttons and their pages ---

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The buttons of the wallet the page already loaded.
        if obj is not None:
            context.update(self._wallet_buttons(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _wallet_buttons(self, request, wallet: Wallet) -> dict:
        finance = _is_finance(request)
        buttons = {
            "can_top_up": finance,
            "can_set_pin": _is_owner(request, wallet.shop_id),
            "can_request_invoice": _can_request_invoice(request, wallet.shop_id),
        }
        if self.admin_site.get_model_admin(TopUp).has_view_permission(request):
            buttons["top_ups_url"] = (
                reverse("admin:billing_topup_changelist") + f"?wallet={wallet.pk}"
            )
        if finance:
            buttons["pending_top_ups"] = (
                TopUp.objects.filter(wallet=wallet, status=TopUp.Status.PENDING)
                .select_related("requested_by")
                .order_by("-id")[:10]
            )
        return buttons

    def get_urls(self):
        def view(name, func):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(func),
                name=f"billing_wallet_{name.replace('-', '_')}",
            )

        return [
            view("top-up", self.top_up_view),
            view("adjust", self.adjust_view),
            view("payment-password", self.payment_password_view),
            view("invoice", self.request_invoice_view),
            view("movements", self.movements_view),
            *super().get_urls(),
        ]

    def _form_page(self, request, wallet, form, *, title, intro, submit, summary=""):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": wallet,
            "title": title,
            "subtitle": str(wallet),
            "intro": intro,
            "form": form,
            "submit_label": submit,
            "back_url": reverse("admin:billing_wallet_change", args=[wallet.pk]),
            "balances": selectors.wallet_balances(shop_id=wallet.shop_id),
            "summary": summary,
        }
        return TemplateResponse(request, "admin/billing/form_page.html", context)

    def movements_view(self, request, object_id):
        """Every movement of the wallet's money, one line each, newest first, a page at a
        time (keyed on the last line shown: no count, no offset)."""
        wallet = self.get_object(request, unquote(object_id))  # 404 outside the user's shops
        if not self.has_view_permission(request, wallet):
            raise PermissionDenied
        before = request.GET.get("before", "")
        before_id = int(before) if before.isascii() and before.isdigit() else None
        movements, more = selectors.wallet_movements(
            wallet=wallet, before_id=before_id, limit=self.MOVEMENTS_PER_PAGE
        )
        here = reverse("admin:billing_wallet_movements", args=[wallet.pk])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": wallet,
            "title": _("Wallet movements"),
            "subtitle": str(wallet),
            "movements": movements,
            "balances": selectors.wallet_balances(shop_id=wallet.shop_id),
            "older_url": f"{here}?before={movements[-1].id}" if more else "",
            "newer_url": here if before_id is not None else "",
            "back_url": reverse("admin:billing_wallet_change", args=[wallet.pk]),
        }
        return TemplateResponse(request, "admin/billing/wallet/movements.html", context)

    MOVEMENTS_PER_PAGE = 50

    def _finance_wallet(self, request, object_id) -> Wallet:
        wallet = self.get_object(request, unquote(object_id))  # 404 outside the user's shops
        if not _is_finance(request):
            raise PermissionDenied
        return wallet

    def top_up_view(self, request, object_id):
        wallet = self._finance_wallet(request, object_id)
        form = TopUpForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                top_up = services.top_up_request(
                    actor=request.user,
                    wallet=wallet,
                    amount_fen=form.cleaned_data["amount_fen"],
                    external_reference=form.cleaned_data["external_reference"],
                    note=form.cleaned_data["note"],
                )
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                yuan = format_fen(top_up.amount_fen)
                if top_up.status == TopUp.Status.PENDING:
                    self.message_user(
                        request,
                        _("The top-up of %(yuan)s yuan waits for another finance user's approval.")
                        % {"yuan": yuan},
                        level=messages.WARNING,
                    )
                else:
                    self.message_user(request, _("Topped up %(yuan)s yuan.") % {"yuan": yuan})
                return redirect("admin:billing_wallet_change", wallet.pk)
        elif request.method == "POST" and "amount_fen" in form.errors:
            typed = form.data.get("amount_fen", "").strip()
            if typed:
                # An amount typed but refused is kept among the top-ups, as finance saw it.
                services.top_up_refuse(
                    actor=request.user,
                    wallet=wallet,
                    reason=" ".join(form.errors["amount_fen"]),
                    amount_typed=typed,
                    external_reference=form.data.get("external_reference", ""),
                    note=form.data.get("note", ""),
                )
        return self._form_page(
            request,
            wallet,
            form,
            title=_("Top up the wallet"),
            intro=_("Credit money received from outside to the shop's available balance."),
            submit=_("Top up"),
        )

    def adjust_view(self, request, object_id):
        wallet = self._finance_wallet(request, object_id)
        form = AdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                adjustment = services.wallet_adjust(
                    actor=request.user,
                    wallet=wallet,
                    amount_fen=form.cleaned_data["amount_fen"],
                    reason=form.cleaned_data["reason"],
                )
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                if adjustment.status == Adjustment.Status.PENDING:
                    self.message_user(
                        request,
                        _("The adjustment waits for another finance user's approval."),
                        level=messages.WARNING,
                    )
                else:
                    self.message_user(request, _("The adjustment was applied."))
                return redirect("admin:billing_wallet_change", wallet.pk)
        return self._form_page(
            request,
            wallet,
            form,
            title=_("Adjust the wallet"),
            intro=_("A correction with a reason; it is kept in the ledger for good."),
            submit=_("Adjust"),
        )

    def payment_password_view(self, request, object_id):
        wallet = self.get_object(request, unquote(object_id))
        if not _is_owner(request, wallet.shop_id):
            raise PermissionDenied
        has_pin = PaymentPassword.objects.filter(shop_id=wallet.shop_id).exists()
        form_class = PinResetForm if has_pin else PinSetForm
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if has_pin:
                    # Through the sign-in backends: a wrong guess counts toward the sign-in
                    # lockout, and a locked user is refused (the lockout page) whatever the
                    # password.
                    if not signin.login_password_confirm(
                        request=request, password=form.cleaned_data["login_password"]
                    ):
                        raise BillingError(_("Your login password is not correct."))
                    services.payment_password_reset(
                        actor=request.user,
                        shop_id=wallet.shop_id,
                        login_password=form.cleaned_data["login_password"],
                        new_pin=form.cleaned_data["pin"],
                    )
                else:
                    services.payment_password_set(
                        actor=request.user, shop_id=wallet.shop_id, pin=form.cleaned_data["pin"]
                    )
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("The payment password was saved."))
                return redirect("admin:billing_wallet_change", wallet.pk)
        return self._form_page(
            request,
            wallet,
            form,
            title=_("Reset the payment password") if has_pin else _("Set the payment password"),
            intro=_(
                "The payment password confirms intercept fees paid from the wallet in the "
                "workbench. Five wrong tries lock it for 30 minutes."
            ),
            submit=_("Save"),
        )

    def request_invoice_view(self, request, object_id):
        wallet = self.get_object(request, unquote(object_id))
        if not _can_request_invoice(request, wallet.shop_id):
            raise PermissionDenied
        form = InvoiceRequestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                invoice = services.invoice_request(
                    actor=request.user, wallet=wallet, **form.cleaned_data
                )
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    _("Invoice requested for %(yuan)s yuan of charged fees.")
                    % {"yuan": format_fen(invoice.amount_fen)},
                )
                return redirect("admin:billing_invoicerequest_change", invoice.pk)
        return self._form_page(
            request,
            wallet,
            form,
            title=_("Request an invoice"),
            intro=_(
                "The invoice covers the charged intercept fees of this wallet that are not on "
                "another invoice yet: all of them, or those of one courier or period. Finance "
                "reviews and issues it."
            ),
            submit=_("Request the invoice"),
            summary=self._invoiceable_summary(wallet),
        )

    @staticmethod
    def _invoiceable_summary(wallet: Wallet) -> str:
        count, total_fen = selectors.invoiceable_fees(wallet=wallet)
        if not count:
            return _("There are no charged fees to invoice.")
        overall = ngettext(
            "%(count)d charged fee is not on an invoice yet, %(yuan)s yuan in all: a request "
            "for all of them invoices %(yuan)s yuan; a courier or a period invoices the part "
            "that falls in it.",
            "%(count)d charged fees are not on an invoice yet, %(yuan)s yuan in all: a request "
            "for all of them invoices %(yuan)s yuan; a courier or a period invoices the part "
            "that falls in it.",
            count,
        ) % {"count": count, "yuan": format_fen(total_fen)}
        # What choosing one courier invoices, so nobody has to add it up.
        per_courier = _("; ").join(
            _("%(courier)s %(yuan)s yuan") % {"courier": name, "yuan": format_fen(fen)}
            for name, _count, fen in selectors.invoiceable_fees_by_courier(wallet=wallet)
        )
        return _("%(overall)s By courier: %(per_courier)s.") % {
            "overall": overall,
            "per_courier": per_courier,
        }


# --- Ledger entries and holds ----------------------------------------------------------------


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    """The ledger, both legs of every posting: platform staff's view of the money. Merchants
    read their wallet's movements instead, one line each (``WalletAdmin.movements_view``)."""

    shop_path = "wallet__shop"
    role_permissions = {"view": PLATFORM_ALL, "add": NOBODY, "change": NOBODY, "delete": NOBODY}
    list_display = (
        "created_at",
        "shop",
        "kind",
        "reference",
        "account_kind",
        "amount",
        "balance_after",
        "memo",
    )
    list_select_related = ("transaction", "account", "wallet__shop")
    list_filter = (WalletFilter, "transaction__kind")
    ordering = ("-id",)
    fields = (
        "created_at",
        "shop",
        "kind",
        "reference",
        "account_kind",
        "amount",
        "balance_after",
        "memo",
        "created_by",
    )
    readonly_fields = fields

    @display(description=_("shop"))
    def shop(self, obj: LedgerEntry) -> str:
        return str(obj.wallet.shop)

    @display(description=_("kind"))
    def kind(self, obj: LedgerEntry) -> str:
        return obj.transaction.get_kind_display()

    @display(description=_("reference"))
    def reference(self, obj: LedgerEntry) -> str:
        return obj.transaction.reference

    @display(description=_("account"))
    def account_kind(self, obj: LedgerEntry) -> str:
        return obj.account.get_kind_display()

    @display(description=_("amount (yuan)"))
    def amount(self, obj: LedgerEntry) -> str:
        return _signed_yuan(obj)

    @display(description=_("balance after (yuan)"))
    def balance_after(self, obj: LedgerEntry) -> str:
        return format_fen(obj.balance_after_fen)

    @display(description=_("note"))
    def memo(self, obj: LedgerEntry) -> str:
        return obj.transaction.memo

    @display(description=_("by"))
    def created_by(self, obj: LedgerEntry) -> str:
        return str(obj.transaction.created_by or "-")


class HoldEventInline(StatusHistoryInline):
    model = HoldEvent
    parent_shop_path = "wallet__shop"
    fields = (
        "created_at",
        "from_status",
        "to_status",
        "actor_name",
    )  # a hold's moves carry no note
    role_permissions = {"view": MERCHANT_ALL | PLATFORM_ALL}


@admin.register(Hold)
class HoldAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    shop_path = "wallet__shop"
    role_permissions = READ_ONLY
    list_display = (
        "reference",
        "order_no",
        "waybill_no",
        "shop",
        "courier",
        "amount",
        "status",
        "created_at",
        "updated_at",
    )
    list_select_related = ("wallet__shop", "courier")
    list_filter = ("status", WalletFilter)
    search_fields = ("reference",)
    search_help_text = _("A whole order or waybill number")
    ordering = ("-id",)
    fields = readonly_fields = list_display
    inlines = (HoldEventInline,)

    def load_changelist_extras(self, request, rows: list[Hold]) -> None:
        # The order and waybill behind each fee's reference, for the whole page at once.
        subjects = describe(row.reference for row in rows)
        for row in rows:
            row.subject = subjects.get(row.reference)

    def _subject(self, obj: Hold):
        if not hasattr(obj, "subject"):  # the detail page: one hold
            obj.subject = describe([obj.reference]).get(obj.reference)
        return obj.subject

    @display(description=_("order number"))
    def order_no(self, obj: Hold) -> str:
        subject = self._subject(obj)
        return subject.order_no if subject else "-"

    @display(description=_("waybill number"))
    def waybill_no(self, obj: Hold) -> str:
        subject = self._subject(obj)
        return subject.waybill_no if subject else "-"

    def get_list_display(self, request):
        return _without_reference_for_merchants(request, super().get_list_display(request))

    def get_fields(self, request, obj=None):
        return _without_reference_for_merchants(request, self.fields)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # An order or waybill number, or (platform staff) a whole reference.
        return queryset.filter(Q(reference=term) | Q(reference__in=find(term))), False

    @display(description=_("shop"))
    def shop(self, obj: Hold) -> str:
        return str(obj.wallet.shop)

    @display(description=_("amount (yuan)"))
    def amount(self, obj: Hold) -> str:
        return format_fen(obj.amount_fen)


# --- Decisions of a second finance user: top-ups and adjustments -----------------------------


class SecondApprovalMixin:
    """The change page of a record that waits for a second finance user (a large top-up or
    adjustment): approve and reject buttons with a note above it, posting to ``<id>/decide/``
    (named ``<app>_<model>_decide``), which calls the record's service. Its requester may
    reject (withdraw) it but not approve it; the services check that again."""

    change_form_before_template = "admin/billing/decide.html"
    # The services' keyword for the record, the services, and what the user is told.
    record_kwarg = ""
    approve_service = None
    reject_service = None
    approved_message = ""
    rejected_message = ""

    def _decide_url_name(self) -> str:
        opts = self.model._meta
        return f"{opts.app_label}_{opts.model_name}_decide"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name=self._decide_url_name(),
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = self.get_object(request, unquote(object_id))
        pending = record.status == self.model.Status.PENDING and _is_finance(request)
        extra_context = {
            **(extra_context or {}),
            "decide_url": reverse(f"admin:{self._decide_url_name()}", args=[record.pk]),
            "can_approve": pending and record.requested_by_id != request.user.pk,
            "can_reject": pending,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def decide_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        record = self.get_object(request, unquote(object_id))
        if not _is_finance(request):
            raise PermissionDenied
        decision = request.POST.get("decision")
        if decision not in ("approve", "reject"):
            return HttpResponseBadRequest()
        approve = decision == "approve"
        service = type(self).approve_service if approve else type(self).reject_service
        try:
            service(
                actor=request.user,
                note=request.POST.get("decision_note", ""),
                **{self.record_kwarg: record},
            )
        except BillingError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
        else:
            self.message_user(request, self.approved_message if approve else self.rejected_message)
        opts = self.model._meta
        return redirect(f"admin:{opts.app_label}_{opts.model_name}_change", record.pk)


class AdjustmentEventInline(StatusHistoryInline):
    model = AdjustmentEvent
    parent_shop_path = "wallet__shop"
    role_permissions = {"view": FINANCE}


@admin.register(Adjustment)
class AdjustmentAdmin(SecondApprovalMixin, ShopScopedAdmin):
    shop_path = "wallet__shop"
    role_permissions = {"view": FINANCE, "add": NOBODY, "change": NOBODY, "delete": NOBODY}
    list_display = (
        "created_at",
        "shop",
        "amount",
        "reason",
        "status",
        "requested_by",
        "decided_by",
    )
    list_select_related = ("wallet__shop", "requested_by", "decided_by")
    list_filter = ("status", WalletFilter)
    ordering = ("-id",)
    fields = (
        "shop",
        "amount",
        "reason",
        "status",
        "requested_by",
        "created_at",
        "decided_by",
        "decided_at",
    )
    readonly_fields = fields
    inlines = (AdjustmentEventInline,)

    record_kwarg = "adjustment"
    approve_service = staticmethod(services.adjustment_approve)
    reject_service = staticmethod(services.adjustment_reject)
    approved_message = _("The adjustment was approved and applied.")
    rejected_message = _("The adjustment was rejected.")

    @display(description=_("shop"))
    def shop(self, obj: Adjustment) -> str:
        return str(obj.wallet.shop)

    @display(description=_("amount (yuan)"))
    def amount(self, obj: Adjustment) -> str:
        return format_fen(obj.amount_fen)


class TopUpEventInline(StatusHistoryInline):
    model = TopUpEvent
    parent_shop_path = "wallet__shop"
    role_permissions = {"view": PLATFORM_ALL}


@admin.register(TopUp)
class TopUpAdmin(SecondApprovalMixin, ShopScopedAdmin):
    """Every top-up finance filed, with its status: applied, awaiting a second finance user,
    rejected, or refused at input with the reason finance was shown. Platform staff read them;
    merchants see their money arrive in the ledger entries instead."""

    shop_path = "wallet__shop"
    role_permissions = {"view": PLATFORM_ALL, "add": NOBODY, "change": NOBODY, "delete": NOBODY}
    list_display = (
        "created_at",
        "shop",
        "amount",
        "external_reference",
        "status",
        "reason",
        "requested_by",
        "decided_by",
    )
    list_select_related = ("wallet__shop", "requested_by", "decided_by")
    list_filter = ("status", WalletFilter)
    search_fields = ("external_reference",)
    search_help_text = _("A whole external reference (bank serial number)")
    ordering = ("-id",)
    fields = (
        "shop",
        "amount",
        "external_reference",
        "note",
        "status",
        "reason",
        "requested_by",
        "created_at",
        "decided_by",
        "decided_at",
    )
    readonly_fields = fields
    inlines = (TopUpEventInline,)

    record_kwarg = "top_up"
    approve_service = staticmethod(services.top_up_approve)
    reject_service = staticmethod(services.top_up_reject)
    approved_message = _("The top-up was approved and credited.")
    rejected_message = _("The top-up was rejected.")

    def get_search_results(self, request, queryset, search_term):
        term = normalise_reference(search_term)
        if not term:
            return queryset, False
        return queryset.filter(external_reference=term), False

    @display(description=_("shop"))
    def shop(self, obj: TopUp) -> str:
        return str(obj.wallet.shop)

    @display(description=_("amount (yuan)"))
    def amount(self, obj: TopUp) -> str:
        # A refused amount that was not money is shown as it was typed.
        return format_fen(obj.amount_fen) if obj.amount_fen is not None else obj.amount_typed


# --- Fee rules (platform) --------------------------------------------------------------------


class FeeRuleForm(forms.ModelForm):
    amount_fen = YuanFormField(label=_("Fee (yuan)"), min_fen=0, max_fen=100_000)

    class Meta:
        model = FeeRule
        fields = ("courier", "action", "valid_from", "amount_fen")

    def clean(self):
        cleaned = super().clean()
        valid_from = cleaned.get("valid_from")
        if valid_from and valid_from < timezone.now() - services.FEE_RULE_START_SLACK:
            self.add_error("valid_from", _("A new fee rule cannot start in the past."))
        return cleaned


@admin.register(FeeRule)
class FeeRuleAdmin(StrictLookupsMixin, ModelAdmin):
    """Platform staff read the fees; finance adds rules and corrects those not yet in force."""

    form = FeeRuleForm
    list_display = ("courier", "action", "fee", "valid_from", "state", "created_by")
    list_select_related = ("courier", "created_by")
    list_filter = ("courier", "action")
    ordering = ("courier__sort_order", "action", "-valid_from")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_changelist(self, request, **kwargs):
        return LazyChangeList

    def _platform(self, request) -> bool:
        return is_platform_staff(request)

    def has_module_permission(self, request):
        return self._platform(request)

    def has_view_permission(self, request, obj=None):
        return self._platform(request)

    def has_add_permission(self, request):
        return request.user.is_staff and _is_finance(request)

    def has_change_permission(self, request, obj=None):
        if not (request.user.is_staff and _is_finance(request)):
            return False
        return obj is None or obj.valid_from > timezone.now()

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description=_("fee (yuan)"))
    def fee(self, obj: FeeRule) -> str:
        return format_fen(obj.amount_fen)

    def get_queryset(self, request):
        # Superseded: a later rule for the same courier and action has started since.
        later = FeeRule.objects.filter(
            courier_id=OuterRef("courier_id"),
            action=OuterRef("action"),
            valid_from__gt=OuterRef("valid_from"),
            valid_from__lte=timezone.now(),
        )
        return super().get_queryset(request).annotate(superseded=Exists(later))

    @display(description=_("state"))
    def state(self, obj: FeeRule) -> str:
        if obj.valid_from > timezone.now():
            return _("Scheduled")
        return _("Superseded") if obj.superseded else _("In force")

    def save_model(self, request, obj, form, change):
        services.fee_rule_save(actor=request.user, rule=obj)


# --- Invoices --------------------------------------------------------------------------------


class NamedFeesFormSet(ScopedTabularInline.formset):
    """Loads the order and waybill behind every line's reference once for the formset, not
    once per line."""

    def get_queryset(self):
        lines = super().get_queryset()
        if not getattr(self, "_subjects_loaded", False):
            self._subjects_loaded = True
            rows = list(lines)  # fills the queryset's cache, which the forms are built from
            subjects = describe(row.reference for row in rows)
            for row in rows:
                row.subject = subjects.get(row.reference)
        return lines


class InvoiceLineInline(ScopedTabularInline):
    model = InvoiceLine
    formset = NamedFeesFormSet
    parent_shop_path = "wallet__shop"
    fields = ("order_no", "waybill_no", "courier_name", "amount", "charged_at", "reference")
    readonly_fields = fields
    role_permissions = {"view": MERCHANT_ALL | PLATFORM_ALL}

    def get_fields(self, request, obj=None):
        return _without_reference_for_merchants(request, self.fields)

    @display(description=_("order number"))
    def order_no(self, obj: InvoiceLine) -> str:
        subject = getattr(obj, "subject", None)
        return subject.order_no if subject else "-"

    @display(description=_("waybill number"))
    def waybill_no(self, obj: InvoiceLine) -> str:
        subject = getattr(obj, "subject", None)
        return subject.waybill_no if subject else "-"

    @display(description=_("amount (yuan)"))
    def amount(self, obj: InvoiceLine) -> str:
        return format_fen(obj.amount_fen)


class InvoiceEventInline(StatusHistoryInline):
    model = InvoiceEvent
    parent_shop_path = "wallet__shop"
    role_permissions = {"view": MERCHANT_ALL | PLATFORM_ALL}


@admin.register(InvoiceRequest)
class InvoiceRequestAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    shop_path = "wallet__shop"
    role_permissions = READ_ONLY
    list_display = (
        "created_at",
        "shop",
        "invoice_type",
        "title",
        "amount",
        "status",
        "invoice_number",
    )
    list_select_related = ("wallet__shop",)
    list_filter = ("status", "invoice_type", WalletFilter)
    ordering = ("-id",)
    fields = (
        "shop",
        "invoice_type",
        "title",
        "taxpayer_id",
        "address_phone",
        "bank_account",
        "amount",
        "status",
        "invoice_number",
        "requested_by_name",
        "created_at",
    )
    readonly_fields = fields
    inlines = (InvoiceLineInline, InvoiceEventInline)

    @display(description=InvoiceRequest._meta.get_field("requested_by").verbose_name)
    def requested_by_name(self, obj: InvoiceRequest) -> str:
        return obj.requested_by.get_username() if obj.requested_by_id else ""

    change_form_before_template = "admin/billing/invoicerequest/actions.html"

    DECISIONS = {
        InvoiceRequest.Status.REQUESTED: (
            (InvoiceDecisionForm.ISSUE, _("Issue")),
            (InvoiceDecisionForm.REJECT, _("Reject")),
        ),
        InvoiceRequest.Status.ISSUED: ((InvoiceDecisionForm.REVERSE, _("Reverse (red-letter)")),),
    }

    @display(description=_("shop"))
    def shop(self, obj: InvoiceRequest) -> str:
        return str(obj.wallet.shop)

    @display(description=_("amount (yuan)"))
    def amount(self, obj: InvoiceRequest) -> str:
        return format_fen(obj.amount_fen)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "can_decide": _is_finance(request) and invoice.status in self.DECISIONS,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="billing_invoicerequest_decide",
            ),
            path(
                "<path:object_id>/statement/",
                self.admin_site.admin_view(self.statement_view),
                name="billing_invoicerequest_statement",
            ),
            *super().get_urls(),
        ]

    def statement_view(self, request, object_id):
        """The request's fee statement as a PDF, for whoever may read the request."""
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None or not self.has_view_permission(request, invoice):
            raise Http404
        response = HttpResponse(statement_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = content_disposition_header(
            False, statement_filename(invoice)
        )
        return response

    def decide_view(self, request, object_id):
        invoice = self.get_object(request, unquote(object_id))
        if not _is_finance(request):
            raise PermissionDenied
        choices = self.DECISIONS.get(invoice.status, ())
        form = InvoiceDecisionForm(request.POST or None, choices=choices)
        if request.method == "POST" and form.is_valid():
            decision, data = form.cleaned_data["decision"], form.cleaned_data
            try:
                if decision == InvoiceDecisionForm.ISSUE:
                    services.invoice_issue(
                        actor=request.user, invoice=invoice, invoice_number=data["invoice_number"]
                    )
                elif decision == InvoiceDecisionForm.REJECT:
                    services.invoice_reject(
                        actor=request.user, invoice=invoice, reason=data["note"]
                    )
                else:
                    services.invoice_reverse(
                        actor=request.user, invoice=invoice, reason=data["note"]
                    )
            except BillingError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("The invoice request was updated."))
                return redirect("admin:billing_invoicerequest_change", invoice.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": invoice,
            "title": _("Review the invoice request"),
            "intro": _("Issue it with the number of the invoice made, or say why it is refused."),
            "form": form,
            "submit_label": _("Save"),
            "back_url": reverse("admin:billing_invoicerequest_change", args=[invoice.pk]),
            "back_label": _("Back to the invoice request"),
        }
        return TemplateResponse(request, "admin/billing/form_page.html", context)
