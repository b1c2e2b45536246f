"""The client's address, for sign-in lockouts and API keys' allow-lists alike.

Without ``SIGNIN_PROXY_COUNT`` it is the connection's own. Behind that many reverse proxies, each
appending the address it saw to ``X-Forwarded-For``, the client's is the entry the outermost
proxy appended: the one ``SIGNIN_PROXY_COUNT`` from the end. Entries before it were written by
the client and are not trusted.
"""

from django.conf import settings


def client_ip(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    count = settings.SIGNIN_PROXY_COUNT
    if not count:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    # Fewer entries than proxies: the request did not come through them all.
    return hops[-count] if len(hops) >= count else remote
