"""``Authorization: Bearer pik_...``: the request acts as the key's user, for its one shop."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from shops.access import Access
from shops.addresses import client_ip
from shops.api_keys import KeyRefused, api_key_check
from shops.models import ShopMembership


class KeyForbidden(exceptions.PermissionDenied):
    """A valid key used from an address its allow-list leaves out."""


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace") != self.keyword:
            return None  # answered 401 by the permission check, with WWW-Authenticate
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(code="key_invalid")
        try:
            key = api_key_check(
                raw=parts[1].decode(errors="replace"),
                client_ip=client_ip(request._request),
            )
        except KeyRefused as exc:
            if exc.code == "ip_not_allowed":
                raise KeyForbidden(exc.message, code=exc.code) from exc
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from exc
        user = key.user
        # What ``access_for`` answers for this user: an agent of the key's shop, through the
        # API, and nothing else (a key's user belongs to no shop and no platform group).
        user._shop_access = Access(
            shop_roles={key.shop_id: ShopMembership.Role.AGENT}, api_key=key.name
        )
        return user, key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema names the key: a bearer token."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made by the shop's owner in the workbench: pik_...",
        }
