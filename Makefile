# fedflow: `make demo` and `make test` are the two set-up commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv postgres-deps test lint proto demo serve bench bench-peers soak chaos certs clean chromium screenshots

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The PostgreSQL server binaries the tests run a throwaway server with (Debian's package).
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "postgres-deps: PostgreSQL server binaries missing; installing Debian's postgresql with apt-get"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q postgresql; \
	  else sudo apt-get update -q && sudo apt-get install -y -q postgresql; fi; }

# pg_server.py starts a throwaway PostgreSQL, exports FEDFLOW_TEST_POSTGRES, runs pytest, stops it.
test: $(STAMP) postgres-deps chromium
	$(PY) -m ruff check fedflow peers tests bench
	$(PY) tests/pg_server.py -- $(PY) -m pytest -q

# The console's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download cannot work here): install the package when it is missing, and say so.
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { echo "chromium: $(CHROMIUM) is missing; installing Debian's chromium package with apt-get (the console's browser tests need it)"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@test -x $(CHROMIUM) || { echo "chromium: still no $(CHROMIUM); install Debian's chromium package by hand" >&2; exit 1; }

# docs/console-*.png: each console page, from a demo engine, in headless Chromium.
screenshots: $(STAMP) chromium
	$(PY) tests/console_screens.py

lint: $(STAMP)
	$(PY) -m ruff check fedflow peers tests bench

# Regenerate the gRPC stubs in fedflow/v1 from proto/ (never hand-edit them).
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/fedflow/v1/*.proto

demo: $(STAMP)
	$(PY) -m fedflow.cli.demo
	@echo
	@echo 'fedflow lives in .venv/bin. Put it on your PATH with:   . .venv/bin/activate'
	@echo 'or call it by its path:                                .venv/bin/fedflow --help'

serve: $(STAMP)
	$(VENV)/bin/fedflow serve --name local --listen 127.0.0.1:50051 --load peers/publishing.py --load peers/pipeline.py

bench: $(STAMP) postgres-deps
	$(PY) bench/run.py

# DBOS beside fedflow (workloads 1 and 2 on SQLite and on PostgreSQL, and 1,000 sleeping flows), in its own venv so dbos never becomes our dependency.
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
$(PEERS_STAMP): pyproject.toml
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet dbos '.[postgres]' || { echo "bench-peers: cannot install dbos (and fedflow) from PyPI into $(PEERS_VENV); check that PyPI is reachable, then rerun make bench-peers" >&2; exit 1; }
	touch $(PEERS_STAMP)

# The PostgreSQL part runs both sides on FEDFLOW_TEST_POSTGRES, or on a throwaway server (tests/pg_server.py).
bench-peers: $(PEERS_STAMP) postgres-deps
	@if [ -n "$$FEDFLOW_TEST_POSTGRES" ]; then $(PEERS_VENV)/bin/python bench/dbos_workloads.py; \
	else $(PEERS_VENV)/bin/python tests/pg_server.py -- $(PEERS_VENV)/bin/python bench/dbos_workloads.py; fi

# The long variants of the hardening tests: the kill loop (2000 flows, 15 SIGKILLs), ten times
# the fuzz cases, more flows per peer fault. `make test` runs the quick variants.
soak: $(STAMP)
	FEDFLOW_SOAK=1 $(PY) -m pytest -q tests/test_soak.py tests/test_fuzz.py tests/test_faults.py

# Three instances as three hosts (network namespaces, root needed), links cut and processes killed
# for CHAOS_ROUNDS rounds (20); prints the figures per round, exits 1 on any loss. `make test` runs 1 round.
CHAOS_ROUNDS ?= 20
chaos: $(STAMP)
	cd tests && CHAOS_ROUNDS=$(CHAOS_ROUNDS) ../$(PY) -m chaos.run

# A local test CA and one mTLS certificate per name (IP 127.0.0.1 and DNS localhost in each), with openssl:
#   make certs CERTS_DIR=certs CERT_NAMES="a b client"   (CERT_SANS=IP:10.0.0.5,DNS:a.lan adds names)
CERTS_DIR ?= certs
CERT_NAMES ?= a b c client
certs: $(STAMP)
	$(PY) -m fedflow.cli.certs $(CERTS_DIR) $(CERT_NAMES)

clean:
	rm -rf $(VENV) build *.egg-info
