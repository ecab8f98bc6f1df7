# MSCs in severe/critical COVID-19 — reproducible meta-analysis bundle.
#
#   make reproduce     run every notebook stage, then render the HTML reports
#   make test          run the test suite (unit, end-to-end, determinism, hygiene, browser)
#
# Every stage is a file target: outputs/notebooks/<stage>.ipynb depends on its source
# notebook, the data it reads, the package files it imports (found by
# lib/mscmeta/bundle/stagedeps.py: a change to a plot reruns the stages that draw it, a
# change to the engine reruns all), its upstream stages and its parameters, so a rerun
# after no change does nothing and a change reruns only what depends on it. Parameters pass through: make reproduce MEASURE=RR SCENARIO=kirkham-like

.DEFAULT_GOAL := help
SHELL := /bin/bash
.SECONDARY:

# ---- parameters (override on the command line) --------------------------------------
SCENARIO ?= primary
MEASURE ?= OR
MODEL ?= fixed
ZERO_CELL ?= revman
TAU2 ?= REML
SECONDARY_MODEL ?= random
PYTEST_ARGS ?=
# Independent stages (01, 02, 05; then 03, 04 and 06) run in parallel when building outputs.
JOBS ?= 2

ifneq ($(filter reproduce html,$(MAKECMDGOALS)),)
MAKEFLAGS += -j$(JOBS) --output-sync=target
endif

# ---- environment ----------------------------------------------------------------------
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KERNEL := mscmeta
VENV_STAMP := $(VENV)/.installed
KERNEL_SPEC := $(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json

OUT := outputs
NB_OUT := $(OUT)/notebooks
PARAMS_DIR := $(OUT)/.params
HTML_INDEX := $(OUT)/html/index.html

LIB := $(sort $(shell find lib -type f -name '*.py' -not -path '*/__pycache__/*'))
REPORT_FILES := $(sort $(wildcard lib/mscmeta/bundle/*.py lib/mscmeta/bundle/templates/*/*))
DEPS_DIR := $(OUT)/.deps
RAW := data/raw
NB_SRC := notebooks

STAGES := 01-extract 02-quality-assess 03-pool 04-subgroup 05-secondary-outcomes 06-update-and-certainty
EXECUTED := $(STAGES:%=$(NB_OUT)/%.ipynb)

# The parameters each stage receives (name=value, as the notebook declares them).
PARAMS_01-extract := scenario=$(SCENARIO)
PARAMS_02-quality-assess := scenario=$(SCENARIO) measure=$(MEASURE) model=$(MODEL) zero_cell=$(ZERO_CELL) tau2_method=$(TAU2)
PARAMS_03-pool := scenario=$(SCENARIO) measure=$(MEASURE) model=$(MODEL) zero_cell=$(ZERO_CELL) tau2_method=$(TAU2)
PARAMS_04-subgroup := scenario=$(SCENARIO) measure=$(MEASURE) model=$(MODEL) zero_cell=$(ZERO_CELL) tau2_method=$(TAU2)
PARAMS_05-secondary-outcomes := scenario=$(SCENARIO) model=$(SECONDARY_MODEL) tau2_method=$(TAU2)
PARAMS_06-update-and-certainty := scenario=$(SCENARIO) measure=$(MEASURE) zero_cell=$(ZERO_CELL)

# ---- tasks ----------------------------------------------------------------------------
.PHONY: help reproduce test venv kernel lab html bench clean clean-outputs strip

help: ## list the targets
	@echo "Targets (parameters: SCENARIO=$(SCENARIO) MEASURE=$(MEASURE) MODEL=$(MODEL) ZERO_CELL=$(ZERO_CELL) TAU2=$(TAU2)):"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

reproduce: $(HTML_INDEX) ## run every notebook and render the HTML (creates the venv if needed)

test: $(VENV_STAMP) $(KERNEL_SPEC) ## run all tests: unit, notebooks end to end, determinism, hygiene, browser
	$(PY) -m pytest $(PYTEST_ARGS)

venv: $(VENV_STAMP) ## create the local virtual environment with the pinned packages

kernel: $(KERNEL_SPEC) ## register the project kernel (mscmeta) inside the venv

lab: $(VENV_STAMP) $(KERNEL_SPEC) ## open JupyterLab on the project kernel
	cd notebooks && ../$(VENV)/bin/jupyter lab --MultiKernelManager.default_kernel_name=$(KERNEL)

html: $(HTML_INDEX) ## render executed notebooks as HTML (full and code-free) + index

bench: $(VENV_STAMP) $(KERNEL_SPEC) ## time make reproduce from clean, its floor, the no-op rerun, and the engine
	$(PY) -m mscmeta.bundle.bench_pipeline
	$(PY) -m mscmeta.bundle.bench

strip: $(VENV_STAMP) ## strip outputs from the source notebooks before committing
	$(PY) -m mscmeta.bundle.hygiene strip notebooks/*.ipynb

clean-outputs: ## remove every build product in outputs/ (keeps the venv)
	find $(OUT) -mindepth 1 -not -name README.md -not -name .gitkeep -delete 2>/dev/null || true
	rm -rf $(OUT)/.staging $(OUT)/.params $(DEPS_DIR)

clean: clean-outputs ## remove outputs and the virtual environment
	rm -rf $(VENV) .pytest_cache .hypothesis

# ---- files ----------------------------------------------------------------------------
$(VENV_STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(KERNEL_SPEC): $(VENV_STAMP)
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))" > /dev/null
	touch $@

# Each stage's parameters live in a file that is rewritten (when make reads this
# Makefile) only if its content changes, so a new value reruns that stage and its
# dependants, and `make -q` / `make -n` stay truthful.
write_params = $(shell mkdir -p $(PARAMS_DIR) && (echo '$(PARAMS_$(1))' | cmp -s - $(PARAMS_DIR)/$(1).txt || echo '$(PARAMS_$(1))' > $(PARAMS_DIR)/$(1).txt))
$(foreach stage,$(STAGES),$(call write_params,$(stage)))

$(NB_OUT)/%.ipynb: $(NB_SRC)/%.ipynb $(PARAMS_DIR)/%.txt $(VENV_STAMP) $(KERNEL_SPEC)
	$(PY) -m mscmeta.bundle.pipeline run $< --out $(OUT) --data-dir $(RAW) $(addprefix -p ,$(PARAMS_$*))

# The package files each stage imports, as make rules (standard library only, so they can be
# made before the venv exists). Remade when a notebook or any package file changes.
DEPS_FILES := $(STAGES:%=$(DEPS_DIR)/%.mk)
$(DEPS_DIR)/%.mk: $(NB_SRC)/%.ipynb $(LIB)
	@mkdir -p $(DEPS_DIR)
	@$(PYTHON) lib/mscmeta/bundle/stagedeps.py $< --lib lib --target '$$(NB_OUT)/$*.ipynb' --rule-file '$$(DEPS_DIR)/$*.mk' > $@.tmp
	@mv $@.tmp $@
ifneq ($(filter reproduce html $(NB_OUT)/%,$(MAKECMDGOALS)),)
-include $(DEPS_FILES)
endif

# What each stage reads besides its notebook and the package. Every stage validates
# the core sheets (mscmeta.review.sheets.load_raw); 01 also validates every optional sheet.
CORE_SHEETS := $(addprefix $(RAW)/,studies.csv mortality.csv scenarios.csv scenario_definitions.csv search.csv published_results.csv)
$(NB_OUT)/01-extract.ipynb: $(CORE_SHEETS) $(wildcard $(RAW)/risk_of_bias.csv $(RAW)/adverse_events.csv $(RAW)/secondary_outcomes.csv $(RAW)/grade_judgements.csv $(RAW)/later_syntheses.csv)
$(NB_OUT)/02-quality-assess.ipynb: $(CORE_SHEETS) $(RAW)/risk_of_bias.csv
$(NB_OUT)/03-pool.ipynb: $(CORE_SHEETS) $(NB_OUT)/02-quality-assess.ipynb
$(NB_OUT)/04-subgroup.ipynb: $(CORE_SHEETS) $(NB_OUT)/02-quality-assess.ipynb
$(NB_OUT)/05-secondary-outcomes.ipynb: $(CORE_SHEETS) $(RAW)/adverse_events.csv $(RAW)/secondary_outcomes.csv
$(NB_OUT)/06-update-and-certainty.ipynb: $(CORE_SHEETS) $(RAW)/adverse_events.csv $(RAW)/secondary_outcomes.csv $(wildcard $(RAW)/grade_judgements.csv $(RAW)/later_syntheses.csv) $(NB_OUT)/02-quality-assess.ipynb

$(HTML_INDEX): $(EXECUTED) $(REPORT_FILES)
	$(PY) -m mscmeta.bundle.report --out $(OUT)

