"""Batch shipping: upload a file of shipments, watch it being read, check the preview, confirm.

Every rule is the services' (``intercepts.services.shipment_uploads``): these pages upload,
show what the worker found, and confirm. A shop's viewer reads the pages; its owner and agents
upload and confirm; platform staff read every shop's uploads and act on none.
"""

import math

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldAdminSelectWidget

from intercepts.models import ShipmentUpload, ShipmentUploadRow
from intercepts.services.errors import DomainError
from intercepts.services.shipment_uploads import (
    UploadRefused,
    failed_rows_workbook,
    same_file_before,
    shipment_upload_confirm,
    shipment_upload_create,
    template_workbook,
)
from intercepts.services.shipping import may_ship
from shops.access import access_for
from shops.models import Shop
from shops.scoped_admin import (
    MERCHANT_ALL,
    MERCHANT_WRITE,
    NOBODY,
    PLATFORM_ALL,
    PlatformShopFilter,
    ShopColumnForPlatformMixin,
    ShopScopedAdmin,
    object_view_path,
)

Status = ShipmentUpload.Status
Outcome = ShipmentUploadRow.Outcome
ROWS_PER_PAGE = 100
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# While the worker reads or ships, the page asks again this often (milliseconds).
REFRESH_MS = 2000


def writable_shops(user):
    """The shops the user may ship for: every shop for a superuser, else those they act for."""
    access = access_for(user)
    if access.is_superuser:
        return Shop.objects.order_by("pk")
    return Shop.objects.filter(
        pk__in=[shop_id for shop_id in access.shop_ids if access.acts_for(shop_id)]
    ).order_by("pk")


class ShipmentUploadForm(forms.Form):
    shop = forms.ModelChoiceField(
        label=_("shop"), queryset=Shop.objects.none(), widget=UnfoldAdminSelectWidget
    )
    file = forms.FileField(
        label=_("file"),
        widget=UnfoldAdminFileFieldWidget,
        help_text=_(
            "An xlsx workbook or a csv file with the columns 订单号, 物流公司 and 运单号, "
            "as in the template."
        ),
    )

    def __init__(self, *args, shops, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["shop"].queryset = shops
        first_two = list(shops[:2])
        if len(first_two) == 1:
            # One shop: nothing to choose.
            self.fields["shop"].initial = first_two[0].pk
            self.fields["shop"].widget = forms.HiddenInput()


def _row_section(upload, key: str, title, outcomes, count: int, page_arg: str | None):
    """One list of the upload's rows (those of ``outcomes``), a page of them."""
    pages = max(1, math.ceil(count / ROWS_PER_PAGE))
    try:
        page = min(max(1, int(page_arg or 1)), pages)
    except ValueError:
        page = 1
    start = (page - 1) * ROWS_PER_PAGE
    rows = list(
        ShipmentUploadRow.objects.filter(upload=upload, outcome__in=outcomes)
        .order_by("row_no")
        .only("row_no", "order_no", "courier_text", "waybill_no", "outcome", "reason", "flagged")[
            start : start + ROWS_PER_PAGE
        ]
    )
    return {
        "key": key,
        "title": title,
        "count": count,
        "rows": rows,
        "page": page,
        "pages": pages,
        "previous": page - 1 if page > 1 else None,
        "next": page + 1 if page < pages else None,
    }


@admin.register(ShipmentUpload)
class ShipmentUploadAdmin(ShopColumnForPlatformMixin, ShopScopedAdmin):
    role_permissions = {
        "view": MERCHANT_ALL | PLATFORM_ALL,
        "add": MERCHANT_WRITE,
        "change": NOBODY,
        "delete": NOBODY,
    }
    list_display = (
        "file_name",
        "shop",
        "uploaded_by_name",
        "created_at",
        "status",
        "total_rows",
        "valid_rows",
        "failed_rows",
        "applied_rows",
        "refused_rows",
    )
    list_display_links = ("file_name",)
    list_select_related = ("shop", "uploaded_by")
    list_filter = ("status", PlatformShopFilter)
    list_filter_submit = True  # the shop filter is typed
    ordering = ("-created_at", "-id")
    list_before_template = "admin/intercepts/shipmentupload/list_links.html"

    @display(description=_("uploaded by"))
    def uploaded_by_name(self, obj: ShipmentUpload) -> str:
        return obj.uploaded_by.get_username()

    def get_urls(self):
        opts = self.model._meta
        template = path(
            "template/",
            self.admin_site.admin_view(self.template_view),
            name=f"{opts.app_label}_{opts.model_name}_template",
        )
        return [
            template,
            object_view_path(self, ShipmentUploadAdmin.confirm_view, "confirm"),
            object_view_path(self, ShipmentUploadAdmin.failed_rows_view, "failed-rows"),
            object_view_path(self, ShipmentUploadAdmin.file_view, "file"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_upload": self.has_add_permission(request)}
        return super().changelist_view(request, extra_context)

    # --- Uploading ----------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        shops = writable_shops(request.user)
        if not shops.exists():
            raise PermissionDenied
        form = ShipmentUploadForm(request.POST or None, request.FILES or None, shops=shops)
        if request.method == "POST" and form.is_valid():
            try:
                upload = shipment_upload_create(
                    actor=request.user,
                    shop=form.cleaned_data["shop"],
                    upload=form.cleaned_data["file"],
                )
            except UploadRefused as exc:
                form.add_error("file", str(exc))
            else:
                return redirect("admin:intercepts_shipmentupload_change", upload.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Ship orders from a file"),
            "form": form,
            "media": self.media + form.media,
            "intro": _(
                "One row per order: its order number, the courier and the waybill number. "
                "The file is checked against the platform's rules first; nothing ships until "
                "you confirm the preview."
            ),
            "extra_links": [
                (reverse("admin:intercepts_shipmentupload_template"), _("Download the template")),
            ],
            "submit_label": _("Upload and check"),
            "back_url": reverse("admin:intercepts_shipmentupload_changelist"),
            "back_label": _("Back to the uploads"),
        }
        return TemplateResponse(request, "admin/intercepts/form_page.html", context)

    # --- The upload's page --------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        upload = self.get_object(request, object_id)  # another shop's: 404
        if not self.has_view_permission(request, upload):
            raise PermissionDenied
        status = upload.status
        progress = None
        if status == Status.APPLYING:
            left = ShipmentUploadRow.objects.filter(upload=upload, outcome=Outcome.VALID).count()
            progress = {"done": upload.valid_rows - left, "of": upload.valid_rows}
        sections = []
        if status in (Status.PREVIEW, Status.DONE):
            counts = self._counts(upload)
            wanted = (
                [("valid", _("Rows to ship"), (Outcome.VALID,), counts["valid"])]
                if status == Status.PREVIEW
                else [
                    ("shipped", _("Rows shipped"), (Outcome.SHIPPED,), counts["shipped"]),
                    (
                        "refused",
                        _("Rows refused when shipping"),
                        (Outcome.REFUSED,),
                        counts["refused"],
                    ),
                ]
            )
            wanted.append(("failed", _("Failed rows"), (Outcome.FAILED,), counts["failed"]))
            wanted.append(
                (
                    "already",
                    _("Already shipped with this waybill"),
                    (Outcome.ALREADY,),
                    counts["already"],
                )
            )
            sections = [
                _row_section(upload, key, title, outcomes, count, request.GET.get(f"{key}_page"))
                for key, title, outcomes, count in wanted
                if count
            ]
        else:
            counts = None
        earlier = same_file_before(upload)
        acting = may_ship(request.user, upload.shop_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": upload,
            "title": _("Shipment upload: %(name)s") % {"name": upload.file_name},
            "upload": upload,
            "counts": counts,
            "progress": progress,
            "sections": sections,
            "earlier": earlier,
            "earlier_url": (
                reverse("admin:intercepts_shipmentupload_change", args=[earlier.pk])
                if earlier is not None
                else ""
            ),
            "may_confirm": acting and status == Status.PREVIEW and upload.valid_rows > 0,
            "may_upload": acting,
            "refresh_ms": REFRESH_MS if status in (Status.PARSING, Status.APPLYING) else 0,
            "events": upload.events.select_related("actor").order_by("created_at", "pk"),
        }
        return TemplateResponse(request, "admin/intercepts/shipmentupload/upload.html", context)

    @staticmethod
    def _counts(upload: ShipmentUpload) -> dict[str, int]:
        """The counters the worker kept; the rows already shipped with their waybill are the
        rest (no count over the rows on a page load)."""
        shipped, refused = upload.applied_rows, upload.refused_rows
        valid = upload.valid_rows if upload.status == Status.PREVIEW else 0
        already = upload.total_rows - upload.failed_rows - valid - shipped - refused
        return {
            "total": upload.total_rows,
            "valid": valid,
            "failed": upload.failed_rows,
            "flagged": upload.flagged_rows,
            "already": max(already, 0),
            "shipped": shipped,
            "refused": refused,
        }

    def confirm_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        upload = self.get_object(request, object_id)
        if not may_ship(request.user, upload.shop_id):
            raise PermissionDenied
        try:
            moved = shipment_upload_confirm(actor=request.user, upload=upload)
        except DomainError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
        else:
            if moved:
                self.message_user(
                    request, _("Confirmed: the valid rows are being shipped, one order at a time.")
                )
            else:  # confirmed before (another tab, a second click): nothing ships twice
                self.message_user(
                    request, _("This upload was confirmed already."), level=messages.WARNING
                )
        return redirect("admin:intercepts_shipmentupload_change", upload.pk)

    # --- Files --------------------------------------------------------------------------------

    def failed_rows_view(self, request, object_id):
        upload = self.get_object(request, object_id)
        response = HttpResponse(failed_rows_workbook(upload), content_type=XLSX)
        response["Content-Disposition"] = (
            f'attachment; filename="shipment-upload-{upload.pk}-failed-rows.xlsx"'
        )
        return response

    def file_view(self, request, object_id):
        upload = self.get_object(request, object_id)
        try:
            handle = upload.file.open("rb")
        except FileNotFoundError as exc:
            raise Http404(_("The file is no longer kept.")) from exc
        return FileResponse(handle, as_attachment=True, filename=upload.file_name)

    def template_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        response = HttpResponse(template_workbook(), content_type=XLSX)
        response["Content-Disposition"] = 'attachment; filename="shipment-template.xlsx"'
        return response
