"""The after-sales workbench: shops, orders, parcels and after-sales in the admin."""

import csv
import io
from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.decorators import display
from unfold.utils import parse_date_str
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from billing.money import YuanFormField, format_fen
from couriers.models import Courier
from couriers.stages import ParcelStage, stage_label
from intercepts import eligibility, polling, selectors, services, workbench
from intercepts.display import escape as fast_escape
from intercepts.display import short_age, short_datetime
from intercepts.models import (
    AfterSale,
    AfterSaleEvent,
    CourierPush,
    GoodsCategory,
    InterceptEvent,
    InterceptPolicy,
    InterceptRequest,
    Order,
    OrderLine,
    Parcel,
    ParcelCorrection,
    TrackingEvent,
)
from shops.access import access_for, visible_shop_ids
from shops.models import Shop
from shops.scoped_admin import (
    MERCHANT_ALL,
    MERCHANT_WRITE,
    NOBODY,
    PLATFORM_ALL,
    LazyChangeList,
    PlatformReadOnlyMixin,
    PlatformShopFilter,
    ScopedTabularInline,
    ShopColumnForPlatformMixin,
    ShopScopedAdmin,
    StatusHistoryInline,
    StrictLookupsMixin,
    is_platform_staff,
    object_view_path,
)


class ExactNumberSearchMixin:
    """Search by a whole order number or waybill number, both indexed exact matches.

    A merchant pastes a full number; a substring scan over millions of rows would be slow and
    would need DISTINCT across parcels.
    """

    search_order_field = "order_id"

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        ids = selectors.order_ids_for_number(search_term, shop_ids=visible_shop_ids(request.user))
        return queryset.filter(**{f"{self.search_order_field}__in": ids}), False


class CourierFilter(admin.SimpleListFilter):
    title = _("courier")
    parameter_name = "courier"

    def lookups(self, request, model_admin):
        return selectors.courier_choices()

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(Parcel.objects.filter(order_id=OuterRef("order_id"), courier_id=self.value()))
        )


class StageFilter(admin.SimpleListFilter):
    title = _("parcel stage")
    parameter_name = "stage"

    def lookups(self, request, model_admin):
        return ParcelStage.choices

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(
            Exists(Parcel.objects.filter(order_id=OuterRef("order_id"), stage=self.value()))
        )


def stage_badge(courier_name: str, waybill_no: str, stage: str) -> str:
    # Called for every parcel of every row: plain escaping rather than format_html.
    return (
        f'<div class="whitespace-nowrap">{fast_escape(courier_name)} '
        f'<span class="font-mono">{fast_escape(waybill_no)}</span> · '
        f"{fast_escape(str(stage_label(stage)))}</div>"
    )


def parcel_badge(parcel: Parcel) -> str:
    return stage_badge(parcel.courier.display_name, parcel.waybill_no, parcel.stage)


# --- Orders ----------------------------------------------------------------------------------


class OrderLineInline(ScopedTabularInline):
    model = OrderLine
    fields = ("goods_name", "category", "unit_price", "quantity")
    readonly_fields = fields

    @display(description=_("unit price (yuan)"))
    def unit_price(self, obj: OrderLine) -> str:
        return format_fen(obj.unit_price_fen)


class OrderParcelInline(ScopedTabularInline):
    model = Parcel
    fields = ("courier", "waybill_no", "stage", "declared_value", "shipped_at")
    readonly_fields = fields
    show_change_link = True

    @display(description=_("declared value (yuan)"))
    def declared_value(self, obj: Parcel) -> str:
        return format_fen(obj.declared_value_fen)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("courier")


@admin.register(Order)
class OrderAdmin(ExactNumberSearchMixin, ShopScopedAdmin):
    search_order_field = "pk"
    list_display = ("order_no", "shop", "buyer", "status", "total", "paid_at")
    list_select_related = ("shop",)
    list_filter = ("status", PlatformShopFilter)
    search_fields = ("order_no",)
    search_help_text = _("A whole order number or waybill number")
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "shop",
        "order_no",
        "status",
        "buyer_name",
        "buyer",
        "total",
        "paid_at",
        "created_at",
    )
    fields = readonly_fields
    inlines = (OrderLineInline, OrderParcelInline)

    @display(description=_("buyer"))
    def buyer(self, obj: Order) -> str:
        return f"{obj.buyer_name} {obj.buyer_phone_masked}"

    @display(description=_("order total (yuan)"), ordering="total_fen")
    def total(self, obj: Order) -> str:
        return format_fen(obj.total_fen)


# --- Parcels ---------------------------------------------------------------------------------


class TrackingEventInline(ScopedTabularInline):
    model = TrackingEvent
    fields = ("occurred_at", "stage", "description", "location", "raw_code", "source")
    readonly_fields = fields
    ordering = ("-occurred_at", "-id")


class ParcelCorrectionInline(ScopedTabularInline):
    model = ParcelCorrection
    fields = ("created_at", "old_courier", "old_waybill_no", "new_courier", "new_waybill_no")
    readonly_fields = (*fields, "reason", "actor")
    fields = (*fields, "reason", "actor")
    verbose_name_plural = _("waybill corrections")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("old_courier", "new_courier", "actor")


class ParcelAdminForm(forms.ModelForm):
    """A new parcel: its order, courier, waybill and receiver. It carries the order's lines not
    yet in another parcel, and their value is its declared value; nothing of it changes once
    shipped."""

    class Meta:
        model = Parcel
        fields = (
            "order",
            "courier",
            "waybill_no",
            "receiver_name",
            "receiver_phone",
            "receiver_address",
        )

    def clean_waybill_no(self):
        return services.normalise_waybill(self.cleaned_data["waybill_no"])

    def clean_order(self):
        order = self.cleaned_data["order"]
        if order is not None and not services.order_has_goods_to_ship(order):
            raise forms.ValidationError(
                _("Every item of this order is already in a recorded parcel.")
            )
        return order


class WaybillCorrectionForm(forms.Form):
    courier = forms.ModelChoiceField(label=_("courier"), queryset=Courier.objects.none())
    waybill_no = forms.CharField(label=_("waybill number"), max_length=32)
    reason = forms.CharField(
        label=_("what was wrong"),
        max_length=255,
        help_text=_("Kept with the parcel's history, with your name."),
    )

    def __init__(self, *args, parcel: Parcel, **kwargs):
        super().__init__(*args, initial={"courier": parcel.courier_id}, **kwargs)
        self.fields["courier"].queryset = Courier.objects.filter(is_active=True)


@admin.register(Parcel)
class ParcelAdmin(ShopScopedAdmin):
    form = ParcelAdminForm
    change_form_before_template = "admin/intercepts/parcel/refresh_tracking.html"
    # Parcels are recorded when shipped, then fixed: a mistyped waybill is corrected on its own
    # page, with a record; the rest changes only through tracking.
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": MERCHANT_WRITE,
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "waybill_no",
        "courier",
        "stage",
        "order",
        "shop",
        "declared_value",
        "shipped_at",
    )
    list_select_related = ("courier", "order", "shop")
    list_filter = ("stage", "courier", PlatformShopFilter)
    search_fields = ("waybill_no",)
    search_help_text = _("A whole waybill number or order number")
    ordering = ("-created_at", "-id")
    autocomplete_fields = ("order",)
    inlines = (TrackingEventInline, ParcelCorrectionInline)
    fieldsets = (
        (None, {"fields": ("order", "courier", "waybill_no", "lines", "declared_value")}),
        (_("Receiver"), {"fields": ("receiver_name", "receiver_phone", "receiver_address")}),
        (
            _("Tracking"),
            {"fields": ("stage", "shipped_at", "picked_up_at", "signed_at", "next_poll_at")},
        ),
    )
    add_fieldsets = (
        (None, {"fields": ("order", "courier", "waybill_no")}),
        (_("Receiver"), {"fields": ("receiver_name", "receiver_phone", "receiver_address")}),
    )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    def get_urls(self):
        refresh = path(
            "<path:object_id>/refresh/",
            self.admin_site.admin_view(self.refresh_tracking_view),
            name="intercepts_parcel_refresh",
        )
        return [
            refresh,
            object_view_path(self, ParcelAdmin.correct_waybill_view, "correct-waybill"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            access = access_for(request.user)
            context["may_refresh"] = access.is_platform or access.acts_for(obj.shop_id)
            context["may_correct"] = services.may_correct_waybill(request.user, obj.shop_id)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def refresh_tracking_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        parcel = self.get_object(request, unquote(object_id))
        access = access_for(request.user)
        # Asking the courier is work done for the shop: a viewer only looks.
        if not (access.is_platform or access.acts_for(parcel.shop_id)):
            raise PermissionDenied
        if polling.parcel_request_refresh(parcel=parcel):
            self.message_user(request, _("Asked the courier for the latest tracking."))
        else:
            self.message_user(
                request,
                _(
                    "Nothing to ask: the parcel's journey has ended or its courier has no "
                    "gateway account."
                ),
                level=messages.WARNING,
            )
        return redirect("admin:intercepts_parcel_change", parcel.pk)

    def correct_waybill_view(self, request, object_id):
        parcel = self.get_object(request, object_id)  # another shop's: 404
        if not services.may_correct_waybill(request.user, parcel.shop_id):
            raise PermissionDenied
        back_url = reverse("admin:intercepts_parcel_change", args=[parcel.pk])
        form = WaybillCorrectionForm(request.POST or None, parcel=parcel)
        if request.method == "POST" and form.is_valid():
            try:
                services.parcel_correct_waybill(
                    actor=request.user,
                    parcel=parcel,
                    courier=form.cleaned_data["courier"],
                    waybill_no=form.cleaned_data["waybill_no"],
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            except services.DomainError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("The waybill is corrected; tracking starts afresh."))
                return redirect(back_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": parcel,
            "title": _("Correct the waybill of %(parcel)s") % {"parcel": parcel},
            "form": form,
            "intro": _(
                "Only for a waybill typed wrongly when the parcel was recorded. The correction "
                "is kept with the parcel; the tracking read under the wrong number is dropped. "
                "Not possible once an intercept has been asked for."
            ),
            "submit_label": _("Correct the waybill"),
            "back_url": back_url,
            "back_label": _("Back to the parcel"),
        }
        return TemplateResponse(request, "admin/billing/form_page.html", context)

    @display(description=_("declared value (yuan)"), ordering="declared_value_fen")
    def declared_value(self, obj: Parcel) -> str:
        return format_fen(obj.declared_value_fen)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "courier":
            kwargs["queryset"] = Courier.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        ids = selectors.parcel_ids_for_number(search_term, shop_ids=visible_shop_ids(request.user))
        return queryset.filter(pk__in=ids), False

    def save_model(self, request, obj, form, change):
        # The parcel belongs to its order's shop: the permission check needs it before saving.
        obj.shop_id = obj.order.shop_id
        super().save_model(request, obj, form, change)

    def save_checked(self, request, obj, form, change):
        if change:  # no form changes a shipped parcel; the permissions say so too
            raise PermissionDenied
        try:
            created = services.parcel_create(
                actor=request.user,
                order=obj.order,
                courier=obj.courier,
                waybill_no=obj.waybill_no,
                receiver_name=obj.receiver_name,
                receiver_phone=obj.receiver_phone,
                receiver_address=obj.receiver_address,
            )
        except ValidationError as exc:
            # Recorded by someone else between the form's check and the save.
            raise PermissionDenied(" ".join(exc.messages)) from exc
        obj.pk = created.pk

    def save_related(self, request, form, formsets, change):
        pass  # the service saved the parcel's lines; the inlines are read-only


def _add_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError on the form: on its fields where it names them."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


# --- After-sales -----------------------------------------------------------------------------


class AfterSaleEventInline(StatusHistoryInline):
    model = AfterSaleEvent


class AfterSaleInterceptInline(ScopedTabularInline):
    """The after-sale's intercepts, each linking to its record and history."""

    model = InterceptRequest
    fk_name = "after_sale"
    fields = ("created_at", "parcel", "action", "channel", "status", "fee", "failure_reason")
    readonly_fields = fields
    show_change_link = True
    hide_title = False  # the row's title carries the link to the record
    verbose_name_plural = _("intercepts")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("parcel__courier")

    @display(description=_("fee (yuan)"))
    def fee(self, obj: InterceptRequest) -> str:
        return format_fen(obj.fee_fen)


@admin.register(AfterSale)
class AfterSaleAdmin(ShopColumnForPlatformMixin, ExactNumberSearchMixin, ShopScopedAdmin):
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": NOBODY,
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "order_no",
        "shop",
        "buyer",
        "parcels",
        "kind",
        "status",
        "arbitration",
        "refund_amount",
        "age",
    )
    list_select_related = ("order", "shop")
    list_filter = ("status", "kind", CourierFilter, StageFilter, PlatformShopFilter)
    search_fields = ("order__order_no",)
    search_help_text = _("A whole order number or waybill number")
    ordering = ("-created_at", "-id")
    sortable_by = ()
    list_display_links = ("order_no",)
    readonly_fields = (
        "shop",
        "order",
        "buyer",
        "parcels",
        "kind",
        "status",
        "arbitration",
        "refund_amount",
        "reason",
        "created_at",
    )
    fields = readonly_fields
    inlines = (AfterSaleInterceptInline, AfterSaleEventInline)
    change_form_before_template = "admin/intercepts/aftersale/actions.html"

    def get_urls(self):
        return [
            object_view_path(self, workbench.intercept_view, "intercept"),
            object_view_path(self, workbench.approve_refund_view, "approve-refund"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The object the page already loaded: the intercept button and the refund prompt.
        if obj is not None:
            context.update(workbench.after_sale_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_list_select_related(self, request):
        # Merchants see no shop column: no shop to join.
        if access_for(request.user).sees_all_shops:
            return self.list_select_related
        return ("order",)

    def load_changelist_extras(self, request, rows: list[AfterSale]) -> None:
        # Each row's parcels as the column shows them, in one query for the page: only the
        # values a badge needs, not a parcel and a courier object per badge.
        badges: dict[int, list[str]] = {row.order_id: [] for row in rows}
        parcels = selectors.parcels_of_orders(list(badges), shop_ids=visible_shop_ids(request.user))
        for order_id, courier_name, waybill_no, stage in parcels:
            badges[order_id].append(stage_badge(courier_name, waybill_no, stage))
        for row in rows:
            row.parcel_badges = badges[row.order_id]

    @display(description=_("order number"), ordering="order__order_no")
    def order_no(self, obj: AfterSale) -> str:
        return obj.order.order_no

    @display(description=_("buyer"))
    def buyer(self, obj: AfterSale) -> str:
        order = obj.order
        return mark_safe(
            f"{fast_escape(order.buyer_name)}<br>"
            f'<span class="text-subtle">{fast_escape(order.buyer_phone_masked)}</span>'
        )

    @display(description=_("parcels"))
    def parcels(self, obj: AfterSale) -> str:
        badges = getattr(obj, "parcel_badges", None)
        if badges is None:  # the detail page
            badges = [
                parcel_badge(parcel)
                for parcel in obj.order.parcels.select_related("courier").order_by("id")
            ]
        if not badges:
            return _("Not shipped")
        return mark_safe("".join(badges))

    @display(description=_("refund (yuan)"))
    def refund_amount(self, obj: AfterSale) -> str:
        return format_fen(obj.refund_amount_fen)

    @display(description=_("age"))
    def age(self, obj: AfterSale) -> str:
        language = get_language()
        created = obj.created_at
        return mark_safe(
            f'<span title="{fast_escape(short_datetime(created, language=language))}">'
            f"{fast_escape(short_age(timezone.now() - created, language=language))}</span>"
        )


# --- Platform-wide records -------------------------------------------------------------------


@admin.register(CourierPush)
class CourierPushAdmin(PlatformReadOnlyMixin, ModelAdmin):
    """Every push as received: platform staff check here why a courier's updates stopped."""

    list_display = (
        "received_at",
        "account",
        "status",
        "parcels_updated",
        "refused_dropped",
        "error",
    )
    list_filter = ("status",)
    list_select_related = ("account",)
    ordering = ("-received_at", "-id")
    sortable_by = ()
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = (
        "received_at",
        "account",
        "status",
        "parcels_updated",
        "error",
        "refused_dropped",
        "body_size",
        "body_sha256",
        "body",
    )
    fields = readonly_fields

    def get_changelist(self, request, **kwargs):
        return LazyChangeList

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class InterceptPolicyForm(forms.ModelForm):
    rules = forms.MultipleChoiceField(
        label=_("rules that apply"),
        choices=[(code, title) for code, (title, _check) in eligibility.RULES.items()],
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    excluded_categories = forms.MultipleChoiceField(
        label=_("goods categories that cannot be intercepted"),
        choices=GoodsCategory.choices,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    return_stages = forms.MultipleChoiceField(
        label=_("stages that allow a return to sender"),
        choices=ParcelStage.choices,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    redirect_stages = forms.MultipleChoiceField(
        label=_("stages that allow a change of address"),
        choices=ParcelStage.choices,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    value_cap_fen = YuanFormField(label=_("highest parcel value (yuan)"), min_fen=0)

    class Meta:
        model = InterceptPolicy
        fields = (
            "rules",
            "excluded_categories",
            "value_cap_fen",
            "return_stages",
            "redirect_stages",
            "allow_one_parcel_of_many",
            "agreement_version",
        )


class AgreementForm(forms.Form):
    agree = forms.BooleanField(
        label=_("I have read the agreement and sign it for the shop"),
        error_messages={"required": _("Tick the box to sign the agreement.")},
    )


@admin.register(InterceptPolicy)
class InterceptPolicyAdmin(StrictLookupsMixin, ModelAdmin):
    """One policy for the platform: platform staff read and edit it, merchants never see it."""

    form = InterceptPolicyForm

    def _platform(self, request) -> bool:
        return is_platform_staff(request)

    def has_module_permission(self, request):
        return self._platform(request)

    def has_view_permission(self, request, obj=None):
        return self._platform(request)

    def has_change_permission(self, request, obj=None):
        return self._platform(request)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # There is one policy: its list is its page.
        if not self.has_view_permission(request):
            raise PermissionDenied
        policy = InterceptPolicy.current()
        return redirect("admin:intercepts_interceptpolicy_change", policy.pk)

    def save_model(self, request, obj, form, change):
        services.intercept_policy_save(actor=request.user, policy=obj)

    def get_urls(self):
        return [
            path(
                "shop/<path:object_id>/agreement/",
                self.admin_site.admin_view(self.agreement_view),
                name="intercepts_shop_agreement",
            ),
            *super().get_urls(),
        ]

    def agreement_view(self, request, object_id):
        """A shop's page for the intercept service agreement (the policy names its version):
        everyone who may see the shop reads it; its owner
        signs it (before the shop's first intercept, and again for each new version)."""
        # The shop as its own admin scopes it: another shop's is a 404.
        shop = self.admin_site.get_model_admin(Shop).get_object(request, unquote(object_id))
        if shop is None:
            raise Http404
        can_sign = access_for(request.user).acts_for(shop.pk)
        back_url = reverse("admin:shops_shop_change", args=[shop.pk])
        next_url = workbench.safe_next(request, "")
        form = AgreementForm(request.POST or None)
        if request.method == "POST":
            if not can_sign:
                raise PermissionDenied
            if form.is_valid():
                try:
                    services.shop_sign_agreement(
                        actor=request.user, shop=shop, version=request.POST.get("version", "")
                    )
                except services.DomainError as exc:
                    form.add_error(None, str(exc))
                else:
                    self.message_user(request, _("The intercept service agreement is signed."))
                    return redirect(next_url or back_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": Shop._meta,
            "original": shop,
            "shop": shop,
            "title": _("Intercept service agreement"),
            "version": InterceptPolicy.current().agreement_version,
            "can_sign": can_sign,
            "form": form,
            "back_url": back_url,
            "next_url": next_url,
        }
        return TemplateResponse(request, "admin/shops/shop/agreement.html", context)


# --- Intercept records -----------------------------------------------------------------------


class InterceptCourierFilter(CourierFilter):
    """The same choices as the after-sales' courier filter; an intercept names its parcel."""

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(parcel__courier_id=self.value())


class LocalDayRangeFilter(RangeDateFilter):
    """A range of whole local days on a date-time column, both ends included.

    Unfold's filter compares the dates themselves, which on a date-time column means midnight:
    "to the 22nd" would leave the 22nd out. This one asks for [from 00:00, day after to 00:00)
    in the workbench's time zone, which an index on the column still serves.
    """

    def queryset(self, request, queryset):
        bounds = {}
        for suffix, lookup, shift in (("_from", "gte", 0), ("_to", "lt", 1)):
            text = self.used_parameters.get(f"{self.parameter_name}{suffix}")
            if text in (None, ""):
                continue
            try:
                day = parse_date_str(text)
            except (ValueError, ValidationError):
                return None
            if day is None:
                return None
            start = datetime.combine(day + timedelta(days=shift), time.min)
            bounds[f"{self.parameter_name}__{lookup}"] = timezone.make_aware(start)
        return queryset.filter(**bounds)


class InterceptEventInline(StatusHistoryInline):
    model = InterceptEvent
    parent_shop_path = "shop"
    fields = ("created_at", "from_status", "to_status", "source", "actor", "note")


@admin.register(InterceptRequest)
class InterceptRequestAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    """Every intercept the user may see ("intercept records"); changed only by the services."""

    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": NOBODY,
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "created_at",
        "shop",
        "order_no",
        "parcel_label",
        "action",
        "channel",
        "state",
        "fee",
        "requested_by",
    )
    list_select_related = ("shop", "parcel__courier", "parcel__order", "requested_by")
    list_filter = (
        "status",
        InterceptCourierFilter,
        "action",
        "channel",
        ("created_at", LocalDayRangeFilter),
        PlatformShopFilter,
    )
    list_filter_submit = True
    list_before_template = "admin/intercepts/interceptrequest/export_link.html"
    search_fields = ("parcel__waybill_no",)
    search_help_text = _("A whole order number or waybill number")
    ordering = ("-id",)
    sortable_by = ()
    list_display_links = ("created_at",)
    fields = (
        "shop",
        "order_no",
        "parcel_label",
        "after_sale",
        "action",
        "stage_at_request",
        "new_address_text",
        "channel",
        "state",
        "fee",
        "courier_reference",
        "failure_code",
        "failure_reason",
        "reason",
        "requested_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = (InterceptEventInline,)

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        parcel_ids = selectors.parcel_ids_for_number(
            search_term, shop_ids=visible_shop_ids(request.user)
        )
        return queryset.filter(parcel_id__in=parcel_ids), False

    change_form_before_template = "admin/intercepts/interceptrequest/live_status.html"

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="intercepts_interceptrequest_export",
            ),
            object_view_path(self, workbench.panel_view, "panel"),
            object_view_path(self, workbench.withdraw_view, "withdraw"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The object the page already loaded: the live status panel.
        if obj is not None:
            context.update(workbench.panel_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    EXPORT_COLUMNS = (
        (_("Created at"), lambda o: timezone.localtime(o.created_at).strftime("%Y-%m-%d %H:%M:%S")),
        (_("Shop"), lambda o: o.shop.name),
        (_("Order number"), lambda o: o.parcel.order.order_no),
        (_("Courier"), lambda o: o.parcel.courier.display_name),
        (_("Waybill number"), lambda o: o.parcel.waybill_no),
        (_("Action"), lambda o: o.get_action_display()),
        (_("Channel"), lambda o: o.get_channel_display()),
        (_("Status"), lambda o: o.get_status_display()),
        (_("Fee (yuan)"), lambda o: format_fen(o.fee_fen).replace(",", "")),
        (_("Failure reason"), lambda o: o.failure_reason),
        (_("Requested by"), lambda o: o.requested_by.get_username() if o.requested_by else ""),
    )

    def export_view(self, request):
        """The list as it is filtered and searched now, every page of it, as CSV for Excel."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        rows = (
            changelist.get_queryset(request)
            .select_related("shop", "parcel__order", "parcel__courier", "requested_by")
            .order_by("-id")
        )

        def lines():
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow([str(title) for title, _value in self.EXPORT_COLUMNS])
            yield "\ufeff" + buffer.getvalue()
            for intercept in rows.iterator(chunk_size=1000):
                buffer.seek(0)
                buffer.truncate()
                writer.writerow([value(intercept) for _title, value in self.EXPORT_COLUMNS])
                yield buffer.getvalue()

        response = StreamingHttpResponse(
            (line.encode() for line in lines()), content_type="text/csv; charset=utf-8"
        )
        name = _("intercept-records")
        response["Content-Disposition"] = content_disposition_header(
            True, f"{name}-{timezone.localdate():%Y%m%d}.csv"
        )
        return response

    @display(description=_("order number"))
    def order_no(self, obj: InterceptRequest) -> str:
        return obj.parcel.order.order_no

    @display(description=_("parcel"))
    def parcel_label(self, obj: InterceptRequest) -> str:
        return mark_safe(parcel_badge(obj.parcel))

    # Drawn here rather than with Unfold's label option: the workbench's lean list renderer and
    # the read-only detail page both show plain values.
    STATUS_COLOURS = {
        InterceptRequest.Status.SUCCEEDED: "bg-green-100 text-green-700",
        InterceptRequest.Status.COMPLETED: "bg-green-100 text-green-700",
        InterceptRequest.Status.REJECTED: "bg-red-100 text-red-700",
        InterceptRequest.Status.FAILED: "bg-red-100 text-red-700",
        InterceptRequest.Status.CANCELLED: "bg-orange-100 text-orange-700",
    }

    @display(description=_("status"))
    def state(self, obj: InterceptRequest) -> str:
        colours = self.STATUS_COLOURS.get(obj.status, "bg-blue-100 text-blue-700")
        return format_html(
            '<span class="inline-block font-semibold h-6 leading-6 px-2 rounded-default '
            'text-[11px] whitespace-nowrap {}">{}</span>',
            colours,
            obj.get_status_display(),
        )

    @display(description=_("new address"))
    def new_address_text(self, obj: InterceptRequest) -> str:
        address = obj.new_address or {}
        if not address:
            return "—"
        return " ".join(
            str(address[key])
            for key in ("name", "phone", "province", "city", "district", "address")
            if address.get(key)
        )

    @display(description=_("fee (yuan)"))
    def fee(self, obj: InterceptRequest) -> str:
        return format_fen(obj.fee_fen)
