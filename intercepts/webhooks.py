"""Courier pushes: verified by the account's protocol, stored raw, applied idempotently.

Each gateway account has its own push URL (``/couriers/push/<account id>/``) so that a push is
verified with that account's secrets. The raw body is stored before anything else; a push that
fails verification is stored as refused and answered 400; a push that verifies is applied
(repeats change nothing) and answered with the body its protocol expects.
"""

import logging

from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from couriers.adapters import get_adapter
from couriers.adapters.base import PushRejected
from couriers.models import CourierAccount
from intercepts.models import CourierPush, Parcel
from intercepts.tracking import parcel_apply_scans

logger = logging.getLogger(__name__)


def _apply_tracking(account: CourierAccount, results, source: str) -> int:
    courier_ids = list(account.couriers.values_list("pk", flat=True))
    updated = 0
    for result in results:
        if not result.scans:
            continue
        parcel_ids = Parcel.objects.filter(
            waybill_no=result.waybill_no, courier_id__in=courier_ids
        ).values_list("pk", flat=True)
        for parcel_id in parcel_ids:
            parcel_apply_scans(parcel_id=parcel_id, scans=result.scans, source=source)
            updated += 1
    return updated


@csrf_exempt
@require_POST
def courier_push(request, account_id: int):
    account = get_object_or_404(CourierAccount, pk=account_id, is_active=True)
    body = request.body.decode("utf-8", errors="replace")
    push = CourierPush.objects.create(account=account, body=body, status=CourierPush.Status.REFUSED)
    adapter = get_adapter(account.config())
    try:
        result = adapter.parse_push({key: request.POST.get(key) for key in request.POST})
    except PushRejected as exc:
        CourierPush.objects.filter(pk=push.pk).update(error=str(exc)[:255])
        logger.warning("Refused a %s push (#%s): %s", account.protocol, push.pk, exc)
        return HttpResponseBadRequest("refused", content_type="text/plain")
    try:
        with transaction.atomic():
            updated = _apply_tracking(account, result.tracking, source=account.protocol)
    except Exception as exc:
        CourierPush.objects.filter(pk=push.pk).update(
            status=CourierPush.Status.FAILED, error=str(exc)[:255]
        )
        logger.exception("Failed to apply a %s push (#%s)", account.protocol, push.pk)
        # Not acknowledged: the gateway sends it again, and applying it again is harmless.
        return HttpResponse("error", status=500, content_type="text/plain")
    CourierPush.objects.filter(pk=push.pk).update(
        status=CourierPush.Status.ACCEPTED, parcels_updated=updated
    )
    return HttpResponse(result.ack_body, content_type=result.ack_content_type)
