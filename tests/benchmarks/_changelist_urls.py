"""The app's URLs plus the list page's floor, installed as ROOT_URLCONF only inside the
changelist benchmark.

The floor is what any signed-in page that runs a list page's SQL must cost: Django's request
handling with the app's middleware, the session and the user, then exactly the page's other
statements through Django's cursor, answered with the page's own bytes. Nothing of the admin
runs: no changelist, no model instances, no rendering. ``floor / raw SQL`` is the part of the
page's ratio that the framework's request cycle takes before the list does any work.
"""

from django.db import connection
from django.http import HttpResponse, HttpResponseForbidden
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns


class Floor:
    """What the floor view replays: set by the benchmark before it times the view."""

    statements: list[str] = []
    body: bytes = b""


def floor(request):
    user = request.user  # loads the session and the user, as the admin's own check does
    if not (user.is_active and user.is_staff):
        return HttpResponseForbidden()
    with connection.cursor() as cursor:
        for sql in Floor.statements:
            cursor.execute(sql)
            if cursor.description is not None:
                cursor.fetchall()
    return HttpResponse(Floor.body)


urlpatterns = [*app_urlpatterns, path("bench/floor/", floor, name="bench-floor")]
