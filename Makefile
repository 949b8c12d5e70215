# normbook: `make book` builds the HTML book, `make test` runs every check.
# Both create .venv and install the pinned requirements when they are missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NBVAL  := --nbval --nbval-current-env --nbval-cell-timeout=900 --nbval-sanitize-with tests/nbval_sanitize.cfg

# The notebooks run with chapters/ as their folder: give them NORMBOOK_DATA as an absolute path.
ifneq ($(strip $(NORMBOOK_DATA)),)
override export NORMBOOK_DATA := $(abspath $(NORMBOOK_DATA))
endif

# Which notebooks `make notebooks` and `make portability` run (e.g. NOTEBOOKS=chapters/07_batchnorm_in_practice.ipynb).
NOTEBOOKS ?= $(sort $(wildcard chapters/*.ipynb))

# Progress bars are for a reader's live session: stored outputs and nbval runs have none (tqdm reads TQDM_DISABLE).
export TQDM_DISABLE := 1

# Other machines, simulated on this one: torch's AVX2 and portable (non-vectorized) kernels, with oneDNN and MKL
# capped to the same instruction sets, with 2 and 4 torch threads (set in each kernel by an IPython startup file);
# `make test` runs this machine's own kernels with 1 thread. So every instruction set and the thread counts 1, 2
# and 4 are checked, in three runs. Threads beyond the cores wait passively (OMP_WAIT_POLICY: speed, not numbers).
PORTABILITY_AVX2     := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 NORMBOOK_TORCH_THREADS=2
PORTABILITY_PORTABLE := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 NORMBOOK_TORCH_THREADS=4
# Two pytest workers (pytest-xdist); each notebook runs whole, in order, in one worker (--dist loadfile).
XDIST := -n 2 --dist loadfile
PORTABILITY_IPYTHON := _build/portability-ipython

.PHONY: book test portability notebooks gpu clean lighthouse

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "normbook's pinned requirements need Python 3.11 or newer; run: make PYTHON=python3.11 $(MAKECMDGOALS)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
	  { echo "could not create $(VENV): install the venv module (Debian/Ubuntu: apt install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Both editions in one site: English at _build/html/, Chinese (generated from the English notebooks) at _build/html/zh/.
book: $(STAMP)
	$(PY) tools/build_book.py

# Lighthouse's simulated-mobile performance of every page of both editions of the built site (make book first),
# served gzip-compressed as GitHub Pages serves it, median of 3 runs; installs Lighthouse with npm when missing.
# A benchmark, not a test: it needs several minutes and a quiet machine.
lighthouse: $(STAMP)
	$(PY) benchmarks/lighthouse_pages.py

# pytest on tests/ (helpers, data, and the warning-free book build -W -n), then nbval on every notebook.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest $(XDIST) tests chapters $(NBVAL)

# nbval on every notebook under each simulated machine: the stored outputs must hold on all of them. The two
# machines run at the same time (one pytest per run, notebooks in order, each run's output printed when it ends;
# -k: a failing run does not stop the others).
# The portable kernels take longest, most of it in PORTABILITY_SLOW (chapter 7's training alone: about 130 of
# 200 s), so those run by themselves and the rest follows the AVX2 run on the other core: about 180 s, not 210.
PORTABILITY_SLOW := chapters/07_batchnorm_in_practice.ipynb chapters/06b_why_batchnorm_helps.ipynb \
                    chapters/04b_normalization_in_transformers.ipynb
PORTABILITY_RUNS := portability-portable-slow portability-avx2 portability-portable-rest
portability: $(STAMP)
	@mkdir -p $(PORTABILITY_IPYTHON)/profile_default/startup
	@cp tests/portability/torch_threads_startup.py $(PORTABILITY_IPYTHON)/profile_default/startup/
	@test -n "$(strip $(NOTEBOOKS))" || { echo "make portability: no notebooks to check (NOTEBOOKS is empty)"; exit 1; }
	@$(MAKE) -k --no-print-directory -j2 --output-sync=target $(PORTABILITY_RUNS)

.PHONY: $(PORTABILITY_RUNS)
portability-avx2: SETTING := $(PORTABILITY_AVX2)
portability-avx2: RUN := $(NOTEBOOKS)
portability-portable-slow: SETTING := $(PORTABILITY_PORTABLE)
portability-portable-slow: RUN := $(filter $(PORTABILITY_SLOW),$(NOTEBOOKS))
portability-portable-rest: SETTING := $(PORTABILITY_PORTABLE)
portability-portable-rest: RUN := $(filter-out $(PORTABILITY_SLOW),$(NOTEBOOKS))
$(PORTABILITY_RUNS):
	@if [ -n "$(strip $(RUN))" ]; then \
	  echo "== nbval $@ with $(SETTING): $(notdir $(RUN))"; \
	  env IPYTHONDIR=$(CURDIR)/$(PORTABILITY_IPYTHON) OMP_WAIT_POLICY=PASSIVE $(SETTING) \
	    $(PY) -m pytest -q -p no:cacheprovider $(RUN) $(NBVAL); \
	fi

# On a machine with a CUDA GPU: every chapter's cells and asserts on the GPU, and the two-process SyncBatchNorm
# check, with versions and measured errors printed (tools/gpu_check.py). Without a GPU it says so and exits 0.
gpu: $(STAMP)
	$(PY) tools/gpu_check.py $(filter-out $(sort $(wildcard chapters/*.ipynb)),$(NOTEBOOKS))

# Re-execute every chapter from a fresh kernel and store its outputs (run after editing a notebook).
notebooks: $(STAMP)
	for nb in $(NOTEBOOKS); do (cd "$$(dirname "$$nb")" && $(CURDIR)/$(VENV)/bin/jupyter execute --inplace --timeout=900 "$$(basename "$$nb")") || exit 1; done

# The Colab check: every notebook of NOTEBOOKS as a Colab reader runs it. Builds a wheel of normbook, installs it
# with COLAB_TORCH (a torch release other than the pins; COLAB_TORCH="torch torchvision" takes the newest) into its
# own venv COLAB_VENV, and executes each notebook alone in a fresh temporary folder (no checkout on the path,
# PYTHONPATH unset, NORMBOOK_DATA passed through); stops at the first failing notebook. Needs neither .venv nor the
# pins (several GB of its own); see tools/colab_check.py. Delete COLAB_VENV to start from an empty venv.
# `make colab-range` does the same for every supported torch release (tools/colab_check.py RELEASES, oldest first),
# each in its own venv COLAB_VENV-<torch>, removed afterwards; COLAB_SKIP names releases not to check (reported
# as NOT CHECKED: this registry's torch 2.13.0 wheel cannot load torchvision 0.28.0's operators).
COLAB_VENV  ?= .venv-colab
COLAB_TORCH ?= torch==2.14.1 torchvision==0.29.1
COLAB_SKIP  ?=

.PHONY: colab colab-range
colab:
	$(PYTHON) tools/colab_check.py --venv "$(COLAB_VENV)" --torch "$(COLAB_TORCH)" $(NOTEBOOKS)

colab-range:
	$(PYTHON) tools/colab_check.py --range --venv "$(COLAB_VENV)" --skip $(COLAB_SKIP) -- $(NOTEBOOKS)

clean:
	rm -rf _build
