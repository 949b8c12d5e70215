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

.PHONY: book test notebooks clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "normbook's pinned requirements need Python 3.11 or newer; run: make PYTHON=python3.11 $(MAKECMDGOALS)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
	  { echo "could not create $(VENV): install the venv module (Debian/Ubuntu: apt install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build .
	@echo "The book is built: open $(CURDIR)/_build/html/index.html"

# pytest on tests/ (helpers, data, and the warning-free book build -W -n), then nbval on every notebook.
test: $(STAMP)
	$(PY) -m pytest tests chapters $(NBVAL)

# Re-execute every chapter from a fresh kernel and store its outputs (run after editing a notebook).
notebooks: $(STAMP)
	cd chapters && for nb in *.ipynb; do ../$(VENV)/bin/jupyter execute --inplace --timeout=900 "$$nb" || exit 1; done

clean:
	rm -rf _build
