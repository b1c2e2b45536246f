"""Deployment defaults: debug off unless asked for, HTTPS settings, a Content-Security-Policy,
sessions that end when idle, and `check --deploy` clean with the production example."""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from django.test import override_settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent
REAL_KEY = secrets.token_urlsafe(50)


def _run(code_or_args, **env):
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "SECURE_", "SIGNIN_", "WORKBENCH_", "SESSION_"))
    }
    environment.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run(
        [sys.executable, *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _production_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    values["DJANGO_SECRET_KEY"] = REAL_KEY  # left empty in the example
    return values


SHOW = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.DEBUG, settings.WORKBENCH_REQUIRE_2FA)"
)


def test_debug_is_off_when_unset():
    result = _run(SHOW, DJANGO_SECRET_KEY=REAL_KEY, DJANGO_ALLOWED_HOSTS="example.com")
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_the_demo_settings_leave_the_second_factor_off():
    result = _run(SHOW, DJANGO_DEBUG="1")
    assert result.stdout.split() == ["True", "False"], result.stderr


def test_check_deploy_gives_no_warning_with_the_production_example():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], **_production_example()
    )
    assert (result.returncode, result.stderr.strip()) == (0, ""), result.stdout + result.stderr


def test_commands_in_a_bare_checkout_run_on_the_demo_defaults():
    result = _run(["manage.py", "check"])
    assert (result.returncode, result.stdout.strip()) == (
        0,
        "System check identified no issues (0 silenced).",
    ), result.stderr


def test_commands_where_a_secret_key_is_set_keep_debug_off():
    # A production environment's own key: no debug, so its real settings are demanded.
    result = _run(["manage.py", "check"], DJANGO_SECRET_KEY="short")
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY must be set to a random value" in result.stderr


def test_workbench_pages_carry_the_content_security_policy(world, login):
    response = login(world.finance).get(reverse("admin:index"))
    directives = dict(
        part.strip().partition(" ")[::2]
        for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert directives["script-src"] == "'self' 'unsafe-eval'"  # no inline script unless nonced
    assert (directives["frame-ancestors"], directives["object-src"]) == ("'none'", "'none'")


@override_settings(SESSION_COOKIE_AGE=1)
def test_idle_session_expires(world, login):
    client = login(world.finance)
    time.sleep(1.5)
    response = client.get(reverse("admin:index"))
    assert response["Location"].startswith(reverse("admin:login"))


@override_settings(SESSION_COOKIE_AGE=2, SESSION_IDLE_REFRESH_SECONDS=0)
def test_a_session_in_use_stays_open(world, login):
    client = login(world.finance)
    statuses = []
    for _n in range(3):
        time.sleep(1)
        statuses.append(client.get(reverse("admin:index")).status_code)
    assert statuses == [200, 200, 200]


def test_sessions_last_two_hours_idle_by_default(settings):
    assert settings.SESSION_COOKIE_AGE == 2 * 60 * 60


def test_check_deploy_warns_when_two_step_sign_in_is_switched_off():
    from shops.checks import two_factor_required

    with override_settings(DEBUG=False, WORKBENCH_REQUIRE_2FA=False):
        assert [message.id for message in two_factor_required(None)] == ["shops.W001"]
    with override_settings(DEBUG=False, WORKBENCH_REQUIRE_2FA=True):
        assert two_factor_required(None) == []
