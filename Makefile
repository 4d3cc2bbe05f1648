# qpt_nb: everything set up from a machine with only Python 3 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.qpt_nb-installed
EXTRAS ?= notebook,test,md
export PYTHONHASHSEED := 0

.PHONY: demo test test-fast test-slow test-notebooks lab bench install clean test-browser browser-deps lint format
BROWSER_DIR := tests/browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

## make demo: the main job on the built-in default molecule (uracil)
demo: $(STAMP)
	$(BIN)/qpt-nb demo

## make lint: ruff format --check, ruff check, and notebooks free of widget state
lint: $(STAMP)
	$(BIN)/ruff format --check qpt_nb tests bench scripts
	$(BIN)/ruff check qpt_nb tests bench scripts
	$(BIN)/python scripts/strip_notebooks.py --check

## make format: apply ruff's formatting and fixes, strip widget state from the notebooks
format: $(STAMP)
	$(BIN)/ruff format qpt_nb tests bench scripts
	$(BIN)/ruff check --fix qpt_nb tests bench scripts
	$(BIN)/python scripts/strip_notebooks.py

## make test: lint, unit tests (fast subset) + the notebooks in smoke mode
test: lint
	$(BIN)/python -m pytest -m "not slow" -q --durations=15 tests
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules qpt_nb
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  QPT_NB_SMOKE=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -p no:cacheprovider \
	    --nbval-lax --nbval-current-env notebooks/; \
	fi
	@if command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" = 0 ]; then \
	  $(MAKE) --no-print-directory test-browser; \
	else echo "skipping the browser test: no chromium and not root (make browser-deps)"; fi

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q -x tests

## make test-slow: the heavy checks (full PySCF matrix, long trainings)
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q tests

## make lab: JupyterLab on notebooks/ (uses the local 3Dmol.js when the browser deps are installed)
lab: $(STAMP)
	@if [ -f $(BROWSER_DIR)/node_modules/3dmol/build/3Dmol-min.js ]; then \
	  export QPT_NB_3DMOL_JS=$(CURDIR)/$(BROWSER_DIR)/node_modules/3dmol/build/3Dmol-min.js; fi; \
	$(BIN)/jupyter lab notebooks/

## make browser-deps: headless Chromium + npm packages (3dmol = py3Dmol's version, playwright-core)
browser-deps:
	command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y chromium; }
	command -v npm >/dev/null 2>&1 || { apt-get update && apt-get install -y nodejs npm; }
	npm ci --prefix $(BROWSER_DIR) --no-audit --no-fund

## make test-browser: JupyterLab + headless Chromium run notebooks/00_quickstart.ipynb; screenshots in test-artifacts/browser/
test-browser: $(STAMP) browser-deps
	$(BIN)/python scripts/browser_test.py

## make bench: the quick modes of the benchmark scripts (each has --full; see BENCHMARKS.md)
bench: $(STAMP)
	@for s in scf_vs_pyscf train_throughput labels_vs_dft_loss guess_speedup; do \
	  echo "== bench/$$s.py"; $(BIN)/python bench/$$s.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
