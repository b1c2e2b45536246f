"""The app's URLs plus a trivial view, installed as ROOT_URLCONF only inside the tracking benchmark.

The trivial view is the yardstick for the push endpoint: the same server, client and form body,
Django's whole request handling and no work at all, so ``push / trivial`` compares a push
(verified, stored and applied, behind the same middleware) with the cheapest page Django can
serve.
"""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as app_urlpatterns


@csrf_exempt  # posted to like the push endpoint, which couriers call without a CSRF token
def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [*app_urlpatterns, path("bench/trivial/", trivial, name="bench-trivial")]
