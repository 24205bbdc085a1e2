# krfeed — `make demo` runs the live demo, `make test` the whole test suite; both set up .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint unit bench bench-full codegen clean browser vendor-web

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/krfeed demo

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m krfeed.schema.codegen --check

test: lint browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Debian's chromium for the dashboard's browser test (root only; the test says so when missing)
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
	  { apt-get update -qq && apt-get install -y -qq chromium fonts-nanum; } >/dev/null 2>&1 || \
	  echo "make: could not install chromium: the browser test will be skipped" >&2

# Refresh the dashboard's vendored uPlot from the npm registry (see src/krfeed/web/static/VENDOR.md)
UPLOT := 1.6.32
vendor-web:
	rm -rf build/uplot && mkdir -p build/uplot
	cd build/uplot && npm pack -q uplot@$(UPLOT) && tar xzf uplot-$(UPLOT).tgz
	cp build/uplot/package/dist/uPlot.iife.min.js build/uplot/package/dist/uPlot.min.css src/krfeed/web/static/
	cp build/uplot/package/LICENSE src/krfeed/web/static/uPlot.LICENSE
	sha256sum src/krfeed/web/static/uPlot.iife.min.js src/krfeed/web/static/uPlot.min.css

unit: install
	$(BIN)/python -m pytest -q tests/unit

# make bench BENCH=--full (or make bench-full): also the whole market at the open
bench: install
	$(BIN)/python benchmarks/run.py $(BENCH)

bench-full: install
	$(BIN)/python benchmarks/run.py --full

codegen: install
	$(BIN)/python -m krfeed.schema.codegen
	$(BIN)/ruff check -q --fix src/krfeed/records || true

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
