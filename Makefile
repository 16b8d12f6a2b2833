# SEXTO assistant. Two commands for a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
# uv installs into the interpreter's scripts folder; put it on PATH for every recipe.
PY_SCRIPTS := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH := $(PY_SCRIPTS):$(HOME)/.local/bin:$(PATH)
UV_RUN := uv run --frozen
PYTEST_ARGS ?=
# Where the live-Rasa tests find the Rasa environment and model (made by nlu/nlu.mk).
export SEXTO_TEST_RASA_BIN = $(RASA)
export SEXTO_TEST_RASA_MODEL = $(RASA_MODEL)

.PHONY: help run test lint format check uv clean bench bench-reminders chaos

help:
	@echo "make run    the assistant (local console chat without TELEGRAM_BOT_TOKEN)"
	@echo "make test   the whole test suite"
	@echo "make lint   ruff and mypy"
	@echo "make rasa-env rasa-train rasa-start rasa-stop nlu-eval   the Rasa NLU server (nlu/nlu.mk)"
	@echo "make bench  the load benchmark: N professionals at once, against an echo bot (~25 min)"
	@echo "make chaos  the chaos suite with 50 kill -9 trials (make test runs 5)"
	@echo "make bench-reminders   911-reminder lateness"

# The locked environment in .venv, rebuilt when pyproject.toml or uv.lock change.
.venv/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	uv sync --frozen
	@touch $@

uv: .venv/.synced

run: .venv/.synced
	$(UV_RUN) sexto init
	$(UV_RUN) sexto run

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: .venv/.synced
	@$(UV_RUN) pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no test ran" >&2; exit 1; fi; exit $$status

lint: .venv/.synced
	$(UV_RUN) ruff check .
	$(UV_RUN) ruff format --check .
	$(UV_RUN) mypy

format: .venv/.synced
	$(UV_RUN) ruff check --fix .
	$(UV_RUN) ruff format .

# N = 10, 50, 200 simulated professionals against the real bot on SQLite and PostgreSQL, an
# echo bot (the floor) and the echo bot recording each update in PostgreSQL before it answers
# (the floor of a bot that does); NLU parse latency (Rasa too when `make rasa-start` is serving); a table,
# then one JSON object as the last line. BENCH_ARGS passes options (python -m bench --help).
BENCH_ARGS ?=
bench: .venv/.synced
	PTB_TIMEDELTA=1 $(UV_RUN) python -m bench $(BENCH_ARGS)

# The chaos suite alone, with 50 kill -9 trials (SEXTO_CHAOS_SEED=... replays a run).
CHAOS_TRIALS ?= 50
chaos: .venv/.synced
	SEXTO_CHAOS_TRIALS=$(CHAOS_TRIALS) $(UV_RUN) pytest tests/chaos $(PYTEST_ARGS)

# 911-reminder lateness through the real bot process and a local Bot API server (about 1 min).
bench-reminders: .venv/.synced
	PTB_TIMEDELTA=1 $(UV_RUN) python -m bench.reminders --count 55 --every 1

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache var

-include nlu/nlu.mk
