# S3 Portal: `make run` serves the portal, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test test-sqlite test-postgres deps chromium lint bench clean

run: deps
	$(BIN)/python manage.py runportal

test: deps chromium
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite:
	@echo "== test suite on SQLite =="
	env -u DATABASE_URL $(BIN)/pytest

test-postgres:
	@if $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null; then \
		echo "== test suite on PostgreSQL ($(PG_URL)), without the browser and embedded-S3 tests =="; \
		DATABASE_URL=$(PG_URL) $(BIN)/pytest --ignore=tests/browser --ignore=tests/integration; \
	else \
		echo "== PostgreSQL pass skipped: nothing answers on 127.0.0.1:5432 =="; \
	fi

deps: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Browser tests drive Debian's chromium (Playwright's own browser download does not work here).
chromium:
	@command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null \
		|| (apt-get update -q && apt-get install -y -q chromium >/dev/null)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

BENCHES := bench/upload_1gib.py bench/copy_1gib.py bench/browse_100k.py bench/link_resolution.py \
	bench/my_activity.py bench/zip_download.py bench/folder_copy_task.py bench/search.py \
	bench/indexing.py

bench: deps
	@for f in $(BENCHES); do echo "== $$f =="; $(BIN)/python $$f || exit 1; done

# 20 people on gunicorn + PostgreSQL (127.0.0.1:5432) + the embedded S3 for LOAD_SECONDS (load/run.py).
LOAD_SECONDS ?= 120
.PHONY: load
load: deps
	$(BIN)/python load/run.py --seconds $(LOAD_SECONDS)

clean:
	rm -rf $(VENV) node_modules
