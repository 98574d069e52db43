# Two commands for a new user (see README.md):
#   make demo   set everything up, then run the demo end to end
#   make test   set everything up, then run the whole test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test bench lint clean

$(BIN)/fedrisk: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: a looser range would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(BIN)/fedrisk

demo: setup
	$(BIN)/fedrisk demo

test: setup
	# One worker per core (at most 4: each imports torch, Flower and TenSEAL), each test file
	# on one worker (pytest-xdist).
	$(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile

bench: setup
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) fedrisk-demo .pytest_cache
