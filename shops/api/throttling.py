"""Throttling per API key (``API_RATE_PER_KEY``), in the shared cache so every worker counts
together; a refused request is answered 429 with ``Retry-After``."""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from shops.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self):
        # Read when asked, not when the class was defined, so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        key = request.auth
        if not isinstance(key, ApiKey):
            return None  # unauthenticated: refused before it costs anything
        return self.cache_format % {"scope": self.scope, "ident": key.pk}
