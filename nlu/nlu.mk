# NLU targets: the Rasa 3.6 environment, training and server, and the evaluation of both
# engines. Included from the project's Makefile; every path is relative to the repo root.
#
#   make rasa-env     Python 3.10 virtualenv with Rasa 3.6.21 (cached outside the repo)
#   make rasa-train   `rasa train nlu` on nlu/ (cached by a hash of config, domain and data)
#   make rasa-serve   `rasa run --enable-api` on $(RASA_HOST):$(RASA_PORT) (foreground)
#   make rasa-start   the same in the background, waiting until it answers; rasa-stop ends it
#   make nlu-eval     both engines side by side on nlu/tests/holdout.yml

SEXTO_CACHE ?= $(HOME)/.cache/sexto
RASA_REQUIREMENTS := nlu/rasa-requirements.txt
# Rasa 3.6 runs on Python 3.10 only: pyenv's 3.10 if there is one, else uv finds one.
RASA_PYENV_PYTHON = $(wildcard $(shell pyenv prefix 3.10 2>/dev/null)/bin/python)
RASA_PYTHON ?= $(or $(RASA_PYENV_PYTHON),$(shell uv python find 3.10 2>/dev/null))
RASA_ENV_HASH := $(shell cat $(RASA_REQUIREMENTS) | sha256sum | cut -c1-12)
RASA_ENV ?= $(SEXTO_CACHE)/rasa-env-$(RASA_ENV_HASH)
RASA := $(RASA_ENV)/bin/rasa
RASA_HOST ?= 127.0.0.1
RASA_PORT ?= 5005
RASA_URL ?= http://$(RASA_HOST):$(RASA_PORT)
RASA_TRAINING_FILES := nlu/config.yml nlu/domain.yml $(sort $(wildcard nlu/data/*.yml))
RASA_MODEL_HASH := $(shell cat $(RASA_REQUIREMENTS) $(RASA_TRAINING_FILES) | sha256sum \
	| cut -c1-12)
RASA_MODELS ?= $(SEXTO_CACHE)/rasa-models
RASA_MODEL := $(RASA_MODELS)/sexto-nlu-$(RASA_MODEL_HASH).tar.gz
# Rasa's own training cache and telemetry: kept out of the repo, and no network.
RASA_RUN_ENV := RASA_TELEMETRY_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2 \
	RASA_CACHE_DIRECTORY=$(SEXTO_CACHE)/rasa-train-cache
RASA_PID_FILE ?= $(SEXTO_CACHE)/rasa-server-$(RASA_PORT).pid
RASA_LOG_FILE ?= $(SEXTO_CACHE)/rasa-server-$(RASA_PORT).log
RASA_START_TIMEOUT ?= 180
NLU_HOLDOUT ?= nlu/tests/holdout.yml
# The project's Makefile defines UV_RUN (uv run --frozen); standalone, plain uv run.
NLU_UV_RUN ?= $(or $(UV_RUN),uv run)

.PHONY: rasa-env rasa-train rasa-serve rasa-start rasa-stop rasa-requirements nlu-eval

rasa-env: $(RASA_ENV)/.installed

# Idempotent: the stamp is written last, so an interrupted install starts over. The env's and the
# model's paths carry a hash of what they are made from, so their inputs are order-only
# prerequisites: a fresh clone (every file newer than the cache) reuses them; an edit makes a new
# path, hence a new env or model.
$(RASA_ENV)/.installed: | $(RASA_REQUIREMENTS)
	@command -v uv >/dev/null || python3 -m pip install --quiet --disable-pip-version-check uv
	@test -x "$(RASA_PYTHON)" || { echo "rasa-env: no Python 3.10 found (pyenv install 3.10)"; \
		exit 1; }
	rm -rf "$(RASA_ENV)"
	uv venv --quiet --python "$(RASA_PYTHON)" "$(RASA_ENV)"
	uv pip install --quiet --python "$(RASA_ENV)/bin/python" --no-deps \
		-r $(RASA_REQUIREMENTS)
	$(RASA_RUN_ENV) "$(RASA)" --version
	touch "$@"
	@echo "rasa-env: $(RASA_ENV)"

# Re-pin after editing nlu/rasa-requirements.in (changes the env's hash, so a new env).
rasa-requirements:
	uv pip compile nlu/rasa-requirements.in --python-version 3.10 \
		--python-platform x86_64-manylinux_2_28 --no-header --annotation-style line \
		-o $(RASA_REQUIREMENTS)

rasa-train: $(RASA_MODEL)

$(RASA_MODEL): | $(RASA_ENV)/.installed $(RASA_TRAINING_FILES)
	mkdir -p "$(RASA_MODELS)"
	$(RASA_RUN_ENV) "$(RASA)" train nlu --config nlu/config.yml --domain nlu/domain.yml \
		--nlu nlu/data --out "$(RASA_MODELS)" --fixed-model-name sexto-nlu-$(RASA_MODEL_HASH)
	@echo "rasa-train: $@"

rasa-serve: $(RASA_MODEL)
	$(RASA_RUN_ENV) "$(RASA)" run --enable-api --interface $(RASA_HOST) --port $(RASA_PORT) \
		--model "$(RASA_MODEL)"

# Background server for tests and CI: returns once /status answers (or fails with the log).
rasa-start: $(RASA_MODEL)
	@mkdir -p "$(dir $(RASA_PID_FILE))" "$(dir $(RASA_LOG_FILE))"
	@if curl -sf "$(RASA_URL)/status" >/dev/null 2>&1; then \
		echo "rasa-start: already serving on $(RASA_URL)"; exit 0; fi; \
	$(RASA_RUN_ENV) nohup "$(RASA)" run --enable-api --interface $(RASA_HOST) \
		--port $(RASA_PORT) --model "$(RASA_MODEL)" >"$(RASA_LOG_FILE)" 2>&1 & \
	echo $$! >"$(RASA_PID_FILE)"; \
	for i in $$(seq $(RASA_START_TIMEOUT)); do \
		if curl -sf "$(RASA_URL)/status" >/dev/null 2>&1; then \
			echo "rasa-start: serving on $(RASA_URL) after $${i}s (pid $$(cat $(RASA_PID_FILE)))"; \
			exit 0; fi; \
		kill -0 $$(cat "$(RASA_PID_FILE)") 2>/dev/null || break; sleep 1; done; \
	echo "rasa-start: not serving, see $(RASA_LOG_FILE)"; tail -20 "$(RASA_LOG_FILE)"; exit 1

rasa-stop:
	@if [ -f "$(RASA_PID_FILE)" ]; then kill $$(cat "$(RASA_PID_FILE)") 2>/dev/null || true; \
		rm -f "$(RASA_PID_FILE)"; echo "rasa-stop: stopped"; else echo "rasa-stop: not running"; fi

nlu-eval:
	$(NLU_UV_RUN) python -m nlu.cli compare $(NLU_HOLDOUT) --rasa-url $(RASA_URL)
