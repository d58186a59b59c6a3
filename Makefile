# denoiselab: `make demo` runs the whole method on a generated corpus; `make test` runs the tests.
# Both create .venv on first use (python3 >= 3.10; torch comes from pip, CPU or CUDA build).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,onnx,dnsmos,demo,sweep,noisereduce

.PHONY: install test demo model bench clean-demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

test: install
	WANDB_MODE=offline $(PY) -m pytest -q

demo: install
	WANDB_MODE=offline $(PY) -m denoiselab.demo

# Train the default model on ../shared/data (CPU time budget in conf/experiment/default_model.yaml)
# and export it into the package.
model: install
	WANDB_MODE=offline $(PY) -m denoiselab.train experiment=default_model hydra.run.dir=outputs/default_model auto_resume=true
	$(PY) -m denoiselab.export --ckpt outputs/default_model/checkpoints/last.ckpt --out src/denoiselab/pretrained/default.pt --half

bench: install
	$(PY) benchmarks/run_all.py

clean-demo:
	rm -rf data/demo outputs/demo
