"""The raw courier pushes, read-only, for platform staff."""

from django.contrib import admin
from unfold.admin import ModelAdmin

from intercepts.models import (
    CourierPush,
)
from shops.scoped_admin import (
    LazyChangeList,
    PlatformReadOnlyMixin,
)


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
