"""API keys: making, revoking and checking them. A key is ``pik_<prefix>_<secret>``; the
prefix finds it, the secret's SHA-256 proves it, and its own user acts for its one shop."""

import hashlib
import hmac
import ipaddress
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shops.access import access_for
from shops.models import ApiKey, Shop, ShopMembership

KEY_PREFIX = "pik_"
# Stamping the last use once a minute at most: a busy ERP must not write a row per request.
LAST_USED_RESOLUTION_S = 60


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_networks(values) -> list[str]:
    """The allow-list as networks in canonical form; a ValidationError names a bad entry."""
    networks = []
    for value in values or []:
        text = str(value).strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError as exc:
            raise ValidationError(
                _("“%(value)s” is not an IP address or network.") % {"value": text[:50]}
            ) from exc
    return networks


def duplicate_key_message() -> str:
    return _("The shop already has a live key of this name; revoke it or choose another name.")


def live_key_named(shop, name: str) -> bool:
    return ApiKey.objects.filter(shop=shop, name=name, revoked_at__isnull=True).exists()


def api_key_create(
    *, actor, shop: Shop, name: str, allowed_ips=(), expires_at=None
) -> tuple[ApiKey, str]:
    """Make a key for the shop; returns it with the full key text, which is never kept."""
    if access_for(actor).shop_roles.get(shop.pk) != ShopMembership.Role.OWNER:
        raise PermissionDenied(_("Only the shop's owner manages its API keys."))
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the key a name, such as the ERP it is for.")})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")})
    networks = normalise_networks(allowed_ips)
    if live_key_named(shop, name):
        raise ValidationError({"name": duplicate_key_message()})
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        # The key's own user: its name says "API" and the key's, so history rows name the key.
        user = get_user_model().objects.create_user(
            username=f"API:{name}#{prefix}"[:150], first_name=name[:150]
        )
        key = ApiKey.objects.create(
            shop=shop,
            name=name,
            prefix=prefix,
            secret_hash=_digest(secret),
            user=user,
            allowed_ips=networks,
            expires_at=expires_at,
            created_by=actor,
        )
    return key, f"{KEY_PREFIX}{prefix}_{secret}"


def api_key_revoke(*, actor, key: ApiKey) -> ApiKey:
    """Revoke a key at once; revoking twice keeps the first revocation."""
    if access_for(actor).shop_roles.get(key.shop_id) != ShopMembership.Role.OWNER:
        raise PermissionDenied(_("Only the shop's owner manages its API keys."))
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=actor
    )
    key.refresh_from_db()
    return key


class KeyRefused(Exception):
    """A key that does not let the request in; ``code`` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def api_key_check(*, raw: str, client_ip: str) -> ApiKey:
    """The key ``raw`` names, if it is valid, live and allowed from ``client_ip``."""
    prefix, _sep, secret = raw.removeprefix(KEY_PREFIX).partition("_")
    key = None
    if raw.startswith(KEY_PREFIX) and prefix and secret:
        key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    # Compared even when no key was found, so the timing does not say which prefixes exist.
    expected = key.secret_hash if key is not None else _digest("")
    if not hmac.compare_digest(expected, _digest(secret)) or key is None:
        raise KeyRefused("key_invalid", _("The API key is not valid."))
    if key.revoked_at is not None:
        raise KeyRefused("key_revoked", _("The API key was revoked."))
    now = timezone.now()
    if key.expires_at is not None and key.expires_at <= now:
        raise KeyRefused("key_expired", _("The API key has expired."))
    if key.allowed_ips and not _allowed(client_ip, key.allowed_ips):
        raise KeyRefused(
            "ip_not_allowed",
            _("The API key may not be used from %(address)s.") % {"address": client_ip},
        )
    stale = now - timedelta(seconds=LAST_USED_RESOLUTION_S)
    if key.last_used_at is None or key.last_used_at < stale:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def _allowed(client_ip: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in networks)
