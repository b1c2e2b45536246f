from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InterceptsConfig(AppConfig):
    name = "intercepts"
    verbose_name = _("After-sales")

    def ready(self) -> None:
        from intercepts.pgarrays import register_lookups

        register_lookups()
