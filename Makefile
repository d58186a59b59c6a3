# denoiselab: `make demo` runs the whole method on a generated corpus; `make test` runs the checks.
# Both create .venv on first use (python3 >= 3.10; torch comes from pip, CPU or CUDA build).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,onnx,dnsmos,demo,sweep,noisereduce,rooms

.PHONY: install lint test test-fast demo model device-model bench clean-demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

# Static checks: pyflakes, pycodestyle, import order, bugbear (config in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check src tests benchmarks

# Everything, the slow end-to-end runs included: about 7 minutes on 2 cores (11 one test at a time) with
# TEST_JOBS pytest-xdist workers of one thread each, a test file per worker so its fixtures are made once
# (TEST_JOBS=0: one process, as before). The 15 slowest are listed so a test that grows shows up in every
# CI log.
TEST_JOBS ?= 2
PYTEST := OMP_NUM_THREADS=1 WANDB_MODE=offline $(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile
test: lint
	$(PYTEST) --durations=15

# The inner loop: everything but the tests marked slow.
test-fast: lint
	$(PYTEST) -m "not slow"

demo: install
	WANDB_MODE=offline $(PY) -m denoiselab.cli.demo

# Train the default model on ../shared/data (recipe and step budget: conf/experiment/default_model.yaml, about
# 94 minutes on 2 CPU cores) and export its monitored-best checkpoint into the package as float16 weights.
model: install
	WANDB_MODE=offline $(PY) -m denoiselab.cli.train experiment=default_model hydra.run.dir=outputs/default_model auto_resume=true
	$(PY) -m denoiselab.cli.export --ckpt outputs/default_model --out src/denoiselab/pretrained/default.pt --half --force

# The device-evaluation model (only the room counts as noise): 12 CPU-minutes of fine-tuning the default model
# with data/device_path=random (conf/experiment/device_eval.yaml), its final state exported (val SI-SDR cannot
# see whether device defects are kept, so the monitored best is not the criterion here).
device-model: install
	WANDB_MODE=offline $(PY) -m denoiselab.cli.train experiment=device_eval hydra.run.dir=outputs/device_eval auto_resume=true
	$(PY) -m denoiselab.cli.export --ckpt outputs/device_eval/checkpoints/last.ckpt --out src/denoiselab/pretrained/device_eval.pt --half --force

bench: install
	$(PY) benchmarks/run_all.py

clean-demo:
	rm -rf data/demo outputs/demo
