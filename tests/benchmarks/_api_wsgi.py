"""The WSGI application for the API benchmark's web server: the app plus the trivial API view
(``_api_urls``), served by gunicorn through Django's handler and middleware as ``config.wsgi``
serves the app."""

import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)
settings.ROOT_URLCONF = "tests.benchmarks._api_urls"

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402  (after the URLs are set)

application = WSGIHandler()
