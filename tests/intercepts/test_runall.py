"""``make run``'s ports: one variable moves each server, and a taken port says which to set."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _setting(name: str, **env: str) -> str:
    """A setting as a fresh process reads it from this environment."""
    environ = {k: v for k, v in os.environ.items() if k not in ("COURIER_SANDBOX_URL", "SITE_URL")}
    code = f"from django.conf import settings; print(settings.{name})"
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=PROJECT,
        env={**environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_the_sandbox_url_and_the_push_url_follow_the_ports():
    assert _setting("COURIER_SANDBOX_URL", SANDBOX_PORT="9911") == "http://127.0.0.1:9911"
    assert _setting("SITE_URL", PORT="8077") == "http://127.0.0.1:8077"


def test_make_run_gives_its_ports_to_every_step(tmp_path):
    """``SANDBOX_PORT=... make run``: runall gets the port, and migrate_demo and seed_demo (whose
    settings build the demo accounts' URLs) see it too."""
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\necho "$SANDBOX_PORT $PORT $*"\n')
    python.chmod(0o755)
    stamp = tmp_path / "installed"  # newer than the fake python: nothing is installed
    stamp.touch()
    ran = subprocess.run(
        ["make", "run", f"STAMP={stamp}", f"PY={python}"],
        cwd=PROJECT,
        env={**os.environ, "SANDBOX_PORT": "9911", "PORT": "8077"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    steps = [line for line in ran.splitlines() if line.startswith("9911 ")]
    assert steps == [
        # The ports are checked before anything points the demo's accounts at them.
        "9911 8077 manage.py runall --check-ports --host 127.0.0.1 --port 8077 --sandbox-port 9911",
        "9911 8077 manage.py migrate_demo",
        "9911 8077 manage.py seed_demo",
        "9911 8077 manage.py runall --host 127.0.0.1 --port 8077 --sandbox-port 9911",
    ]


@pytest.mark.parametrize("taken", ["PORT", "SANDBOX_PORT"])
def test_a_taken_port_is_one_line_naming_the_variable(taken):
    ports = {"PORT": _free_port(), "SANDBOX_PORT": _free_port()}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[taken]))
        holder.listen()
        finished = subprocess.run(
            [
                sys.executable, "manage.py", "runall",
                "--port", str(ports["PORT"]), "--sandbox-port", str(ports["SANDBOX_PORT"]),
                "--traffic-every", "0",
            ],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    assert finished.returncode != 0
    assert finished.stdout == ""
    [line] = finished.stderr.strip().splitlines()
    suggested = int(re.fullmatch(rf".*\(make run {taken}=(\d+)\)\.", line).group(1))
    assert line == (
        f"CommandError: Port {ports[taken]} on 127.0.0.1 is already in use; set {taken} to a "
        f"free port (make run {taken}={suggested})."
    )
    assert suggested > ports[taken] and suggested not in ports.values()


def test_the_port_suggested_is_free_and_not_the_other_servers():
    """The next port is taken too, and the one after is the sandbox's: the hint skips both."""
    from intercepts.management.commands.runall import free_port_after, port_taken

    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        first.listen()
        base = first.getsockname()[1]
        try:
            second.bind(("127.0.0.1", base + 1))
        except OSError:
            pytest.skip("the port after a random one is in use here")
        second.listen()
        assert port_taken("127.0.0.1", base) and port_taken("127.0.0.1", base + 1)
        suggested = free_port_after("127.0.0.1", base, avoid={base + 2})
    assert suggested is not None and suggested > base + 2


def test_a_seeded_demo_is_not_repointed_when_a_port_is_taken(tmp_path):
    """``make run`` checks the ports first: a second run on a taken port stops before
    seed_demo would point the running demo's accounts at a sandbox that never starts."""
    stamp = tmp_path / "installed"  # nothing to install
    stamp.touch()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        finished = subprocess.run(
            ["make", "run", f"STAMP={stamp}", f"PORT={taken}",
             f"SANDBOX_PORT={_free_port()}"],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "VAR_DIR": str(tmp_path)},
        )  # fmt: skip
    assert finished.returncode != 0
    assert "migrate_demo" not in finished.stdout and "seed_demo" not in finished.stdout
    assert "set PORT to a free port" in finished.stderr
