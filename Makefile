# supportline: `make run` starts the service, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: `make run` needs only requirements.txt (the service and its default engine); `make test` and the
# benchmarks also need the optional engines and the test tools (torch, Playwright, ...). A full install counts
# as the service's too, so `make run` after `make test` installs nothing (and writes nothing into the venv).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
REQS := requirements.txt requirements-openai-whisper.txt requirements-whisper-base.txt requirements-dev.txt

.PHONY: run test venv run-venv system prism migrate bench bench-transcription bench-spanish bench-webhooks bench-paging bench-mail lint messages clean

$(RUN_STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $(RUN_STAMP)

$(STAMP): $(REQS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

run-venv:
	@if ! { [ $(STAMP) -nt requirements.txt ] || [ $(RUN_STAMP) -nt requirements.txt ]; }; then \
		$(MAKE) --no-print-directory $(RUN_STAMP); fi

venv: $(STAMP)

system:
	@scripts/ensure-system.sh

prism: tools/prism/node_modules/.bin/prism

tools/prism/node_modules/.bin/prism: tools/prism/package.json tools/prism/package-lock.json
	npm ci --prefix tools/prism --no-audit --no-fund --loglevel=error
	@touch $@

migrate: run-venv
	$(VENV)/bin/alembic upgrade head

run: run-venv migrate
	@scripts/run.sh

test: venv system prism
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .

# Prompts and texts changed in the code: extract them and update every languages/<code>.po (new entries
# come in untranslated, changed ones fuzzy: the catalogue test fails until they are translated).
messages: venv
	$(VENV)/bin/pybabel extract -F languages/babel.cfg -k N_ --add-comments=TRANSLATORS: --sort-output \
		--project=supportline --version=1 -o languages/messages.pot .
	@for po in languages/*.po; do \
		$(VENV)/bin/pybabel update -i languages/messages.pot -o $$po -l $$(basename $$po .po) --no-wrap; done

bench-transcription: venv system
	$(PY) -m bench.transcription --settings

bench-spanish: venv system
	$(PY) -m bench.spanish

bench-webhooks: venv
	$(PY) -m bench.webhooks

bench-paging: venv prism
	$(PY) -m bench.paging --runs 50 --busy-runs 10

bench-mail: venv system
	$(PY) -m bench.mail

bench: bench-webhooks bench-paging bench-transcription bench-spanish bench-mail

clean:
	rm -rf $(VENV) tools/prism/node_modules var/test-audio

.PHONY: demo test-faults

demo: run-venv migrate
	@scripts/demo.sh

test-faults: venv system prism
	$(PY) -m pytest tests/faults
