VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-deps demo scale-demo test lint bench clean

# Byte code compiled at install, as pip does (uv does not by default): where
# PYTHONDONTWRITEBYTECODE is set (this VM), every process would compile its ~2,500 modules
# again (about 6 s of each server, shipper or CLI start). The project's own sources are
# compiled on each install (only changed files: well under a second).
install: $(STAMP)
	$(PY) -m compileall -q src

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --python $(PY) --quiet -e '.[dev,bench]'
	$(PY) -m compileall -q -j 0 $(VENV)/lib
	touch $(STAMP)

# Debian packages the tests and benchmarks run for real: prometheus (promtool: metrics lint and
# the alert rules' unit tests; the server: the scrape test), wrk (load), kubectl (`kubectl
# kustomize` builds the exported manifests; no cluster needed), chromium (the dashboard's browser
# test drives it through Playwright; no browser is downloaded), nginx (the load balancer in front
# of the replicas in the scale-out test and `make scale-demo`; /usr/sbin is not on every PATH).
system-deps:
	@missing=""; \
	{ command -v promtool && command -v prometheus; } >/dev/null || missing="$$missing prometheus"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v kubectl >/dev/null || missing="$$missing kubectl"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

demo: install
	$(VENV)/bin/fraudgate demo

# Three replicas behind nginx over one PostgreSQL ledger (127.0.0.1:5432, a database created for
# the run and dropped): split, one arm per card, weight propagation, a SIGKILLed replica, report.
scale-demo: install system-deps
	$(PY) bench/scale_out.py

test: install system-deps
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy src

bench: install system-deps
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .fraudgate
