# Two commands for a newcomer: `make demo` (venv + install + main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Real data: ../shared/data on the offline machines, ./data otherwise (torchvision downloads there).
REPROG_DATA_DIR ?= $(if $(wildcard ../shared/data/cifar10),$(abspath ../shared/data),$(CURDIR)/data)
export REPROG_DATA_DIR

.PHONY: install demo test test-all bench tensorboard clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The main job: train a resnet20 victim on CIFAR-10 at a reduced CPU budget (2 epochs, ~5 min on 2 cores).
demo: install
	$(BIN)/python train.py experiment=victim_cifar10 trainer.max_epochs=2
	@echo "TensorBoard: $(BIN)/tensorboard --logdir outputs"

test: install
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m "slow or not slow"

bench: install
	$(BIN)/python bench/victim_throughput.py

tensorboard: install
	$(BIN)/tensorboard --logdir outputs

clean:
	rm -rf $(VENV) .pytest_cache
