"""One JSON shape for every API error: ``{"code", "message", "details"}``.

``code`` is stable for machines, ``message`` is in the request's language (Chinese unless the
client asks ``Accept-Language: en``), ``details`` carries per-field messages or the refused
eligibility rules.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.views import exception_handler


class ApiError(exceptions.APIException):
    """A refusal with its own code and details, raised by the apps' API views."""

    def __init__(self, *, status_code: int, code: str, message: str, details=None):
        super().__init__(message, code)
        self.status_code = status_code
        self.code = code
        self.details = details or {}


def api_exception_handler(exc, context):
    # Django's own 404 and permission refusals, as DRF's handler converts them, so that their
    # code is read from the converted exception.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        code, message, details = exc.code, str(exc.detail), exc.details
    elif isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", _("Some fields are not valid."), response.data
        if isinstance(details, list):
            details = {"non_field_errors": details}
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
        detail = getattr(exc, "detail", "")
        message = str(detail) if not isinstance(detail, (dict, list)) else _("The request failed.")
        details = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_s": int(exc.wait + 0.999)}
    response.data = {"code": code, "message": message, "details": details}
    return response


def not_found() -> ApiError:
    return ApiError(
        status_code=status.HTTP_404_NOT_FOUND, code="not_found", message=_("Not found.")
    )


@csrf_exempt  # like the API's own views: a key, not a cookie, is what a caller brings
def api_path_not_found(request, *args, **kwargs):
    """Any other path under /api/: a 404 in the API's own shape, not the workbench's page."""
    body = {"code": "not_found", "message": _("Not found."), "details": {}}
    return JsonResponse(body, status=status.HTTP_404_NOT_FOUND)
