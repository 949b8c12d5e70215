# normbook: `make book` builds the HTML book, `make test` runs every check.
# Both create .venv and install the pinned requirements when they are missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NBVAL  := --nbval --nbval-current-env --nbval-cell-timeout=900 --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: book test notebooks clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
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
