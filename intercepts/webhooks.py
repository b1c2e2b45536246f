"""Courier pushes: verified by the account's protocol, stored raw, answered at once.

Each gateway account has its own push URL (``/couriers/push/<account id>/``) so that a push is
verified with that account's secrets. A push that fails verification is stored as refused and
answered 400; one that verifies is stored as received and answered with the body its protocol
expects, and applied in bulk right after by a drain (``intercepts.pushes``): gateways expect a
quick answer and send again what is not answered, and applying a push twice changes nothing.

A busy gateway pushes hundreds of times a second, and a push needs none of what the middleware
gives a page (sessions, users, languages, CSRF). ``with_push_endpoint`` wraps the WSGI
application so that a push is answered before Django's request handling starts; the URL stays
in the URLconf too (for ``reverse``, for other methods, and for servers that run Django's own
handler), and both paths answer through ``receive``.
"""

import logging
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signals
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import Http404, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from couriers.adapters.base import PushRejected
from couriers.models import CourierAccount
from intercepts.pushes import push_receive

logger = logging.getLogger(__name__)

# Accounts as the push endpoint last read them, for a few seconds: a busy gateway pushes many
# times a second, and the account behind a URL rarely changes. A change saved in this process
# clears it at once; other processes see it within ACCOUNT_TTL_S.
ACCOUNT_TTL_S = 5.0
_accounts: dict[int, tuple[float, CourierAccount]] = {}

# The URLconf's "couriers/push/<int:account_id>/", as the fast path matches it.
PUSH_PATH = re.compile(r"/couriers/push/([0-9]+)/")


def _active_account(account_id: int) -> CourierAccount:
    cached = _accounts.get(account_id)
    now = time.monotonic()
    if cached is not None and now - cached[0] < ACCOUNT_TTL_S:
        return cached[1]
    account = get_object_or_404(CourierAccount, pk=account_id, is_active=True)
    _accounts[account_id] = (now, account)
    return account


@receiver([post_save, post_delete], sender=CourierAccount, dispatch_uid="push-accounts-forget")
def _forget_accounts(**kwargs) -> None:
    _accounts.clear()


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/plain"


def receive(account_id: int, body: bytes, content_type: str) -> Answer:
    """Verify and store one push; the answer the gateway gets."""
    try:
        account = _active_account(account_id)
    except Http404:
        return Answer(404, "unknown push account")
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = push_receive(account=account, body=text, content_type=content_type)
    except PushRejected as exc:
        logger.warning("Refused a %s push: %s", account.protocol, exc)
        return Answer(400, "refused")
    return Answer(200, parsed.ack_body, parsed.ack_content_type)


@csrf_exempt
@require_POST
def courier_push(request, account_id: int):
    answer = receive(account_id, request.body, request.content_type)
    return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found"}


def with_push_endpoint(application):
    """``application`` with courier pushes (POSTs to a push URL) answered in front of it.

    A push still gets what Django's handler and middleware would give this view: the database
    connection is set up and handed back as for a request (``request_started`` /
    ``request_finished``), the Host is checked against ``ALLOWED_HOSTS`` and the body held to
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (both answered 400), and an error is logged and answered
    500.
    """

    def wsgi(environ, start_response):
        match = PUSH_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return application(environ, start_response)
        signals.request_started.send(sender=with_push_endpoint, environ=environ)
        try:
            answer = _push_answer(environ, int(match[1]))
        except Exception:
            logger.exception("Push to %s failed", environ.get("PATH_INFO"))
            answer = Answer(500, "error")
        finally:
            signals.request_finished.send(sender=with_push_endpoint)
        content = answer.body.encode()
        content_type = answer.content_type
        if "charset" not in content_type:
            content_type += "; charset=utf-8"
        start_response(
            f"{answer.status} {_REASONS.get(answer.status, 'Internal Server Error')}",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(content))),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [content]

    return wsgi


def _push_answer(environ, account_id: int) -> Answer:
    if not _host_allowed(environ):
        logger.warning("Push with a Host not in ALLOWED_HOSTS: %r", environ.get("HTTP_HOST"))
        return Answer(400, "bad host")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length > limit:
        logger.warning("Push of %d bytes refused: more than DATA_UPLOAD_MAX_MEMORY_SIZE", length)
        return Answer(400, "too large")
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    return receive(account_id, body, content_type)


def _host_allowed(environ) -> bool:
    """``HttpRequest.get_host``'s check, for the Host a gateway sent."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
        host = environ["HTTP_X_FORWARDED_HOST"]
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)
