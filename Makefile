# durq: `make run` starts the whole system under Supervisor; `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

.PHONY: install test lint typecheck run start status stop bench bench-peers clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

bench: $(STAMP)
	$(BIN)/python bench/bench.py

# durq against persist-queue, huey, litequeue, procrastinate and pgqueuer (their own venv
# under var/); writes docs/benchmarks.md. ARGS=--quick for a smoke run.
bench-peers: $(STAMP)
	$(BIN)/python bench/peers.py $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# --- running the system under Supervisor (deploy/supervisord.conf) --------------------------
SUPERVISOR_CONF := deploy/supervisord.conf
# Supervisor creates no directories; the config puts its socket, pid and logs here.
RUN_DIRS := var/log var/run

# Foreground: Ctrl-C makes supervisord send SIGTERM to every process and wait for the
# workers' warm shutdown (stopwaitsecs in the config) before it exits.
run: $(STAMP)
	@mkdir -p $(RUN_DIRS)
	@echo "durq: starting the producer, the consumers and the dashboard under Supervisor ($(SUPERVISOR_CONF))"
	@echo "  dashboard: http://127.0.0.1:8000"
	@echo "  database:  $(CURDIR)/var/durq.db   (the demo ledger is in it too)"
	@echo "  logs:      $(CURDIR)/var/log/*.log (supervisord: $(CURDIR)/var/supervisord.log)"
	@echo "  watch:     DURQ_URL=sqlite:///$(CURDIR)/var/durq.db $(BIN)/durq stats --watch"
	@echo "  stop:      Ctrl-C"
	exec $(BIN)/supervisord -n -c $(SUPERVISOR_CONF)

# Daemonised: the same processes in the background; `make status`, `make stop`.
start: $(STAMP)
	@mkdir -p $(RUN_DIRS)
	$(BIN)/supervisord -c $(SUPERVISOR_CONF)
	@echo "durq: started; dashboard http://127.0.0.1:8000, logs in var/log/, 'make status', 'make stop'"

status:
	$(BIN)/supervisorctl -c $(SUPERVISOR_CONF) status

# Returns once supervisord has exited, i.e. after every worker's warm shutdown.
stop:
	@pid=$$(cat var/supervisord.pid 2>/dev/null); \
	$(BIN)/supervisorctl -c $(SUPERVISOR_CONF) shutdown && \
	while [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; do sleep 0.5; done
