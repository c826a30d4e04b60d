# durq: `make run` starts the whole system under Supervisor; `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: install test lint typecheck run start status stop bench bench-peers bench-worker \
	bench-targets screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole development toolchain (durq with every extra, pytest, ruff, mypy, …) in .venv.
install: $(STAMP)
	@echo "durq: .venv is ready; to put durq and its tools on your PATH: . .venv/bin/activate"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

# Each bench target rewrites its own sections of docs/benchmarks.md, keeps its raw numbers in
# var/bench-results/ and then refreshes the table of targets (bench/targets.py).
bench: $(STAMP)
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/targets.py

# durq against persist-queue, huey, litequeue, procrastinate and pgqueuer (their own venv
# under var/): drains, enqueue, pickup and the I/O-bound drain; writes docs/benchmarks.md and
# docs/drain.svg. ARGS=--quick for a smoke run (prints only), e.g. ARGS="--reps 2".
bench-peers: $(STAMP)
	$(BIN)/python bench/peers.py $(ARGS)
	$(BIN)/python bench/targets.py

# The worker process itself: memory at --concurrency 8/32/100, idle CPU and pickup latency,
# and the 4-process drain at concurrency 1-64, three interleaved runs each (about 5 minutes).
bench-worker: $(STAMP)
	$(BIN)/python bench/rss.py
	$(BIN)/python bench/pickup.py
	$(BIN)/python bench/concurrency.py --reps 3
	$(BIN)/python bench/targets.py

bench-targets: $(STAMP)
	$(BIN)/python bench/targets.py

# Retake the dashboard pictures that docs/dashboard.md and the README show (make test keeps
# its screenshots in temporary folders).
screenshots: $(STAMP)
	DURQ_SCREENSHOTS=docs $(BIN)/pytest -p no:cacheprovider \
		tests/dashboard/test_browser.py::test_screenshot_of_the_overview \
		tests/dashboard/test_phone.py::test_overview_on_a_phone

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# --- running the system under Supervisor (deploy/supervisord.conf) --------------------------
# Supervisor creates no directories; the config puts its socket, pid and logs here.
RUN_DIRS := var/log var/run
# The dashboard's port: `make run PORT=8001`. := and not ?=, so that a PORT in the environment
# (hosting platforms and other tools set one) does not move the dashboard by surprise.
PORT := 8000
# The checks around supervisord live here: already running? port taken? did every program
# reach RUNNING? It hands PORT to supervisord as $DURQ_PORT, which the config reads.
DURQCTL := $(BIN)/python deploy/durqctl.py

# Foreground: Ctrl-C makes supervisord send SIGTERM to every process and wait for the
# workers' warm shutdown (stopwaitsecs in the config) before it exits. durqctl prints where
# everything is, then execs supervisord -n in its place.
run: $(STAMP)
	@mkdir -p $(RUN_DIRS)
	@exec $(DURQCTL) run --port $(PORT)

# Daemonised: the same processes in the background; returns once every program is RUNNING
# (or has stopped them all again and says why). Then `make status`, `make stop`.
start: $(STAMP)
	@mkdir -p $(RUN_DIRS)
	@$(DURQCTL) start --port $(PORT)

# Without .venv nothing can be running (supervisord comes from it), and neither target should
# install anything just to say so.
status:
	@if [ -x $(BIN)/python ]; then $(DURQCTL) status; else echo "durq is not running."; fi

# Returns once supervisord has exited, i.e. after every worker's warm shutdown.
stop:
	@if [ -x $(BIN)/python ]; then $(DURQCTL) stop; else echo "durq is not running."; fi
