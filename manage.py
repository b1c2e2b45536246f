#!/usr/bin/env python
"""Django's command-line utility."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # A checkout with no production settings at all (no secret key) runs its commands on the
    # embedded demo defaults, debug on, as `make run` does. Where a secret key is set, debug
    # stays off unless DJANGO_DEBUG=1, and the web app (gunicorn) never passes through here.
    if "DJANGO_SECRET_KEY" not in os.environ:
        os.environ.setdefault("DJANGO_DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
