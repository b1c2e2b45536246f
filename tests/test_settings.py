"""Production settings refuse to start without a real secret key and allowed hosts."""

import os
import secrets
import subprocess
import sys

import pytest

BOOT = "import django; django.setup(); print('booted')"
REAL_KEY = secrets.token_urlsafe(50)


def _boot(**env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, "-c", BOOT], env=environment, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "change-me" + REAL_KEY}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": REAL_KEY}, "DJANGO_ALLOWED_HOSTS"),
    ],
)
def test_debug_off_refuses_to_start_without_real_settings(env, complaint):
    result = _boot(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and complaint in result.stderr


def test_debug_off_starts_with_real_settings():
    result = _boot(
        DJANGO_DEBUG="0", DJANGO_SECRET_KEY=REAL_KEY, DJANGO_ALLOWED_HOSTS="workbench.example.com"
    )
    assert result.returncode == 0, result.stderr
    assert "booted" in result.stdout
