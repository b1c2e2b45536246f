"""Filters the apps' FilterSets share."""

from datetime import UTC

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class _UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        # PostgreSQL takes offsets up to ±15:59 only, Python's up to ±23:59: in UTC the
        # database never sees the offset. A date whose UTC falls outside years 1-9999 is refused.
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from exc


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date and time with any offset, compared in UTC."""

    field_class = _UtcIsoDateTimeField
