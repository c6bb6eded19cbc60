# Two commands for a newcomer: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= demo-out

.PHONY: demo test lint bench venv clean browser

venv: $(VENV)/.installed

# torch is pinned to the build this project is tested with (pip finds it on the lab machines' disk).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: venv
	$(BIN)/featx demo --out $(DEMO_OUT)

test: venv browser lint
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check featx tests benchmarks

# Best effort: Debian's chromium for the report's headless-browser test (skipped without it). Never fails `make test`.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]' || timeout 120 apt-get update -qq) && \
	  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } || \
	  echo "note: chromium not installed; the report's browser test will be skipped"

bench: venv
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/probes.py --small

clean:
	rm -rf $(VENV) $(DEMO_OUT)
