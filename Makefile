# Two commands do all set-up: `make book` and `make test`. Each creates .venv
# and installs requirements.txt and the library (editable) when needed; the
# stamp file makes a second run install nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the book build's execution cache, shared with the notebook checks of `make test`
CACHE  := _build/.jupyter_cache
# the browser suite drives Debian's Chromium; elsewhere: make test CHROMIUM=/path/to/chrome
CHROMIUM ?= /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test exercises linkcheck linkcheck-external browser clean help

help:
	@echo "make book   build the book into _build/html (executes every notebook)"
	@echo "make test   run every test: library, hands-on notebooks (nbval), book build,"
	@echo "            link check and the browser suite"
	@echo "make linkcheck  check the book's local links (linkcheck-external: the web too)"
	@echo "make exercises  write the student notebooks to _build/exercises"
	@echo "make clean  remove _build and caches (keeps .venv)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else "Python 3.11+ is needed; $(PYTHON) is %d.%d. Run: make PYTHON=python3.11 ..." % v[:2])'
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# -W: every warning is an error; -n: nitpicky cross-references; --keep-going:
# report all of them. A failing cell is an error too (execute.allow_errors is
# false) and its traceback is printed (nb_execution_show_tb).
book: $(STAMP) exercises
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in _build/html/index.html"

# The student versions of hands_on/ (solutions replaced by stubs); the book's
# exercise pages link to them for download.
exercises: $(STAMP)
	$(BIN)/python -m dropoutlab.grading assign --source hands_on --out _build/exercises

# Each notebook runs once: nbval runs the hands-on notebooks and stores them in the
# book's execution cache (--nbval-cache, see conftest.py); the book build executes
# the chapters and takes the hands-on pages from the cache; tests/book then checks
# the built pages in Chromium, with every request off this machine blocked.
test: $(STAMP) browser
	$(BIN)/python -m pytest --ignore=tests/book --nbval-cache=$(CACHE)
	$(MAKE) book linkcheck
	DROPOUT_CHROMIUM="$(CHROMIUM)" $(BIN)/python -m pytest tests/book

# Sphinx's linkcheck: the local links; http(s) links only in linkcheck-external,
# since CI has no network (_ext/offline_linkcheck.py).
# Jupyter Book writes linkcheck's report into _build/html; it goes to _build/linkcheck.
linkcheck: $(STAMP)
	$(BIN)/jupyter-book build . --builder linkcheck -W -n --keep-going
	@mkdir -p _build/linkcheck && mv -f _build/html/output.txt _build/html/output.json _build/linkcheck/
	@echo "The link report is in _build/linkcheck/output.txt"

linkcheck-external: $(STAMP)
	LINKCHECK_EXTERNAL=1 $(BIN)/jupyter-book build . --builder linkcheck -n --keep-going
	@mkdir -p _build/linkcheck && mv -f _build/html/output.txt _build/html/output.json _build/linkcheck/
	@echo "The link report is in _build/linkcheck/output.txt"

# Chromium and its driver from apt when missing (as root, or with sudo); Playwright
# (requirements.txt) drives it and never downloads a browser of its own.
browser:
	@if [ ! -x "$(CHROMIUM)" ] || ! command -v chromedriver >/dev/null; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "The browser tests need Chromium at $(CHROMIUM): install it, or run make test CHROMIUM=/path/to/chromium"; \
	    exit 1; \
	  fi; \
	  echo "installing chromium and chromium-driver with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

clean:
	rm -rf _build .pytest_cache .hypothesis
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -not -path './$(VENV)/*' -prune -exec rm -rf {} +
