"""Sign-in: the lockout page django-axes shows, the login-password check of other forms, and
the idle timeout of sessions.

django-axes counts failed sign-ins per user and per address (``AXES_*`` in the settings). A
form that asks for the login password again (the PIN reset) checks it through
``login_password_confirm``, so its wrong guesses count toward the same lockout.
"""

import time

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import SESSION_KEY, authenticate, user_logged_in
from django.dispatch import receiver
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _


def lockout_response(request, original_response=None, credentials=None):
    """The page for a refused sign-in of a locked user or address: when to try again.

    Every refused try during the lock starts the cool-off again, so the lock ends one cool-off
    after this request.
    """
    retry_at = timezone.localtime(timezone.now() + settings.AXES_COOLOFF_TIME)
    context = {
        **admin.site.each_context(request),
        "title": _("Sign-in locked"),
        "retry_at": retry_at,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
    }
    return TemplateResponse(
        request,
        "admin/signin_locked.html",
        context,
        status=settings.AXES_HTTP_RESPONSE_CODE,
    ).render()


def login_password_confirm(*, request, password: str) -> bool:
    """Whether ``password`` is the signed-in user's login password, checked through the
    authentication backends: a wrong one counts as a failed sign-in, and a locked user (or
    address) is refused whatever the password."""
    user = request.user
    confirmed = authenticate(request, username=user.get_username(), password=password or "")
    return confirmed is not None and confirmed.pk == user.pk


SEEN_KEY = "idle_seen_at"


class IdleSessionMiddleware:
    """Sessions end ``SESSION_COOKIE_AGE`` seconds after their last request, not after their
    sign-in: a request pushes the end back by saving the session, at most once every
    ``SESSION_IDLE_REFRESH_SECONDS`` (a write on every request would cost a query each)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.get(SESSION_KEY) is not None:
            now = int(time.time())
            if now - session.get(SEEN_KEY, 0) >= settings.SESSION_IDLE_REFRESH_SECONDS:
                session[SEEN_KEY] = now  # modified: saved with a fresh expiry
        return response


@receiver(user_logged_in, dispatch_uid="idle_seen_at_sign_in")
def _seen_at_sign_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SEEN_KEY] = int(time.time())
