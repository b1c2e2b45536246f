"""WSGI entry point: Django, with courier pushes answered in front of it."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
_django = get_wsgi_application()

from intercepts.webhooks import with_push_endpoint  # noqa: E402  (needs the apps loaded)

application = with_push_endpoint(_django)
