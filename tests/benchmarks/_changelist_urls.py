"""The app's URLs plus a stock admin of after-sales, installed as ROOT_URLCONF only inside the
changelist benchmark.

The stock admin is the list as a Django developer would first write it: a plain ``ModelAdmin``
(Unfold's, as the theme's templates need its site)
with the same columns, Django's default (counting) paginator, no ``list_select_related`` and a
``get_queryset`` that keeps a merchant to the shops they belong to. The benchmark compares our
pages with its pages on the same table, the same users and the same 20 rows a page.
"""

from django.contrib import admin
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from unfold.admin import ModelAdmin
from unfold.sites import UnfoldAdminSite

from config.urls import urlpatterns as app_urlpatterns
from intercepts.models import AfterSale


class StockAfterSaleAdmin(ModelAdmin):
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
    list_filter = ("status", "kind", "order__parcels__courier", "order__parcels__stage")
    ordering = ("-created_at", "-id")
    # The same 20 rows a page as ours, so that both pages show the same after-sales.
    list_per_page = 20

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser or request.user.groups.exists():
            return queryset
        return queryset.filter(shop__memberships__user=request.user)

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="order number")
    def order_no(self, obj):
        return obj.order.order_no

    @admin.display(description="buyer")
    def buyer(self, obj):
        return format_html("{}<br>{}", obj.order.buyer_name, obj.order.buyer_phone_masked)

    @admin.display(description="parcels")
    def parcels(self, obj):
        return format_html_join(
            "",
            "<span>{} {} {}</span>",
            (
                (parcel.courier.name_zh, parcel.waybill_no, parcel.get_stage_display())
                for parcel in obj.order.parcels.all()
            ),
        )

    @admin.display(description="refund (yuan)")
    def refund_amount(self, obj):
        return f"{obj.refund_amount_fen / 100:.2f}"

    @admin.display(description="age")
    def age(self, obj):
        return timesince(obj.created_at, timezone.now())


stock_site = UnfoldAdminSite(name="stock")
stock_site.register(AfterSale, StockAfterSaleAdmin)

urlpatterns = [path("stock/", stock_site.urls), *app_urlpatterns]
