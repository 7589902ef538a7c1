# Two commands on a fresh machine: `make run` (demo county on :8080) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup services run test lint bench eval chaos fuzz clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

# Python and npm dependencies (ECharts for the dashboard), mongo-java-server (jars from Maven, once),
# Debian's redis-server, Debian's chromium (the dashboard's browser test) and fonts-noto-cjk
# (embedded in the printed paper forms).
setup: $(STAMP)
	$(PY) scripts/services.py build

run: setup
	$(PY) scripts/services.py run

test: setup
	$(PY) -m ruff check .
	$(PY) -m mypy server question_bank scoring content
	$(PY) -m pytest -p no:cacheprovider

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy server question_bank scoring content

# wrk against the running service: one process (the targets are for one), then one per core
# (the scaling); then what wrk can't drive (imports, publish propagation, statistics, whole
# resident flows on durable storage).
bench: setup
	$(PY) -m scripts.bench_wrk --workers 1
	$(PY) -m scripts.bench_wrk --workers $$(nproc) --duration 5
	$(PY) -m scripts.bench
	$(PY) -m scripts.bench_residents
	$(PY) -m scripts.bench_residents --durable
	$(PY) -m scripts.irt_bench

# IRT simulations with known parameters (recovery, equating, adaptive, DIF, forms, speed), the
# integrity detectors on a county with planted proxy answering, copying, speeders and leaked keys,
# then township estimates validated on a synthetic county with known truth: 20 seeded runs of
# 200 townships and 50 small counties in process, then the full county through the HTTP API.
eval: setup
	$(PY) -m scripts.eval_irt
	$(PY) -m scripts.eval_integrity
	$(PY) -m scripts.simulation
	$(PY) -m scripts.simulation --small-counties
	$(PY) -m scripts.eval --townships 200 --scale 1

# Fault injection: two app processes under a 2-minute submit storm while Redis and the database
# server are SIGKILLed and started again, 3 times each; prints its figures, non-zero on a violation.
chaos: setup
	$(PY) -m scripts.chaos --seconds 120 --kills 3

# schemathesis against the running service's OpenAPI document, once per role and once without a
# token: at least 10,000 requests, no server error, every response as the document declares.
fuzz: setup
	$(PY) -m scripts.fuzz --examples 60 --min-requests 10000

clean:
	rm -rf .services .artifacts
