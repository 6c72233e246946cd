# simreal: `make train` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TASK ?= quadruped-flat
RUN_DIR ?= runs/$(TASK)

.PHONY: install train test lint format clean

# the C++ core's pybind11 module is built by the editable install: rebuild when its sources change
CORE_SOURCES := $(wildcard cpp_ext/src/* cpp_ext/include/simreal_rt/* cpp_ext/python/*)

$(STAMP): setup.py pyproject.toml $(CORE_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch 2.13.0 lies on disk: pin it so nothing downloads a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

train: install
	$(BIN)/simreal train --task $(TASK) --run-dir $(RUN_DIR)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info simreal_rt*.so
