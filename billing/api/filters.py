"""FilterSets of the wallet's entries and invoice requests."""

import django_filters
from django.utils.translation import gettext_lazy as _

from billing.models import InvoiceRequest, LedgerEntry, LedgerTransaction
from shops.api.filters import IsoDateTimeFilter


class WalletEntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(
        field_name="transaction__kind", choices=LedgerTransaction.Kind.choices
    )
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label=_("Created at or after")
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label=_("Created before")
    )

    class Meta:
        model = LedgerEntry
        fields = ("kind",)


class InvoiceRequestFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InvoiceRequest.Status.choices)
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_since = IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = InvoiceRequest
        fields = ("status",)
