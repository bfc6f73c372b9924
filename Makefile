# Two commands do all set-up: `make book` and `make test`. Each creates .venv
# and installs requirements.txt and the library (editable) when needed; the
# stamp file makes a second run install nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test exercises clean help

help:
	@echo "make book   build the book into _build/html (executes every notebook)"
	@echo "make test   run the library tests and every notebook (nbval)"
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

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf _build .pytest_cache .hypothesis
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -not -path './$(VENV)/*' -prune -exec rm -rf {} +
