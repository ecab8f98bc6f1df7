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
#
# One run at a time per outputs folder: `make reproduce` and `make html` take the lock of
# $(OUT) (lib/mscmeta/bundle/outlock.py) and only then read the parameters and run the
# stages in a sub-make; a second run waits, saying for what. Before any stage runs, the
# data and the parameters are checked once (mscmeta.review.preflight), so invalid input
# stops the run before anything is published. `make -q` / `make -n` only look.

.DEFAULT_GOAL := help
SHELL := /bin/bash
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:

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
ifneq ($(MSCMETA_OUTPUTS_LOCK),)
MAKEFLAGS += -j$(JOBS)
endif
endif

# ---- environment ----------------------------------------------------------------------
# requirements.in lists the direct dependencies, pinned; `make lock` compiles it into
# requirements.lock: every package of the venv, pinned, with the hashes of its files.
# The lock is universal (uv's --universal with --python-version 3.11): one file for
# Linux, macOS and Windows and every Python >= 3.11, each entry carrying the environment
# markers that say where it applies: a venv made on any of them is pinned entirely, not
# only on the platform and Python that ran `make lock` (on Linux, Python 3.11.7 and 3.12
# differ only where a package needs it, e.g. contourpy and papermill's aiohttp).
# The venv is installed from the lock by uv when uv can be had (bootstrapped into the
# venv by pip, its version and hashes taken from the lock; `uv pip sync` then makes the
# venv exactly the lock), else by pip with --require-hashes (slower, and it adds to what
# is there rather than removing what the lock no longer lists; a one-line note says so). INSTALLER=pip forces pip. uv reads no pip configuration: a PIP_INDEX_URL in
# the environment is handed to uv as UV_DEFAULT_INDEX unless a UV_ index is set.
# Neither installer compiles bytecode at install time (pip used to compile all ~9,000
# files of the venv, a large part of its time): Python writes the bytecode of the ~2,400
# modules the stages import on first use instead, unless PYTHONDONTWRITEBYTECODE is set,
# in which case every stage would recompile them on each run (2.5x slower imports). So
# make does not pass that variable on to its recipes.
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
MIN_PYTHON := 3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
LOCK ?= requirements.lock
INSTALLER ?= uv
LOCK_ARGS ?=
KERNEL := mscmeta
VENV_STAMP := $(VENV)/.installed
KERNEL_SPEC := $(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json

OUT := outputs
NB_OUT := $(OUT)/notebooks
PARAMS_DIR := $(OUT)/.params
HTML_INDEX := $(OUT)/html/index.html

# -n / -q: look; the parameter files are compared, never rewritten. The one-letter flags
# are MAKEFLAGS' first word unless it starts with '-' (a plain `make reproduce` has none, and
# the long options added above then come first: --no-builtin-rules holds an n).
MAKE_LETTERS := $(filter-out -%,$(firstword $(MAKEFLAGS)))
QUERY := $(if $(findstring n,$(MAKE_LETTERS))$(findstring q,$(MAKE_LETTERS)),yes)
# Set (by outlock.py) in the sub-make that runs under the outputs folder's lock.
LOCKED := $(if $(MSCMETA_OUTPUTS_LOCK),yes)
# Goals that build outputs; a direct stage target (make outputs/notebooks/03-pool.ipynb) takes the lock per stage.
BUILDING := $(filter reproduce html $(OUT)/%,$(MAKECMDGOALS))
DIRECT := $(filter-out reproduce html,$(BUILDING))
# A value quoted for the shell, whatever it holds (MEASURE="OR RR", SCENARIO="x'y").
shquote = '$(subst ','\'',$(1))'

LIB := $(sort $(shell find lib -type f -name '*.py' -not -path '*/__pycache__/*'))
REPORT_FILES := $(sort $(wildcard lib/mscmeta/bundle/*.py lib/mscmeta/bundle/templates/*/*))
DEPS_DIR := $(OUT)/.deps
RAW := data/raw
NB_SRC := notebooks

STAGES := 01-extract 02-quality-assess 03-pool 04-subgroup 05-secondary-outcomes 06-update-and-certainty
EXECUTED := $(STAGES:%=$(NB_OUT)/%.ipynb)
# The order make meets the stages in when it runs JOBS at a time: after 02 (which 03, 04 and
# 06 wait for), the longest stage first, the short independent 05 last to fill the gap. On
# 2 cores this ends the six stages ~6 s sooner than the numbered order, where 04 (the
# longest) often ran alone at the end (measured: 45-48 s vs 53-54 s from clean outputs).
# 05 needs nothing from 02, so when 01 ends first make would start it at once and leave 03
# to run alone at the end; in a full run (under the outputs lock) 05 therefore also waits
# for 02 (order only: it is never rebuilt because of 02, and a direct stage target does not
# build 02 for it).
BUILD_ORDER := 01-extract 02-quality-assess 04-subgroup 06-update-and-certainty 03-pool 05-secondary-outcomes

# The parameters each stage receives: notebook parameter=make variable (values are never
# split or re-parsed, so any value reaches the notebook's validator and gets its message).
PARAMS_01-extract := scenario=SCENARIO
PARAMS_02-quality-assess := scenario=SCENARIO measure=MEASURE model=MODEL zero_cell=ZERO_CELL tau2_method=TAU2
PARAMS_03-pool := scenario=SCENARIO measure=MEASURE model=MODEL zero_cell=ZERO_CELL tau2_method=TAU2
PARAMS_04-subgroup := scenario=SCENARIO measure=MEASURE model=MODEL zero_cell=ZERO_CELL tau2_method=TAU2
PARAMS_05-secondary-outcomes := scenario=SCENARIO model=SECONDARY_MODEL tau2_method=TAU2
PARAMS_06-update-and-certainty := scenario=SCENARIO measure=MEASURE zero_cell=ZERO_CELL
param_name = $(word 1,$(subst =, ,$(1)))
param_value = $($(word 2,$(subst =, ,$(1))))
# "-p 'name=value'" for every parameter of stage $(1); its parameter file's text.
stage_args = $(foreach p,$(PARAMS_$(1)),-p $(call shquote,$(call param_name,$(p))=$(call param_value,$(p))))
define newline


endef
param_line = $(call param_name,$(1))=$(call param_value,$(1))
params_lines = $(if $(1),$(call param_line,$(firstword $(1)))$(if $(wordlist 2,99,$(1)),$(newline)$(call params_lines,$(wordlist 2,99,$(1)))))
params_text = $(call params_lines,$(PARAMS_$(1)))
RUN_WHAT = make $@ SCENARIO=$(SCENARIO) MEASURE=$(MEASURE) MODEL=$(MODEL) ZERO_CELL=$(ZERO_CELL) TAU2=$(TAU2) SECONDARY_MODEL=$(SECONDARY_MODEL)

# ---- tasks ----------------------------------------------------------------------------
.PHONY: help reproduce test venv lock kernel lab html bench clean clean-outputs strip

help: ## list the targets
	@echo $(call shquote,Targets (parameters: SCENARIO=$(SCENARIO) MEASURE=$(MEASURE) MODEL=$(MODEL) ZERO_CELL=$(ZERO_CELL) TAU2=$(TAU2)):)
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

ifeq ($(QUERY)$(LOCKED),)
# Take the outputs folder's lock, then read the parameters and build in a sub-make.
reproduce html:
	+@$(PYTHON) lib/mscmeta/bundle/outlock.py --out $(call shquote,$(OUT)) --what $(call shquote,$(RUN_WHAT)) \
		-- $(MAKE) --no-print-directory $@
	@echo "Reports: $(abspath $(HTML_INDEX))"
else
reproduce: $(HTML_INDEX)
html: $(HTML_INDEX)
endif
reproduce: ## run every notebook and render the HTML (creates the venv if needed)

test: $(VENV_STAMP) $(KERNEL_SPEC) ## run all tests: unit, notebooks end to end, determinism, hygiene, browser
	$(PY) -m pytest $(PYTEST_ARGS)

venv: $(VENV_STAMP) ## create the local virtual environment, exactly as requirements.lock says

# The lock is compiled next to the old one (uv keeps the versions it already lists unless
# asked: LOCK_ARGS=--upgrade-package NAME, or --upgrade) and replaces it only if it differs,
# so an unchanged lock reruns nothing.
lock: ## recompile requirements.lock from requirements.in (LOCK_ARGS=--upgrade-package NAME)
	@$(check_python)
	test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	@$(bootstrap_uv) || { echo "error: make lock needs uv, which could not be installed (see $(VENV)/uv-bootstrap.log)" >&2; exit 1; }
	@test ! -f $(LOCK) || cp $(LOCK) $(VENV)/lock.new
	$(uv_env) $(UV) pip compile requirements.in --universal --python-version $(MIN_PYTHON) --generate-hashes \
	  --custom-compile-command "make lock" --quiet $(LOCK_ARGS) -o $(VENV)/lock.new
	@if cmp -s $(VENV)/lock.new $(LOCK); then rm $(VENV)/lock.new; echo "$(LOCK) unchanged"; \
	else mv $(VENV)/lock.new $(LOCK); echo "$(LOCK) updated: make venv (or reproduce, test) syncs .venv to it"; fi

kernel: $(KERNEL_SPEC) ## register the project kernel (mscmeta) inside the venv

lab: $(VENV_STAMP) $(KERNEL_SPEC) ## open JupyterLab on the project kernel
	cd notebooks && ../$(VENV)/bin/jupyter lab --MultiKernelManager.default_kernel_name=$(KERNEL)

html: ## render executed notebooks as HTML (full and code-free) + index

bench: $(VENV_STAMP) $(KERNEL_SPEC) ## time make reproduce from a fresh clone (cold and warm package cache), make reproduce from clean, its floor, the no-op rerun, the engine
	$(PY) -m mscmeta.bundle.bench_setup
	$(PY) -m mscmeta.bundle.bench_pipeline
	$(PY) -m mscmeta.bundle.bench

strip: $(VENV_STAMP) ## strip outputs from the source notebooks before committing
	$(PY) -m mscmeta.bundle.hygiene strip notebooks/*.ipynb

clean-outputs: ## remove every build product in outputs/ (keeps the venv)
	$(PYTHON) lib/mscmeta/bundle/outlock.py --out $(call shquote,$(OUT)) --what "make clean-outputs" -- \
		find $(OUT) -mindepth 1 -not -name README.md -not -name .gitkeep -not -name .lock -delete 2>/dev/null || true
	rm -rf $(OUT)/.staging $(OUT)/.params $(OUT)/.manifests $(DEPS_DIR)

clean: clean-outputs ## remove outputs and the virtual environment
	rm -rf $(VENV) .pytest_cache .hypothesis

# ---- files ----------------------------------------------------------------------------
# The entries of the lock (each with its hash lines) whose name is (OP is ==) or is not
# (OP is !=) NAME: $(call lock_select,OP,NAME)
lock_select = awk '/^[A-Za-z0-9]/ { split($$1, req, /[=;<>!~ ]/); keep = (tolower(req[1]) $(1) "$(2)") } /^[A-Za-z0-9]|^[ \t]/ { if (keep) print }' $(LOCK)

# The bundle needs Python >= 3.11: say so before anything is installed.
check_python = py=$(PY); test -x $$py || py=$$(command -v $(PYTHON)) || { echo "error: $(PYTHON) not found; the bundle needs Python >= $(MIN_PYTHON): make reproduce PYTHON=/path/to/python3.11 (or newer)" >&2; exit 1; }; \
  $$py -c 'import sys; sys.exit(sys.version_info < ($(subst .,$(comma) ,$(MIN_PYTHON))))' || { \
  echo "error: the bundle needs Python >= $(MIN_PYTHON), and $$py is $$($$py -V 2>&1)."; \
  if test -x $(PY); then echo "       Remove the venv (make clean), then: make reproduce PYTHON=python3.11 (or newer)"; \
  else echo "       Run: make reproduce PYTHON=python3.11 (or any Python >= $(MIN_PYTHON))"; fi; exit 1; } >&2
comma := ,

# The venv is made without pip (seeding it costs ~7 s of CPU, and the lock brings pip).
# uv goes into it at the version and with the hashes the lock gives, installed by the
# interpreter's own pip (pip --python targets the venv) or, failing that, by pip seeded
# into the venv; the pip fallback seeds the venv with pip too.
venv_pip = { $(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --default-pip >/dev/null; } && $(PY) -m pip
uv_pip_args = install --require-hashes --no-deps -r $(VENV)/uv-bootstrap.txt
bootstrap_uv = { $(UV) --version >/dev/null 2>&1 || { $(call lock_select,==,uv) > $(VENV)/uv-bootstrap.txt && \
  { $(PYTHON) -m pip --python $(PY) $(uv_pip_args) || { $(venv_pip) $(uv_pip_args); }; } > $(VENV)/uv-bootstrap.log 2>&1 && \
  $(UV) --version >/dev/null 2>&1; }; }
uv_env = $(if $(PIP_INDEX_URL),$(if $(UV_DEFAULT_INDEX)$(UV_INDEX_URL),,UV_DEFAULT_INDEX=$(PIP_INDEX_URL)))

$(VENV_STAMP): $(LOCK) pyproject.toml
	@$(check_python)
	test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	@set -e; \
	if [ "$(INSTALLER)" = uv ] && $(bootstrap_uv); then \
	  echo "$(UV) pip sync $(LOCK) && $(UV) pip install --no-deps -e ."; \
	  $(uv_env) $(UV) pip sync --quiet --python $(PY) --require-hashes $(LOCK); \
	  $(uv_env) $(UV) pip install --quiet --python $(PY) --no-deps -e .; \
	  echo "installed from $(LOCK) by $$($(UV) --version)" > $@.tmp; \
	else \
	  if [ "$(INSTALLER)" = uv ]; then why="uv could not be installed (see $(VENV)/uv-bootstrap.log)"; else why="INSTALLER=$(INSTALLER)"; fi; \
	  echo "note: $$why: installing $(LOCK) with pip --require-hashes instead (slower)"; \
	  $(call lock_select,!=,uv) > $(VENV)/requirements-pip.lock; \
	  $(venv_pip) install --quiet --no-compile --require-hashes -r $(VENV)/requirements-pip.lock; \
	  $(PY) -m pip install --quiet --no-deps -e .; \
	  echo "installed from $(LOCK) (without uv) by $$($(PY) -m pip --version | cut -d' ' -f1-2)" > $@.tmp; \
	fi; \
	mv $@.tmp $@

# Registering the kernel (what `python -m ipykernel install --sys-prefix` does) also writes
# the bytecode of what every stage's runner imports (papermill, nbclient, jupyter_client):
# uv installs no .pyc, so with a new venv the first two stages would otherwise each compile
# the same modules. Then it compiles SciPy's and matplotlib's modules, which the run's kernel
# server (lib/mscmeta/bundle/forkserver.py) imports last: on a new venv the two processes
# share the compiling between the two cores (~11 s on one core; the server is ready ~3 s sooner).
# Last, what each kernel imports itself once forked (ipykernel's app and debugger, pandera's
# validation backends): the first two stages would otherwise both compile it (~1.2 s).
WARM_MODULES := papermill scipy.stats scipy.optimize scipy.special matplotlib.pyplot \
  matplotlib.backends.backend_agg matplotlib.backends.backend_svg \
  ipykernel.kernelapp ipykernel.debugger pandera.backends.pandas.register pandera.strategies.pandas_strategies
$(KERNEL_SPEC): $(VENV_STAMP)
	@echo "registering the kernel $(KERNEL) in $(VENV) (and compiling what the stages import)"
	@$(PY) -Xfrozen_modules=off -c 'import importlib, sys; from ipykernel.kernelspec import install; \
	  install(kernel_name=sys.argv[1], display_name=sys.argv[2], prefix=sys.prefix); \
	  from mscmeta.bundle.lean_imports import skip_iri_grammar; skip_iri_grammar(); \
	  [importlib.import_module(m) for m in sys.argv[3:]]' $(KERNEL) "Python ($(KERNEL))" $(WARM_MODULES)
	@touch $@

# What each stage reads besides its notebook and the package: every sheet is a real
# prerequisite, and a missing one stops the run with a line naming it.
SHEET_FILES = $(addprefix $(RAW)/,$(1))
CORE_SHEETS := $(call SHEET_FILES,studies.csv mortality.csv scenarios.csv scenario_definitions.csv search.csv published_results.csv)
ALL_SHEETS := $(CORE_SHEETS) $(call SHEET_FILES,risk_of_bias.csv adverse_events.csv secondary_outcomes.csv grade_judgements.csv later_syntheses.csv)
$(NB_OUT)/01-extract.ipynb: $(ALL_SHEETS)
$(NB_OUT)/02-quality-assess.ipynb: $(CORE_SHEETS) $(RAW)/risk_of_bias.csv
$(NB_OUT)/03-pool.ipynb: $(CORE_SHEETS) $(NB_OUT)/02-quality-assess.ipynb
$(NB_OUT)/04-subgroup.ipynb: $(CORE_SHEETS) $(NB_OUT)/02-quality-assess.ipynb
$(NB_OUT)/05-secondary-outcomes.ipynb: $(CORE_SHEETS) $(RAW)/adverse_events.csv $(RAW)/secondary_outcomes.csv
$(NB_OUT)/06-update-and-certainty.ipynb: $(ALL_SHEETS) $(NB_OUT)/02-quality-assess.ipynb
$(RAW)/%.csv:
	@echo "error: the data sheet $@ is missing (see data/README.md)" >&2; exit 1
ifneq ($(LOCKED),)
$(NB_OUT)/05-secondary-outcomes.ipynb: | $(NB_OUT)/02-quality-assess.ipynb
endif

# The data and the parameters, checked once before any stage runs (every sheet, the
# scenario's mortality analysis, the option values): invalid input stops the run before
# anything is published. Redone when a sheet, a parameter or the checking code changes.
# Under make reproduce the check starts the run's servers (the kernels', and the tool server of
# the stage runners and the HTML renderer) and runs in a fork of the kernel server, once it has
# imported the libraries the check and the stages share; elsewhere it is `python -m
# mscmeta.review.preflight` (lib/mscmeta/bundle/forkserver.py). It runs with the kernels'
# environment and interpreter options, which the servers have.
FORKED := PYTHONHASHSEED=0 SOURCE_DATE_EPOCH=0 $(PY) -Xfrozen_modules=off -m mscmeta.bundle.forkserver
FORKED_RUN := $(FORKED) run
# The stage runner and the HTML renderer run in forks of the run's tool server (started by
# the data check), with the same environment; `python -m MODULE` wherever there is none.
FORKED_TOOL := $(FORKED) tool
CHECKED := $(PARAMS_DIR)/checked.txt
CHECK_CODE := $(sort $(wildcard lib/mscmeta/review/*.py lib/mscmeta/engine/*.py lib/mscmeta/plots/*.py))
$(CHECKED): $(ALL_SHEETS) $(STAGES:%=$(PARAMS_DIR)/%.txt) $(CHECK_CODE) $(VENV_STAMP)
	@$(FORKED_RUN) mscmeta.review.preflight --data-dir $(call shquote,$(RAW)) $(call stage_args,03-pool) \
		-p $(call shquote,secondary_model=$(SECONDARY_MODEL)) > $@.tmp && mv $@.tmp $@ || { rm -f $@.tmp; exit 1; }

# Each stage's parameters live in a file that is rewritten (when make reads this Makefile,
# under the outputs lock) only if its content changes, so a new value reruns that stage and
# its dependants. Under -n / -q the files are only compared: a differing (or missing) one is
# marked out of date, so `make -q` / `make -n` stay truthful and write nothing.
PARAMS_FILES := $(STAGES:%=$(PARAMS_DIR)/%.txt)
params_differ = $(if $(wildcard $(PARAMS_DIR)/$(1).txt),$(if $(subst x$(file <$(PARAMS_DIR)/$(1).txt),,x$(call params_text,$(1))),yes),yes)
write_params = $(if $(call params_differ,$(1)),$(shell mkdir -p $(call shquote,$(PARAMS_DIR)))$(file >$(PARAMS_DIR)/$(1).txt,$(call params_text,$(1))))
.PHONY: FORCE
FORCE:
ifneq ($(BUILDING),)
ifneq ($(QUERY),)
$(foreach stage,$(STAGES),$(if $(call params_differ,$(stage)),$(eval $(PARAMS_DIR)/$(stage).txt: FORCE ; @echo "parameters of $(stage) changed")))
else ifneq ($(LOCKED)$(DIRECT),)
$(foreach stage,$(STAGES),$(call write_params,$(stage)))
endif
endif

$(NB_OUT)/%.ipynb: $(NB_SRC)/%.ipynb $(PARAMS_DIR)/%.txt $(VENV_STAMP) $(KERNEL_SPEC) | $(CHECKED)
	@$(FORKED_TOOL) mscmeta.bundle.pipeline run $< --out $(call shquote,$(OUT)) --data-dir $(call shquote,$(RAW)) $(call stage_args,$*)

# The package files each stage imports, as make rules (standard library only, so they can be
# made before the venv exists). Remade when a notebook or any package file changes: one run
# of stagedeps writes the rules of every stage (each module parsed once); the stamp is
# touched first and every rule file written after it, so none is older than the stamp.
DEPS_FILES := $(STAGES:%=$(DEPS_DIR)/%.mk)
DEPS_STAMP := $(DEPS_DIR)/.stamp
$(DEPS_STAMP): $(STAGES:%=$(NB_SRC)/%.ipynb) $(LIB)
	@mkdir -p $(DEPS_DIR) && touch $@
	@$(PYTHON) lib/mscmeta/bundle/stagedeps.py $(STAGES:%=$(NB_SRC)/%.ipynb) --lib lib --target '$$(NB_OUT)/{stage}.ipynb' \
		--rules-dir $(call shquote,$(DEPS_DIR)) || { rm -f $@; exit 1; }
$(DEPS_FILES): $(DEPS_STAMP) ;
ifneq ($(BUILDING),)
ifneq ($(QUERY)$(LOCKED)$(DIRECT),)
-include $(DEPS_FILES)
endif
endif

$(HTML_INDEX): $(BUILD_ORDER:%=$(NB_OUT)/%.ipynb) $(REPORT_FILES)
	@SECONDS=0; echo "[html] started"; $(FORKED_TOOL) mscmeta.bundle.report --out $(call shquote,$(OUT)) --jobs $(JOBS) > /dev/null \
		&& echo "[html] done in $${SECONDS} s"

