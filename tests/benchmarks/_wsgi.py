"""The WSGI application for the tracking benchmark's web server: the app plus the trivial view.

Served by gunicorn, as in production, in worker processes of their own; the URLs come from
``_tracking_urls`` so that the push endpoint and its yardstick share server and client. Pushes
go through Django's handler and middleware, as ``config.wsgi`` serves them.
"""

import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)
settings.ROOT_URLCONF = "tests.benchmarks._tracking_urls"

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402  (after the URLs are set)

application = WSGIHandler()
