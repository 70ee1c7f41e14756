# Bootstrap a virtual environment with the CPU build of torch, then run things in it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo lint docs test test-fast bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Pin torch first so that no dependency pulls another (multi-GB) build. Where pip finds a CPU wheel
	# (a local wheel folder, or PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu) it takes that one.
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev,plot,study,joblib,ray,mujoco,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m maxent_components.recipes.sql demo=true

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The documentation site, in strict mode: a broken link or anchor, a missing reference or a docstring
# warning fails the build. The pages' Python examples run in the tests (tests/test_docs_pages.py).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

test: lint docs
	$(PY) -m pytest -q -n 2 --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	# The SAC comparison needs Stable-Baselines3 (the bench extra); keep the pinned torch.
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)" -e ".[bench]"
	$(PY) benchmarks/update_step.py --threads 1 2
	$(PY) benchmarks/update_step.py --threads 1 2 --compile default
	$(PY) benchmarks/compile_scope.py --threads 1
	$(PY) benchmarks/sac_update.py --threads 1 2 --contenders library plain torchrl sb3
	$(PY) benchmarks/loop_speed.py --algo sac --threads 1
	$(PY) benchmarks/loop_speed.py --algo soft_dqn --threads 1 --frames 3000
	$(PY) benchmarks/loop_speed.py --algo sql --threads 1
	$(PY) benchmarks/loop_speed.py --algo discrete_sac --threads 1 --frames 3000
	$(PY) benchmarks/loop_speed.py --algo pcl --threads 1 --frames 3000
	$(PY) benchmarks/replay_draw.py --threads 1
	$(PY) benchmarks/replay_prefetch.py --threads 1
	$(PY) benchmarks/act_step.py --threads 1
	$(PY) benchmarks/env_step.py --threads 1

clean:
	rm -rf $(VENV) outputs multirun site .pytest_cache .hypothesis
