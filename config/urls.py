"""URL configuration: the admin is the workbench; couriers push to their own endpoints."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from intercepts.tracking.views import courier_push
from shops.api.errors import api_path_not_found

# The home page is the workbench, not Django's "Site administration".
admin.site.index_title = _("After-sales workbench")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("couriers/push/<int:account_id>/", courier_push, name="courier-push"),
    # The ERP API: each app's own routes; the schema and its docs page need no key.
    path("api/v1/", include("intercepts.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("api/v1/", include("claims.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", api_path_not_found),
]
