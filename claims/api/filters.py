"""The FilterSet of the claims list; ``updated_since`` lets an ERP sync only what changed."""

import django_filters
from django.utils.translation import gettext_lazy as _

from claims.models import Claim
from shops.api.filters import IsoDateTimeFilter


class ClaimFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Claim.Status.choices)
    reason = django_filters.ChoiceFilter(choices=Claim.Reason.choices)
    courier = django_filters.CharFilter(field_name="courier__code", label=_("Courier code"))
    intercept = django_filters.NumberFilter(field_name="intercept_id")
    parcel = django_filters.NumberFilter(field_name="parcel_id")
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label=_("Created at or after")
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label=_("Created before")
    )
    updated_since = IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", label=_("Updated at or after")
    )

    class Meta:
        model = Claim
        fields = ("status", "reason", "courier", "intercept", "parcel")
