"""One FilterSet per resource, with explicit fields; ``updated_since`` lets an ERP sync only
what changed since its last run."""

import django_filters
from django.utils.translation import gettext_lazy as _

from couriers.stages import ParcelStage
from intercepts.models import AfterSale, InterceptRequest, Parcel, Shipment, ShipmentAnomaly
from intercepts.services.parcels import normalise_waybill
from shops.api.filters import IsoDateTimeFilter


class _Created(django_filters.FilterSet):
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label=_("Created at or after")
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label=_("Created before")
    )
    updated_since = IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", label=_("Updated at or after")
    )


class AfterSaleFilter(_Created):
    status = django_filters.ChoiceFilter(choices=AfterSale.Status.choices)
    kind = django_filters.ChoiceFilter(choices=AfterSale.Kind.choices)
    arbitration = django_filters.ChoiceFilter(choices=AfterSale.Arbitration.choices)
    order_no = django_filters.CharFilter(field_name="order__order_no")

    class Meta:
        model = AfterSale
        fields = ("status", "kind", "arbitration", "order_no")


class ParcelFilter(_Created):
    stage = django_filters.ChoiceFilter(choices=ParcelStage.choices)
    courier = django_filters.CharFilter(field_name="courier__code", label=_("Courier code"))
    waybill_no = django_filters.CharFilter(method="filter_waybill", label=_("Waybill number"))
    order_no = django_filters.CharFilter(field_name="order__order_no")

    class Meta:
        model = Parcel
        fields = ("stage", "courier", "waybill_no", "order_no")

    def filter_waybill(self, queryset, name, value):
        return queryset.filter(waybill_no=normalise_waybill(value))


class InterceptFilter(_Created):
    status = django_filters.ChoiceFilter(choices=InterceptRequest.Status.choices)
    action = django_filters.ChoiceFilter(choices=InterceptRequest.Action.choices)
    channel = django_filters.ChoiceFilter(choices=InterceptRequest.Channel.choices)
    courier = django_filters.CharFilter(field_name="parcel__courier__code", label=_("Courier code"))
    stage = django_filters.ChoiceFilter(
        field_name="stage_at_request", choices=ParcelStage.choices, label=_("Stage when asked")
    )
    after_sale = django_filters.NumberFilter(field_name="after_sale_id")
    parcel = django_filters.NumberFilter(field_name="parcel_id")

    class Meta:
        model = InterceptRequest
        fields = ("status", "action", "channel", "courier", "stage", "after_sale", "parcel")


class ShipmentFilter(django_filters.FilterSet):
    order_no = django_filters.CharFilter(field_name="order__order_no")
    waybill_no = django_filters.CharFilter(method="filter_waybill", label=_("Waybill number"))
    courier = django_filters.CharFilter(field_name="parcel__courier__code", label=_("Courier code"))
    flagged = django_filters.BooleanFilter()
    channel = django_filters.ChoiceFilter(choices=Shipment.Channel.choices)
    shipped_after = IsoDateTimeFilter(
        field_name="shipped_at", lookup_expr="gte", label=_("Shipped at or after")
    )
    shipped_before = IsoDateTimeFilter(
        field_name="shipped_at", lookup_expr="lt", label=_("Shipped before")
    )

    class Meta:
        model = Shipment
        fields = ("order_no", "waybill_no", "courier", "flagged", "channel")

    def filter_waybill(self, queryset, name, value):
        return queryset.filter(parcel__waybill_no=normalise_waybill(value))


class ShipmentAnomalyFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ShipmentAnomaly.Kind.choices)
    status = django_filters.ChoiceFilter(choices=ShipmentAnomaly.Status.choices)
    order_no = django_filters.CharFilter(field_name="order__order_no")
    detected_after = IsoDateTimeFilter(
        field_name="detected_at", lookup_expr="gte", label=_("Detected at or after")
    )
    detected_before = IsoDateTimeFilter(
        field_name="detected_at", lookup_expr="lt", label=_("Detected before")
    )

    class Meta:
        model = ShipmentAnomaly
        fields = ("kind", "status", "order_no")
