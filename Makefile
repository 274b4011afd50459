# fedflow: `make demo` and `make test` are the two set-up commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv postgres-deps test lint proto demo serve bench bench-peers soak certs clean

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
test: $(STAMP) postgres-deps
	$(PY) -m ruff check fedflow peers tests bench
	$(PY) tests/pg_server.py -- $(PY) -m pytest -q

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

# DBOS beside fedflow (workloads 1 and 2), in its own venv so dbos never becomes our dependency.
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
$(PEERS_STAMP): pyproject.toml
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install --quiet dbos . || { echo "bench-peers: cannot install dbos (and fedflow) from PyPI into $(PEERS_VENV); check that PyPI is reachable, then rerun make bench-peers" >&2; exit 1; }
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python bench/dbos_workloads.py

# The long variants of the hardening tests: the kill loop (2000 flows, 15 SIGKILLs), ten times
# the fuzz cases, more flows per peer fault. `make test` runs the quick variants.
soak: $(STAMP)
	FEDFLOW_SOAK=1 $(PY) -m pytest -q tests/test_soak.py tests/test_fuzz.py tests/test_faults.py

# A local test CA and one mTLS certificate per name (IP 127.0.0.1 and DNS localhost in each), with openssl:
#   make certs CERTS_DIR=certs CERT_NAMES="a b client"   (CERT_SANS=IP:10.0.0.5,DNS:a.lan adds names)
CERTS_DIR ?= certs
CERT_NAMES ?= a b c client
certs: $(STAMP)
	$(PY) -m fedflow.cli.certs $(CERTS_DIR) $(CERT_NAMES)

clean:
	rm -rf $(VENV) build *.egg-info
