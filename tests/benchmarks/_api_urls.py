"""The app's URLs plus a trivial API view, installed as ROOT_URLCONF only inside the API
benchmark (served by ``_api_wsgi``).

The trivial view is the yardstick for creating an intercept: an ordinary DRF view behind the
same key authentication, permission, throttle and JSON renderer as every ``/api/v1/`` view, that
answers a constant. The product has no such view, and needs none.
"""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as app_urlpatterns


class Trivial(APIView):
    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    *app_urlpatterns,
    path("bench/api-trivial/", Trivial.as_view(), name="bench-api-trivial"),
]
