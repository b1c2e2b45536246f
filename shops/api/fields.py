"""Serializer fields every app's API shares."""

from rest_framework import serializers


class CodeRelatedField(serializers.SlugRelatedField):
    """A record named by its code (a courier's ``ZTO``). A NUL byte is refused as an invalid
    code before the lookup: PostgreSQL refuses it in a query, which DRF would not catch."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)
