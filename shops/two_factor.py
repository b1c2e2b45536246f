"""The second sign-in factor: a TOTP authenticator app (django-otp), with recovery codes.

After the password, a user with an authenticator enters its 6-digit code (or a recovery code)
before any workbench page opens. Platform staff and shop owners must enrol one whenever
``WORKBENCH_REQUIRE_2FA`` is on (the default with debug off); anyone else may. Wrong codes
count as failed sign-ins (django-axes), so they lock like wrong passwords.
"""

from base64 import b32encode
from functools import cache
from urllib.parse import quote

import qrcode
import qrcode.image.svg
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_credentials
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import logout, user_logged_in, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from shops import signin
from shops.access import access_for
from shops.models import ShopMembership

RECOVERY_CODES = 10
# The session remembers, from the sign-in on, whether its user has an authenticator: the
# workbench then asks the database only while the second step is still open.
SESSION_KEY = "two_factor_enrolled"


def two_factor_required(user) -> bool:
    """Whether ``user`` must have a second factor: platform staff and shop owners, while
    ``WORKBENCH_REQUIRE_2FA`` is on."""
    if not settings.WORKBENCH_REQUIRE_2FA or not user.is_authenticated:
        return False
    access = access_for(user)
    return (
        user.is_superuser
        or (user.is_staff and access.is_platform)
        or ShopMembership.Role.OWNER in access.shop_roles.values()
    )


def _enrolled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@receiver(user_logged_in, dispatch_uid="two_factor_enrolled_at_sign_in")
def _remember_enrolment(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = _enrolled(user)


@cache
def _open_paths() -> frozenset[str]:
    """Pages a signed-in user reaches before the second step: the step itself and sign-out."""
    return frozenset(
        reverse(name)
        for name in ("admin:two_factor_verify", "admin:two_factor_setup", "admin:logout")
    )


class TwoFactorMiddleware:
    """Sends a signed-in user who has not passed the second step to it: to the code page if
    they have an authenticator, to enrolment if they must have one. After django-otp's
    ``OTPMiddleware``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not user.is_verified():
            target = self._second_step(request, user)
            if target is not None and request.path not in _open_paths():
                return redirect(f"{reverse(target)}?next={quote(request.get_full_path())}")
        return self.get_response(request)

    @staticmethod
    def _second_step(request, user) -> str | None:
        enrolled = request.session.get(SESSION_KEY)
        if enrolled is None:  # a session from before the second factor
            enrolled = request.session[SESSION_KEY] = _enrolled(user)
        if enrolled:
            return "admin:two_factor_verify"
        if two_factor_required(user):
            return "admin:two_factor_setup"
        return None


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"),
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        return "".join(self.cleaned_data["code"].split()).lower()


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _credentials(user) -> dict:
    return get_credentials(username=user.get_username())


def verify_view(request):
    """The second step after the password: a code from the authenticator, or a recovery
    code (each works once)."""
    user = request.user
    if user.is_verified():
        return HttpResponseRedirect(_next_url(request))
    if not _enrolled(user):  # e.g. a superuser removed the lost authenticator
        request.session[SESSION_KEY] = False
        return redirect("admin:two_factor_setup")
    if AxesProxyHandler.is_locked(request, _credentials(user)):
        logout(request)
        return signin.lockout_response(request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            return HttpResponseRedirect(_next_url(request))
        # A wrong code is a failed sign-in: it counts toward the lock like a wrong password.
        user_login_failed.send(sender=__name__, credentials=_credentials(user), request=request)
        if getattr(request, "axes_locked_out", False):
            logout(request)
            return signin.lockout_response(request)
        form.add_error("code", _("That code is not correct, or has been used."))
    context = {
        **admin.site.each_context(request),
        "title": _("Two-step sign-in"),
        "form": form,
        "next": _next_url(request),
    }
    return TemplateResponse(request, "admin/two_factor/verify.html", context)


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def recovery_codes_issue(*, user) -> list[str]:
    """Replace ``user``'s recovery codes with new ones; the codes are returned to be shown
    once (only their device keeps them)."""
    with transaction.atomic():
        device, _created = StaticDevice.objects.get_or_create(
            user=user, name="recovery", defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _n in range(RECOVERY_CODES)]
        StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def setup_view(request):
    """Enrol an authenticator app: scan the QR code (or type the key), confirm with a code;
    the recovery codes are then shown once. An enrolled user may issue new recovery codes."""
    user = request.user
    enrolled = _enrolled(user)
    if enrolled and not user.is_verified():
        return redirect("admin:two_factor_verify")
    context = {
        **admin.site.each_context(request),
        "title": _("Two-step sign-in"),
        "required": two_factor_required(user),
        "next": _next_url(request),
    }
    if enrolled:
        if request.method == "POST" and request.POST.get("action") == "recovery":
            context["recovery_codes"] = recovery_codes_issue(user=user)
        context["enrolled"] = True
        return TemplateResponse(request, "admin/two_factor/setup.html", context)

    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            request.session[SESSION_KEY] = True
            otp_login(request, device)
            context.update(enrolled=True, recovery_codes=recovery_codes_issue(user=user))
            return TemplateResponse(request, "admin/two_factor/setup.html", context)
        form.add_error("code", _("That code is not correct. Check the phone's clock."))
    context.update(
        form=form,
        qr_svg=_qr_svg(device.config_url),
        secret=b32encode(device.bin_key).decode(),
    )
    return TemplateResponse(request, "admin/two_factor/setup.html", context)


def urls():
    """The pages, in the workbench's own URLs (``admin:two_factor_*``)."""
    site = admin.site
    return [
        path("two-factor/", site.admin_view(setup_view), name="two_factor_setup"),
        path("two-factor/verify/", site.admin_view(verify_view), name="two_factor_verify"),
    ]
