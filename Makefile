# pytest-pods: `make demo` runs the examples, `make test` runs every test. Both set up what they
# need first (Debian packages, the package with its test extras, base images), idempotently.

PYTHON   ?= python3
CACHE    ?= $(CURDIR)/.cache
# The engine root the tests and the demo use. Base images (busybox, Debian) are bootstrapped into
# it once and kept between runs; delete $(CACHE) to start over.
PODS_TEST_ROOT ?= $(CACHE)/pods-root
PODS     = $(PYTHON) -m pytest_pods.cli --root $(PODS_TEST_ROOT)
APT_PACKAGES = busybox-static mmdebstrap runc iptables iproute2 skopeo docker-registry apache2-utils openssl
PYTEST_ARGS ?=

export PODS_TEST_ROOT

.PHONY: demo test check setup deps images unit bench clean

demo: setup images
	$(PYTHON) -m pytest examples -v -p no:cacheprovider --pods-root $(PODS_TEST_ROOT)

test: setup images
	$(PYTHON) -m pytest tests -p no:cacheprovider $(PYTEST_ARGS)

# The shape of the code (issue 12): strict types, lint, the import rules over the source tree, and the
# CLI's start-up budget. CI runs it before the tests.
check: deps
	@$(PYTHON) -c "import mypy, ruff" 2>/dev/null || $(PYTHON) -m pip install -q -e '.[check]'
	$(PYTHON) -m mypy
	$(PYTHON) -m ruff check
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/unit/test_layout.py
	$(PYTHON) bench/import_budget.py

unit: deps
	$(PYTHON) -m pytest tests/unit -q

setup: deps

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@$(PYTHON) -c "import os, pytest_pods, filelock, xdist, zstandard, cryptography, psycopg, redis, docker, testcontainers, hypothesis; \
	  assert os.path.dirname(pytest_pods.__file__) == os.path.realpath('pytest_pods')" 2>/dev/null || \
	  $(PYTHON) -m pip install -q -e '.[test]'
	@$(PYTHON) -m compileall -q pytest_pods  # the CLI's start time: no compile on every run

images: deps
	@mkdir -p $(PODS_TEST_ROOT)
	@$(PODS) inspect --type image -f '{{.Id}}' busybox:latest >/dev/null 2>&1 || $(PODS) bootstrap busybox
	@$(PODS) inspect --type image -f '{{.Id}}' debian:bookworm >/dev/null 2>&1 || \
	  { echo "bootstrapping debian:bookworm with mmdebstrap (once, about a minute)"; $(PODS) bootstrap debian:bookworm; }

bench: setup
	$(PYTHON) bench/start_latency.py

clean:
	-$(PODS) system prune -f
	rm -rf $(CACHE)
