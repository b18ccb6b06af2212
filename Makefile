# Two commands for a newcomer: `make demo` (venv + install + main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Real data: ../shared/data on the offline machines, ./data otherwise (torchvision downloads there).
REPROG_DATA_DIR ?= $(if $(wildcard ../shared/data/cifar10),$(abspath ../shared/data),$(CURDIR)/data)
export REPROG_DATA_DIR

.PHONY: install demo lint typecheck test test-all docs bench gpu-wheels gpu-data gpu-check tensorboard clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	# the reference our attacks are checked against; --no-deps: its requests~=2.25 pin (unused by the
	# attacks) would force idna < 3, which the rest of the stack does not accept
	$(BIN)/pip install -q --no-deps -c constraints.txt torchattacks
	touch $@

install: $(VENV)/.installed

# The main job, end to end at a reduced CPU budget: train a resnet20 victim on CIFAR-10 (3 epochs), freeze it, and
# reprogram it into an MNIST classifier (4 epochs) with the project's best recipe: the digit fills the canvas inside
# tanh(W + a * x), a learned per pixel (experiment=reprogram_mnist_scale), read out by a learned linear label map.
DEMO ?= outputs/demo
demo: install
	$(BIN)/python train.py experiment=victim_cifar10 trainer.max_epochs=3 hydra.run.dir=$(DEMO)/victim
	$(BIN)/python train.py experiment=reprogram_mnist_scale mapping=linear trainer.max_epochs=4 \
		hydra.run.dir=$(DEMO)/program victim.ckpt_path=$(DEMO)/victim/victim.safetensors
	@$(BIN)/python -c "import json; m = json.load(open('$(DEMO)/program/metrics.json'))['metrics']; \
		print(f\"\nMNIST test accuracy through the frozen CIFAR-10 victim: {m['test/acc']:.2%}\")"
	@echo "Program: $(DEMO)/program/program.safetensors   TensorBoard: $(BIN)/tensorboard --logdir $(DEMO)"
	@echo "The same program read out by the fixed first-k map (victim class t = digit t):"
	@echo "  $(BIN)/python train.py experiment=reprogram_mnist_scale trainer.max_epochs=2 victim.ckpt_path=$(DEMO)/victim/victim.safetensors"
	@echo "The paper's masked program (P = tanh(W) * M around a 14-px digit) through the same victim:"
	@echo "  $(BIN)/python train.py experiment=reprogram_mnist trainer.max_epochs=2 victim.ckpt_path=$(DEMO)/victim/victim.safetensors"

# ruff's lint rules and its formatter (pyproject.toml, [tool.ruff]); `$(BIN)/ruff format .` fixes the format
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy on the library at the strictness of pyproject.toml ([tool.mypy])
typecheck: install
	$(BIN)/mypy reprog/

test: install
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m "slow or not slow"

# The documentation site (mkdocs.yml, docs/), built strictly and offline into outputs/site; any warning fails it.
# `python bench/render_docs.py` first re-renders the results tables from their JSON records.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d outputs/site

# channels_last vs NCHW per model; every hot loop x model, Lightning vs a plain loop (bench/results/suite.json), PGD vs
# torchattacks; keep_freed_host_memory off and on through train.py; time-to-accuracy of the airbench-class victim and of
# MNIST reprogramming through it, masked and scale programs; then airbench94's own code beside our victim run
# bad inputs and interruptions through the command line (~3.5 h on 2 CPU cores; on a GPU: BENCH_TRAINER=trainer=gpu).
BENCH_TRAINER ?=
TTA_RUNS := outputs/bench/tta_$(shell date +%Y%m%d_%H%M%S)
TTA_ARGS := --victim-args $(BENCH_TRAINER) --program-args $(BENCH_TRAINER)
bench: install
	$(BIN)/python bench/memory_format.py
	$(BIN)/python bench/suite.py
	$(BIN)/python bench/attack_throughput.py
	$(BIN)/python bench/host_memory.py --args $(BENCH_TRAINER)
	$(BIN)/python bench/time_to_accuracy.py --runs $(TTA_RUNS) $(TTA_ARGS)
	$(BIN)/python bench/time_to_accuracy.py --runs $(TTA_RUNS) --reuse-victim --program reprogram_mnist_scale \
		--out bench/results/time_to_accuracy_scale.json $(TTA_ARGS)
	$(BIN)/python bench/airbench_reference.py --ours-args $(BENCH_TRAINER)
	$(BIN)/python bench/reliability.py

# The GPU check (README → GPU). Here: the wheels the GPU image lacks, and the data in parts of <= 56 MiB (a call
# carries 64 MiB). There: `make gpu-check GPU_CHECK_OUT=$$OUT`, with its system python3 (no venv, no install).
# `make gpu-check GPU_CHECK=tiny` runs the same parts on this CPU, a few steps each.
GPU_CHECK     ?= gpu
GPU_CHECK_OUT ?= outputs/gpu_check
GPU_PYTHON    := $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-wheels: install
	$(BIN)/python bench/gpu_carry.py wheels --out .whl
gpu-data: install
	$(BIN)/python bench/gpu_carry.py data --data-dir $(REPROG_DATA_DIR) --out .gpudata
gpu-check:
	$(GPU_PYTHON) bench/gpu_check.py --mode $(GPU_CHECK) --out $(GPU_CHECK_OUT) --wheels .whl \
		--data $(if $(filter tiny,$(GPU_CHECK)),$(REPROG_DATA_DIR),.gpudata)

tensorboard: install
	$(BIN)/tensorboard --logdir outputs

clean:
	rm -rf $(VENV) .pytest_cache

# A one-node SLURM cluster on this machine (munge, MariaDB + slurmdbd, slurmctld, slurmd; root; docs/slurm.md), for
# trying hydra/launcher=slurm against a real scheduler. Its own config in $(SLURM_DIR); then export SLURM_CONF as printed.
SLURM_DIR ?= /tmp/reprog-slurm
.PHONY: slurm-up slurm-down
slurm-up:
	REPROG_SLURM_DIR=$(SLURM_DIR) scripts/slurm/up.sh
slurm-down:
	REPROG_SLURM_DIR=$(SLURM_DIR) scripts/slurm/down.sh
