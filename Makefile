# Two commands: `make run` (the demo, on embedded defaults) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.12 || (command -v pyenv >/dev/null && pyenv which python3.12 2>/dev/null) || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The sandbox courier's port; the demo's courier accounts follow it (COURIER_SANDBOX_URL).
SANDBOX_PORT ?= 8765
ONLY ?=

.PHONY: run test fuzz bench lint check format messages install clean

# Debug is off unless DJANGO_DEBUG=1: the demo, the tests and the checks run with it (the
# benchmarks set up their own production-like settings).
run test fuzz check messages: export DJANGO_DEBUG = 1
# The demo's settings follow its ports: the sandbox URL its accounts use, the URL pushes reach.
run: export PORT := $(PORT)
run: export SANDBOX_PORT := $(SANDBOX_PORT)

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), "Python 3.12 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml requirements.lock
	$(PY) -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py runall --check-ports --host $(HOST) --port $(PORT) --sandbox-port $(SANDBOX_PORT)
	$(PY) manage.py migrate_demo
	$(PY) manage.py seed_demo
	$(PY) manage.py runall --host $(HOST) --port $(PORT) --sandbox-port $(SANDBOX_PORT)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Schemathesis against the API's own OpenAPI schema with a real key (tests/intercepts/
# test_api_fuzz.py): FUZZ_EXAMPLES generated requests per operation, at least 1,000 in all.
# It needs PostgreSQL, the database the product runs on: DATABASE_URL=postgres://...
FUZZ_EXAMPLES ?= 100
fuzz: $(STAMP)
	@case "$$DATABASE_URL" in postgres*) ;; *) echo "make fuzz needs DATABASE_URL=postgres://..."; exit 2;; esac
	API_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) API_FUZZ_MIN_REQUESTS=1000 $(PY) -m pytest -q -p no:cacheprovider \
		tests/intercepts/test_api_fuzz.py

bench: $(STAMP)
	$(PY) -m tests.benchmarks $(ONLY)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

check: lint
	$(VENV)/bin/lint-imports
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

messages: $(STAMP)
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --ignore=tests --ignore="locale/*" --no-obsolete
	$(PY) manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var
