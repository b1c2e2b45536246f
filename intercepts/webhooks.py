"""Courier pushes: verified by the account's protocol, stored raw, answered at once.

Each gateway account has its own push URL (``/couriers/push/<account id>/``) so that a push is
verified with that account's secrets. A push that fails verification is stored as refused and
answered 400; one that verifies is stored as received and answered with the body its protocol
expects, and applied in bulk right after by a drain (``intercepts.pushes``): gateways expect a
quick answer and send again what is not answered, and applying a push twice changes nothing.
"""

import logging
import time

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpResponse, HttpResponseBadRequest
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


@csrf_exempt
@require_POST
def courier_push(request, account_id: int):
    account = _active_account(account_id)
    body = request.body.decode("utf-8", errors="replace")
    try:
        parsed = push_receive(account=account, body=body, content_type=request.content_type)
    except PushRejected as exc:
        logger.warning("Refused a %s push: %s", account.protocol, exc)
        return HttpResponseBadRequest("refused", content_type="text/plain")
    return HttpResponse(parsed.ack_body, content_type=parsed.ack_content_type)
