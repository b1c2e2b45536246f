"""Deployment checks of the sign-in settings (``manage.py check --deploy``)."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def two_factor_required(app_configs, **kwargs):
    if settings.DEBUG or getattr(settings, "WORKBENCH_REQUIRE_2FA", True):
        return []
    return [
        checks.Warning(
            "Two-step sign-in is not required while debug is off: platform staff and shop "
            "owners could sign in with a password alone.",
            hint="Remove WORKBENCH_REQUIRE_2FA=0 from the production environment.",
            id="shops.W001",
        )
    ]
