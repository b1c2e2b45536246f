"""Hashing of payment PINs.

A six-digit PIN has a million values, so no iteration count can make an offline guess slow: a
stolen hash is protected by a key the database does not hold (an HMAC with a key derived from
``SECRET_KEY``), and online guessing by the five-tries lock. The key-stretching that login
passwords need (about 0.4 s here) would only slow every payment, so PINs get a modest count.
Hashes made before this scheme are still accepted and replaced on the next correct entry.
"""

import hashlib

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher, check_password
from django.utils.crypto import salted_hmac

ALGORITHM = "pbkdf2_pin"


class PinHasher(PBKDF2PasswordHasher):
    algorithm = ALGORITHM
    iterations = 20_000
    digest = hashlib.sha256


def _peppered(pin: str, secret: str | None = None) -> str:
    return salted_hmac("billing.payment-pin", pin, secret=secret, algorithm="sha256").hexdigest()


def pin_hash(pin: str) -> str:
    hasher = PinHasher()
    return hasher.encode(_peppered(pin), hasher.salt())


def pin_matches(pin: str, encoded: str) -> tuple[bool, bool]:
    """(matches, needs a new hash): an old-scheme hash, an outdated count, or a hash keyed with
    a retired ``SECRET_KEY`` (still in ``SECRET_KEY_FALLBACKS``) wants replacing."""
    if not encoded.startswith(ALGORITHM + "$"):
        return check_password(pin, encoded), True
    hasher = PinHasher()
    if hasher.verify(_peppered(pin), encoded):
        return True, hasher.must_update(encoded)
    for secret in settings.SECRET_KEY_FALLBACKS:
        if hasher.verify(_peppered(pin, secret), encoded):
            return True, True
    return False, False
