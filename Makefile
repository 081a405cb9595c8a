PY ?= python

.PHONY: install check lint types test test-fast bench schema docs

install:
	$(PY) -m pip install -e '.[test]'

check: lint types test

lint:
	ruff check .
	ruff format --check .

types:
	mypy

test:
	$(PY) -m pytest -q

# The fast set: everything except the end-to-end training runs.
test-fast:
	$(PY) -m pytest -q -m "not slow"

bench:
	$(PY) bench/compile.py --quick
	$(PY) bench/kd_loop.py --quick
	$(PY) bench/quant.py --quick
	$(PY) bench/prune_vs_torch_pruning.py --quick
	$(PY) bench/prune_zoo.py --quick
	$(PY) bench/orthogonality.py --quick
	$(PY) bench/gradual.py --quick

schema:
	$(PY) -m compiler.plan --schema docs/plan.schema.json
