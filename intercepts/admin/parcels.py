"""Parcels: recorded by shipping their order, their tracking, refreshing it, correcting a
waybill."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display

from billing.money import format_fen
from couriers.models import Courier
from intercepts import selectors
from intercepts.admin.shipping import ShipForm, ship_from_form
from intercepts.models import (
    Parcel,
    ParcelCorrection,
    TrackingEvent,
)
from intercepts.services.errors import DomainError
from intercepts.services.parcels import (
    may_correct_waybill,
    parcel_correct_waybill,
)
from intercepts.tracking import polling
from shops.access import access_for, visible_shop_ids
from shops.scoped_admin import (
    MERCHANT_ALL,
    MERCHANT_WRITE,
    NOBODY,
    PLATFORM_ALL,
    ActorNameMixin,
    PlatformShopFilter,
    ScopedTabularInline,
    ShopScopedAdmin,
    is_platform_staff,
    object_view_path,
)


class TrackingEventInline(ScopedTabularInline):
    model = TrackingEvent
    fields = ("occurred_at", "stage", "description", "location", "raw_code", "source")
    readonly_fields = fields
    ordering = ("-occurred_at", "-id")

    def get_fields(self, request, obj=None):
        # The courier's own scan code is for platform staff tracing a courier's data; a
        # merchant reads the stage and the courier's description of the scan.
        if is_platform_staff(request):
            return self.fields
        return tuple(field for field in self.fields if field != "raw_code")


class ParcelCorrectionInline(ActorNameMixin, ScopedTabularInline):
    model = ParcelCorrection
    fields = ("created_at", "old_courier", "old_waybill_no", "new_courier", "new_waybill_no")
    readonly_fields = (*fields, "reason", "actor_name")
    fields = (*fields, "reason", "actor_name")
    verbose_name_plural = _("waybill corrections")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("old_courier", "new_courier", "actor")


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
    list_filter_submit = True  # the shop filter is typed
    search_fields = ("waybill_no",)
    search_help_text = _("A whole waybill number or order number")
    ordering = ("-created_at", "-id")
    autocomplete_fields = ("order",)
    inlines = (TrackingEventInline, ParcelCorrectionInline)
    fieldsets = (
        (None, {"fields": ("order", "courier", "waybill_no", "lines", "declared_value")}),
        (_("Receiver"), {"fields": ("receiver_name", "receiver_phone", "receiver_address")}),
        (
            # Not "Tracking": that is the scans' own list below.
            _("Stage and times"),
            {"fields": ("stage", "shipped_at", "picked_up_at", "signed_at", "next_poll_at")},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
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
            # The parcel's intercepts, said at the top with their records; once one was asked
            # for, the waybill can no longer be corrected, so the link is not offered.
            intercepts = list(obj.intercepts.order_by("-pk")[:5])
            context["parcel_intercepts"] = [
                (i, reverse("admin:intercepts_interceptrequest_change", args=[i.pk]))
                for i in intercepts
            ]
            context["may_correct"] = not intercepts and may_correct_waybill(
                request.user, obj.shop_id
            )
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
        if not may_correct_waybill(request.user, parcel.shop_id):
            raise PermissionDenied
        back_url = reverse("admin:intercepts_parcel_change", args=[parcel.pk])
        form = WaybillCorrectionForm(request.POST or None, parcel=parcel)
        if request.method == "POST" and form.is_valid():
            try:
                parcel_correct_waybill(
                    actor=request.user,
                    parcel=parcel,
                    courier=form.cleaned_data["courier"],
                    waybill_no=form.cleaned_data["waybill_no"],
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            except DomainError as exc:
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

    def add_view(self, request, form_url="", extra_context=None):
        """Recording a parcel is shipping its order: the order, a courier and a waybill number,
        judged by the platform's rules (``ship_order``); the receiver is the order's."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ShipForm(request.POST or None)
        # The admin's own autocomplete of the shops' orders where the user may ship.
        order_field = self.formfield_for_dbfield(Parcel._meta.get_field("order"), request)
        form.fields = {"order": order_field, **form.fields}
        back_url = reverse("admin:intercepts_parcel_changelist")
        if request.method == "POST" and form.is_valid():
            shipped = ship_from_form(self, request, form, form.cleaned_data["order"])
            if shipped is not None:
                return redirect("admin:intercepts_parcel_change", shipped.shipment.parcel_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Record a shipped parcel"),
            "form": form,
            "media": self.media + form.media,
            "intro": _(
                "Choose the order, its courier and the waybill number. The parcel goes to the "
                "receiver the platform sent with the order and carries the order's goods not "
                "yet in a parcel; the order becomes shipped. To ship many orders, upload a file "
                "on the batch shipping page."
            ),
            "extra_links": [
                (reverse("admin:intercepts_shipmentupload_add"), _("Batch shipping")),
            ],
            "submit_label": _("Ship"),
            "back_url": back_url,
            "back_label": _("Back to the parcels"),
        }
        return TemplateResponse(request, "admin/intercepts/form_page.html", context)

    def save_checked(self, request, obj, form, change):
        # Parcels are recorded by shipping their order (``add_view``) and never edited.
        raise PermissionDenied


def _add_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError on the form: on its fields where it names them."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)
