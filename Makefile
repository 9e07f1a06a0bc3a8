PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install test test-fast lint demo bench bench-quick clean

install:  ## install nertool with a PyTorch build that suits this machine (CPU wheel where there is no GPU)
	@TORCH="$$($(PYTHON) scripts/torch_requirement.py)"; \
	if [ -n "$$TORCH" ]; then echo "installing PyTorch: $$TORCH"; $(PIP) install $$TORCH; fi
	$(PIP) install -e ".[dev]"

test:  ## the whole test suite (CI runs this; a few minutes on 2 CPU cores)
	$(PYTHON) -m pytest -q

test-fast:  ## every test that trains nothing (under a minute on 2 CPU cores)
	$(PYTHON) -m pytest -q -m "not slow"

lint:
	$(PYTHON) -m ruff check nertool tests bench scripts
	$(PYTHON) -m ruff format --check nertool
	$(PYTHON) -m mypy nertool

demo:
	nertool demo -o runs/demo

bench:  ## baselines and nertool measured in the same run; writes bench/results/*.json
	$(PYTHON) -m bench.run

bench-quick:
	$(PYTHON) -m bench.run --quick

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
