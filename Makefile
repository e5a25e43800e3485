# The two commands of README.md. Both run the same idempotent set-up first.
.PHONY: setup demo test

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/v2xfusion demo

# tests/runtime runs in a pytest process of its own, as the runtime runs without the tools: in one process
# after every other folder (torch, rclpy, NNCF, the OpenVINO extension all loaded) it died of a segfault
# with no Python traceback, which no subset of the folders reproduced.
test: setup
	OMP_NUM_THREADS=2 .venv/bin/python -m pytest --ignore=tests/runtime
	OMP_NUM_THREADS=2 .venv/bin/python -m pytest tests/runtime
