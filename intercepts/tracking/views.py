"""Courier pushes: verified by the account's protocol, stored raw, answered at once.

Each gateway account has its own push URL (``/couriers/push/<account id>/``) so that a push is
verified with that account's secrets. A push that fails verification is stored as refused and
answered 400; one that verifies is stored as received and answered with the body its protocol
expects, and applied in bulk right after by a drain (``intercepts.tracking.pushes``): gateways
expect a quick answer and send again what is not answered, and applying a push twice changes
nothing.

The view is an ordinary Django view behind the same middleware as every page: exempt from CSRF
(a gateway has no session, the signature is its proof), never cached, POST only.
"""

import logging

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from couriers.adapters.base import PushRejected
from couriers.models import CourierAccount
from intercepts.models import CourierPush
from intercepts.tracking.pushes import push_receive, push_refuse

logger = logging.getLogger(__name__)


@csrf_exempt
@never_cache
@require_POST
def courier_push(request, account_id: int):
    """Verify and store one push; answer as the account's protocol expects.

    A body over ``COURIER_PUSH_MAX_BYTES`` (by its Content-Length, or by what could be read) is
    answered 413 before it is read whole; only an excerpt of it is kept.
    """
    account = get_object_or_404(CourierAccount, pk=account_id, is_active=True)
    limit = settings.COURIER_PUSH_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    body = request.read(min(declared, limit + 1)) if declared > 0 else b""
    if declared > limit or len(body) > limit:
        size = max(declared, len(body))
        logger.warning("Refused a %s push of %d bytes: over the limit", account.protocol, size)
        with translation.override(settings.LANGUAGE_CODE):
            error = _("Body of %(size)d bytes is over the limit of %(limit)d bytes") % {
                "size": size,
                "limit": limit,
            }
        push_refuse(account=account, body=body[: CourierPush.EXCERPT_CHARS], error=error, size=size)
        return HttpResponse("too large", status=413, content_type="text/plain")
    try:
        parsed = push_receive(account=account, body=body, content_type=request.content_type)
    except PushRejected as exc:
        logger.warning("Refused a %s push: %s", account.protocol, exc)
        return HttpResponse("refused", status=400, content_type="text/plain")
    return HttpResponse(parsed.ack_body, content_type=parsed.ack_content_type)
