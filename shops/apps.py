from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopsConfig(AppConfig):
    # This module holds two configs, so Django picks neither for "shops" unless told.
    default = True
    name = "shops"
    verbose_name = _("Shop settings")

    def ready(self) -> None:
        from shops import checks, signin, two_factor  # noqa: F401  (checks, signal receivers)


class SigninRecordsConfig(AxesAppConfig):
    """django-axes, under a name the workbench shows in Chinese."""

    verbose_name = _("Sign-in security")
