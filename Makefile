# fairbench: `make bench` runs the default benchmark, `make test` the test suite.
# Both create .venv and install everything they need (pip packages, the FMNIST Debian package).

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
DATASET  ?= fmnist
PRESET   ?= quick
METHODS  ?= core
SEEDS    ?= 0
RESULTS  ?= results
ARGS     ?=
WORKERS  ?=
DEVICES  ?=
CONSTRAINTS ?= constraints.txt
WHEELS   ?= wheels
PY       ?=
INSTALLER ?= uv
UV_VERSION := 0.13.9
OFFLINE  ?=
FROM_WHEELS := $(if $(filter 1 yes true,$(OFFLINE)),--no-index --find-links $(WHEELS))
$(if $(filter-out uv pip,$(INSTALLER)),$(error INSTALLER must be uv or pip, not '$(INSTALLER)'))
FMNIST_DEB := /usr/share/datasets/fashion-mnist

.PHONY: bench test perf gpu-check lint report status install data clean-results wheels

install: $(VENV)/.installed

# constraints.txt pins the exact versions CI uses; pyproject.toml declares ranges, so with
# CONSTRAINTS= a torch already in the venv (or the system's, --system-site-packages) is kept.
# INSTALLER=uv (default) installs with uv, itself pip-installed into the venv: from its cache,
# seconds where pip takes a minute and more for torch's CUDA wheels; INSTALLER=pip for plain pip.
# Bytecode is compiled at install (as pip does): where PYTHONDONTWRITEBYTECODE is set, every
# test process would otherwise compile torch again.
# OFFLINE=1 installs from the wheels in $(WHEELS)/ only (`make wheels` on a machine online).
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(INSTALLER),uv)
	$(BIN)/pip install -q $(FROM_WHEELS) "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python $(FROM_WHEELS) \
		$(if $(FROM_WHEELS),--offline) \
		$(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
else
	$(BIN)/pip install -q $(FROM_WHEELS) "pip>=23"  # an older pip: no index lookup when new enough
	$(BIN)/pip install -q $(FROM_WHEELS) $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
endif
	touch $@

# Wheels of every pinned package (and of uv, pip, setuptools) into $(WHEELS)/ for a machine
# without internet (PY=3.12 for another Python); there: make test OFFLINE=1 (docs/usage.md)
wheels:
	$(or $(wildcard $(BIN)/pip),pip) download -q -d $(WHEELS) -r $(or $(CONSTRAINTS),constraints.txt) \
		"setuptools>=64,<81" "uv==$(UV_VERSION)" "pip>=23" \
		$(if $(PY),--python-version $(PY) --only-binary=:all:)

# FMNIST comes from the Debian package when no copy is found (needs apt and root).
data:
	@if [ -d "$(FMNIST_DEB)" ] || [ -d data/FashionMNIST/raw ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "installing dataset-fashion-mnist (Debian)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	else echo "FMNIST not found: install dataset-fashion-mnist or pass --download"; fi

# Other datasets are downloaded (torchvision, verified) into $(FAIRBENCH_DATA) or data/ when
# missing: `bench` opts in with --download; `fairbench run` itself never downloads unasked.
bench: install $(if $(filter fmnist,$(DATASET)),data)
	$(BIN)/fairbench run --dataset $(DATASET) --preset $(PRESET) --methods "$(METHODS)" \
		--seeds "$(SEEDS)" --results $(RESULTS) $(if $(filter fmnist,$(DATASET)),,--download) \
		$(if $(WORKERS),--workers $(WORKERS)) $(if $(DEVICES),--devices $(DEVICES)) $(ARGS)

# one pytest-xdist worker per core, one torch thread each (tests/conftest.py); a test file
# stays on one worker so its module fixtures are built once
test: install data
	$(BIN)/pytest -n auto --dist loadfile

perf: install data
	$(BIN)/python -m benchmark.devtools.perf $(ARGS)

# ~5 min on one recent GPU (estimated, docs/speed.md; --budget SECONDS, default 300, bounds it):
# the CIFAR path checked and measured -> results/gpucheck.json
# (ARGS="--tiny --device cpu": the same steps at a tiny size, ~45 s on a CPU; CI runs it)
gpu-check: install
	$(BIN)/python -m benchmark.devtools.gpucheck $(ARGS)

lint: install
	$(BIN)/ruff check benchmark methods tests

report: install
	$(BIN)/fairbench report --dataset $(DATASET) --preset $(PRESET) --results $(RESULTS)

status: install
	$(BIN)/fairbench status --results $(RESULTS)
