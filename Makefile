# One command sets up and runs a demo load test; one more sets up and runs the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup bytecode demo app-demo test lint format lock clean

$(STAMP): pyproject.toml requirements.lock lifecycle/guard.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)" % sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e '.[test]'
	# A Ctrl-C while Locust itself is still importing ends in one line, not a traceback (lifecycle/guard.py).
	$(PY) -m lifecycle.guard >/dev/null
	touch $(STAMP)

setup: $(STAMP) bytecode

# Compiled once here: with PYTHONDONTWRITEBYTECODE set (as on CI), every start would compile the suite.
bytecode: $(STAMP)
	@$(PY) -m compileall -q -x '/(\.venv|results|\.git)/' .

## demo: a 30-second headless load test against the bundled emulator; prints the report path
demo: $(STAMP) bytecode
	$(VENV)/bin/locust --headless -u 10 -r 5 -t 30s

## app-demo: the example moderation service (examples/) under a ramp, its worker pool at 4 then at
## 32, each with a report that splits its latency into its own time and the model's; then compared
APP_RUN = $(VENV)/bin/locust --headless --mix app=1 --app-expect-json verdict \
	--shape ramp --peak-users 24 --ramp-up 60s --hold 10s --app-url 'http://127.0.0.1:{port}/moderate'
app-demo: $(STAMP) bytecode
	$(APP_RUN) --app-command '$(PY) -m examples.moderation_service --port {port} --pool 4' --results-dir results/app-pool4
	$(APP_RUN) --app-command '$(PY) -m examples.moderation_service --port {port} --pool 32' --results-dir results/app-pool32
	$(PY) -m reports compare results/app-pool4 results/app-pool32

## test: lint and the whole test suite
test: $(STAMP) bytecode
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## lock: regenerate requirements.lock from pyproject.toml (needs network to the package index)
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --extra test --strip-extras --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) results
