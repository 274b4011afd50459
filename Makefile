# fedflow: `make demo` and `make test` are the two set-up commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint proto demo serve bench bench-peers soak clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check fedflow peers tests bench
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check fedflow peers tests bench

# Regenerate the gRPC stubs in fedflow/v1 from proto/ (never hand-edit them).
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/fedflow/v1/*.proto

demo: $(STAMP)
	$(PY) -m fedflow.demo

serve: $(STAMP)
	$(VENV)/bin/fedflow serve --name local --listen 127.0.0.1:50051 --load peers/publishing.py --load peers/pipeline.py

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
