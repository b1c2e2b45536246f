"""``Idempotency-Key`` on writes: the same key with the same request replays the first successful
answer (with ``Idempotent-Replayed: true``); with another request it is refused (422); while the
first is still running it is refused (409). A refusal is not kept: it changed nothing, and the
same request may be tried again once its cause is fixed. Answers are kept
``API_IDEMPOTENCY_TTL_S`` (24 hours). A claim still running after ``API_IDEMPOTENCY_ABANDONED_S``
(its request died) is taken over by a retry of the same request.

"The same request" is the same method, path and body: a JSON body byte for byte, a multipart
body (a claim with its evidence) by its fields and its files' names and digests.

The key is claimed by inserting its row in its own transaction before any work, so two requests
in flight with one key cannot both pass: the unique index lets one through.
"""

import functools
import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response

from shops.api.errors import ApiError
from shops.models import ApiIdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


def _request_hash(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.get_full_path().encode())
    digest.update(b"\0")
    if _parses_multipart(request):
        digest.update(_form_fingerprint(request))
    else:
        digest.update(request._request.body)  # read before DRF parses it, so it stays readable
    return digest.hexdigest()


def _parses_multipart(request) -> bool:
    """A multipart body sent to a view that takes one (a view that does not never reads it)."""
    return request.content_type.lower().startswith("multipart/form-data") and any(
        parser.media_type == "multipart/form-data" for parser in request.parsers
    )


def _form_fingerprint(request) -> bytes:
    """A multipart body by what it says, not by its bytes: the boundary between its parts is
    the client's random choice, so the same request sent again differs byte for byte (and its
    files need not be held in memory). Its fields by name, each one's values in the order sent,
    and each file's name, size and SHA-256."""
    fields = request.POST  # parsed by the view's own parsers: files spooled to disk when large
    files = request.FILES
    said = {
        "fields": [[name, fields.getlist(name)] for name in sorted(fields)],
        "files": [
            [
                name,
                [
                    [upload.name, upload.size, _file_digest(upload)]
                    for upload in files.getlist(name)
                ],
            ]
            for name in sorted(files)
        ],
    }
    return json.dumps(said, separators=(",", ":")).encode()


def _file_digest(upload) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _claim(shop_id: int, key: str, request_hash: str) -> tuple[ApiIdempotencyRecord, bool]:
    """(record, True) when this request claimed the key and does the work, else the record
    that holds it and False."""
    expired = timezone.now() - timedelta(seconds=settings.API_IDEMPOTENCY_TTL_S)
    for _attempt in range(2):
        try:
            with transaction.atomic():
                record = ApiIdempotencyRecord.objects.create(
                    shop_id=shop_id, key=key, request_hash=request_hash
                )
            return record, True
        except IntegrityError:
            record = ApiIdempotencyRecord.objects.filter(shop_id=shop_id, key=key).first()
            if record is None:
                continue  # deleted meanwhile (a failed first attempt): claim it again
            if record.created_at < expired:
                # Past its keeping time, a key may be used afresh.
                ApiIdempotencyRecord.objects.filter(pk=record.pk).delete()
                continue
            if _abandoned(record) and record.request_hash == request_hash:
                # Its request died mid-way (a killed worker): a retry takes the claim over, with
                # the same record, so a service's once-only key finds what was already done.
                taken = ApiIdempotencyRecord.objects.filter(
                    pk=record.pk, status=record.status, created_at=record.created_at
                ).update(created_at=timezone.now())
                if taken:
                    return record, True
                continue
            return record, False
    raise ApiError(
        status_code=status.HTTP_409_CONFLICT,
        code="idempotency_in_progress",
        message=_("A request with this Idempotency-Key is still being processed."),
    )


def _abandoned(record: ApiIdempotencyRecord) -> bool:
    """Still running long after any request could have (the server's own timeouts are far
    shorter than ``API_IDEMPOTENCY_ABANDONED_S``)."""
    if record.status != ApiIdempotencyRecord.Status.RUNNING:
        return False
    limit = timezone.now() - timedelta(seconds=settings.API_IDEMPOTENCY_ABANDONED_S)
    return record.created_at < limit


def idempotent(view_method=None, *, required: bool = True):
    """Wrap a DRF view method (a POST) so it runs at most once per shop and Idempotency-Key.
    Creates require the key; other writes (``required=False``) honour it when sent."""
    if view_method is None:
        return functools.partial(idempotent, required=required)

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key and not required:
            return view_method(self, request, *args, **kwargs)
        if not key:
            raise ApiError(
                status_code=status.HTTP_400_BAD_REQUEST,
                code="idempotency_key_required",
                message=_("Send an Idempotency-Key header with every POST."),
            )
        if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            raise ApiError(
                status_code=status.HTTP_400_BAD_REQUEST,
                code="idempotency_key_invalid",
                message=_("The Idempotency-Key must be printable ASCII, at most 255 characters."),
            )
        shop_id = request.auth.shop_id
        request_hash = _request_hash(request)
        record, claimed_now = _claim(shop_id, key, request_hash)
        if not claimed_now:
            if record.request_hash != request_hash:
                raise ApiError(
                    status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                    code="idempotency_key_reused",
                    message=_("This Idempotency-Key was used with another request."),
                )
            if record.status == ApiIdempotencyRecord.Status.RUNNING:
                raise ApiError(
                    status_code=status.HTTP_409_CONFLICT,
                    code="idempotency_in_progress",
                    message=_("A request with this Idempotency-Key is still being processed."),
                )
            return Response(
                record.response_body,
                status=record.response_status,
                headers={REPLAYED_HEADER: "true"},
            )
        claimed = ApiIdempotencyRecord.objects.filter(pk=record.pk)
        # What the view passes on to a service's own once-only key: this use of the key, so
        # that the same key after its keeping time is a new request.
        request.idempotency_record_id = record.pk
        try:
            response = view_method(self, request, *args, **kwargs)
        except Exception as exc:
            try:
                response = self.handle_exception(exc)
            except Exception:
                claimed.delete()
                raise
        if not 200 <= response.status_code < 300:
            # A refusal did nothing, so nothing needs guarding: the key is freed, and a retry
            # once its cause is fixed (the agreement signed, the wallet topped up) does the work.
            claimed.delete()
            return response
        claimed.update(
            status=ApiIdempotencyRecord.Status.DONE,
            response_status=response.status_code,
            response_body=response.data,
        )
        return response

    return wrapper


def idempotency_records_purge() -> int:
    """Delete the answers past their keeping time (a beat task calls this)."""
    expired = timezone.now() - timedelta(seconds=settings.API_IDEMPOTENCY_TTL_S)
    deleted, _by_model = ApiIdempotencyRecord.objects.filter(created_at__lt=expired).delete()
    return deleted
