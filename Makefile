# The two commands of README.md. Both run the same idempotent set-up first.
.PHONY: setup demo test

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/v2xfusion demo

test: setup
	OMP_NUM_THREADS=2 .venv/bin/python -m pytest
