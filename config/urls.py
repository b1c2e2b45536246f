"""URL configuration: the admin is the workbench; couriers push to their own endpoints."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from intercepts.tracking.views import courier_push

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("couriers/push/<int:account_id>/", courier_push, name="courier-push"),
]
