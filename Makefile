# Two entry points for a fresh machine with Python 3.11+ and make: `make demo` and `make test`.
# Both build the pinned environment in .venv/ when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed

.PHONY: demo test bench lock clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==0.13.9
	$(UV) pip install -q -p $(PY) -r requirements.lock
	$(UV) pip install -q -p $(PY) --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	@$(PY) -m tibanna.demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q tests

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Re-resolve the pins after editing pyproject.toml's dependencies.
lock: $(STAMP)
	$(UV) pip compile pyproject.toml --extra all -p 3.11 --no-header -o requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
