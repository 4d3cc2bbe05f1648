# qpt_nb: everything set up from a machine with only Python 3 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.qpt_nb-installed
EXTRAS ?= notebook,test,md
export PYTHONHASHSEED := 0

.PHONY: demo test test-fast test-slow test-notebooks lab bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

## make demo: the main job on the built-in default molecule (uracil)
demo: $(STAMP)
	$(BIN)/qpt-nb demo

## make test: unit tests (fast subset) + the notebooks in smoke mode
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  QPT_NB_SMOKE=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -p no:cacheprovider \
	    --nbval-lax --nbval-current-env notebooks/; \
	fi

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q -x tests

## make test-slow: the heavy checks (full PySCF matrix, long trainings)
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q tests

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	@for s in bench/*.py; do echo "== $$s"; $(BIN)/python $$s || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
