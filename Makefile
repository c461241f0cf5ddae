# pytest-pods: `make demo` runs the examples, `make test` runs every test. Both set up what they
# need first (Debian packages, the package with its test extras, base images), idempotently.

CACHE    ?= $(CURDIR)/.cache
IS_ROOT  := $(shell [ "$$(id -u)" = 0 ] && echo yes)
# Two engine roots (issue 15). `make images` and `make demo` use the engine's default root, the
# one `pods` and the plugin use with no option: $PODS_ROOT, else /var/lib/pytest-pods as root and
# $XDG_DATA_HOME/pytest-pods (~/.local/share/pytest-pods) as an ordinary user; so after `make images`
# a user's own `pytest` and `pods build` find busybox and Debian there. `make test` runs on a root
# of its own, $(PODS_TEST_ROOT), so the suite never touches a user's images; its bases are loaded
# from $(BASE_IMAGES_TAR), saved once from the default root (Debian is bootstrapped once, not twice).
# Base images are kept between runs; delete $(CACHE) (and `pods rmi` them) to start over.
ifeq ($(IS_ROOT),yes)
PYTHON   ?= python3
PODS_TEST_ROOT ?= $(CACHE)/pods-root
else
# an ordinary user: Debian's python in a venv of the clone, and a test root in the user's home
PYTHON   ?= $(CACHE)/venv-rootless/bin/python
PODS_TEST_ROOT ?= $(HOME)/.cache/pods-test-root
endif
PODS      = $(PYTHON) -m pytest_pods.cli
PODS_TEST = $(PYTHON) -m pytest_pods.cli --root $(PODS_TEST_ROOT)
APT_PACKAGES = busybox-static mmdebstrap runc iptables iproute2 skopeo docker-registry apache2-utils openssl \
               uidmap passt slirp4netns python3-venv
# without their recommends; docker.io is the reference dockerd the tests start on their own
# (tests/dockerd_helper.py): its install must start no docker or containerd service (a policy-rc.d
# that refuses every start is put in place for it when the host has none)
APT_PACKAGES_BARE = docker-compose docker.io
PYTEST_ARGS ?=

# Rootless (issue 13). As root, `make test` also runs the rootless suites as $(ROOTLESS_USER) (a user
# with subordinate ids; $(NORANGE_USER) has none), through runuser, with Debian's python in a venv the
# users can read (root's pyenv under /root is not), then tests/rootless as root (leaks, isolation, two
# users at once). Run by an ordinary user, `make test`/`make demo` run the rootless parts as that user.
ROOTLESS_USER  ?= pods-rootless
ROOTLESS_USER2 ?= pods-rootless2
NORANGE_USER   ?= pods-norange
ROOTLESS_VENV  ?= $(CACHE)/venv-rootless
RPYTHON        = $(ROOTLESS_VENV)/bin/python
BASE_IMAGES_TAR = $(CACHE)/base-images.tar
# the suites that run in both modes (the same test functions); what cannot apply rootless skips
# with the limit named (tests/conftest.py ROOTLESS_LIMITS)
ROOTLESS_SUITES ?= tests/integration tests/compat tests/plugin tests/unit
ROOTLESS_ARGS  ?=

export PODS_TEST_ROOT
ifdef PODS_ROOT
export PODS_ROOT
endif

.PHONY: demo test check setup deps images test-images unit bench clean rootless-setup rootless-images \
        test-rootless test-rootless-root test-rootless-suites demo-rootless

ifeq ($(IS_ROOT),yes)
demo: setup images
	$(PYTHON) -m pytest examples -v -p no:cacheprovider

test: setup test-images rootless-setup
	$(PYTHON) -m pytest tests -p no:cacheprovider --ignore=tests/rootless $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-rootless
else
# an ordinary user: the rootless parts only, as this user, on its own root
# the demo's web server has a memory limit: without a delegated cgroup v2 (see README, Rootless) the
# rootless engine refuses limits unless told to drop them, which the demo does (the header says so)
demo: rootless-setup images
	$(PYTHON) -m pytest examples -v -p no:cacheprovider --pods-ignore-limits

test: rootless-setup test-images
	$(PYTHON) -m pytest $(ROOTLESS_SUITES) -p no:cacheprovider $(PYTEST_ARGS)
endif

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
ifneq ($(IS_ROOT),yes)
	@echo "not root: skipping the Debian packages (root installs them once: apt-get install $(APT_PACKAGES) $(APT_PACKAGES_BARE))"
	@[ -x $(PYTHON) ] || /usr/bin/python3 -m venv $(CACHE)/venv-rootless
else
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi; \
	bare=""; for p in $(APT_PACKAGES_BARE); do dpkg -s $$p >/dev/null 2>&1 || bare="$$bare $$p"; done; \
	if [ -n "$$bare" ]; then \
	  echo "installing Debian packages:$$bare"; \
	  rcd=""; if [ ! -e /usr/sbin/policy-rc.d ]; then rcd=yes; \
	    printf '#!/bin/sh\n# pytest-pods: no service starts while docker.io installs\nexit 101\n' >/usr/sbin/policy-rc.d; \
	    chmod 0755 /usr/sbin/policy-rc.d; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$bare >/dev/null; \
	  st=$$?; [ -z "$$rcd" ] || rm -f /usr/sbin/policy-rc.d; [ $$st = 0 ] || exit $$st; \
	fi
endif
	@$(PYTHON) -P -c "import os, pytest_pods, filelock, xdist, zstandard, cryptography, psycopg, redis, docker, testcontainers, hypothesis, yaml, pika, pymysql, pymemcache, paho.mqtt, nats, boto3, paramiko, ldap3, selenium; \
	  assert os.path.dirname(pytest_pods.__file__) == os.path.realpath('pytest_pods')" 2>/dev/null || \
	  $(PYTHON) -m pip install -q -e '.[test]'
	@[ ! -w pytest_pods ] || $(PYTHON) -m compileall -q pytest_pods  # the CLI's start time: no compile on every run

# the base images in the default root (see the top), once: from $(BASE_IMAGES_TAR) when a run
# (or a CI cache) left one, else bootstrapped
images: deps
	@$(PODS) inspect --type image -f '{{.Id}}' busybox:latest debian:bookworm >/dev/null 2>&1 || \
	  [ ! -s $(BASE_IMAGES_TAR) ] || $(PODS) load -q -i $(BASE_IMAGES_TAR)
	@$(PODS) inspect --type image -f '{{.Id}}' busybox:latest >/dev/null 2>&1 || $(PODS) bootstrap busybox
	@$(PODS) inspect --type image -f '{{.Id}}' debian:bookworm >/dev/null 2>&1 || \
	  { echo "bootstrapping debian:bookworm with mmdebstrap (once per root, about a minute)"; $(PODS) bootstrap debian:bookworm; }

# busybox and Debian as a 0644 tar, saved once from the default root: for the test root, and for
# the rootless test users (each loads it into its own test root when it lacks them)
rootless-images: images
	@mkdir -p $(CACHE)
	@[ -s $(BASE_IMAGES_TAR) ] || { $(PODS) save -o $(BASE_IMAGES_TAR).tmp busybox:latest debian:bookworm && \
	  chmod 0644 $(BASE_IMAGES_TAR).tmp && mv $(BASE_IMAGES_TAR).tmp $(BASE_IMAGES_TAR); }

# the test root's base images: loaded from that tar when it lacks them
test-images: rootless-images
	@mkdir -p $(PODS_TEST_ROOT)
	@$(PODS_TEST) inspect --type image -f '{{.Id}}' busybox:latest debian:bookworm >/dev/null 2>&1 || \
	  $(PODS_TEST) load -q -i $(BASE_IMAGES_TAR)

# -- rootless -------------------------------------------------------------------------------------
# As root: the test users, their runtime dirs, the venv they can read, the base images as a tar.
# As an ordinary user: what root must do once is named, and the user's own checks run.
rootless-setup: deps
ifeq ($(IS_ROOT),yes)
	@id -u $(ROOTLESS_USER) >/dev/null 2>&1 || useradd -m -s /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 $(ROOTLESS_USER)
	@grep -q '^$(ROOTLESS_USER):' /etc/subuid || usermod --add-subuids 200000-265535 --add-subgids 200000-265535 $(ROOTLESS_USER)
	@id -u $(ROOTLESS_USER2) >/dev/null 2>&1 || useradd -m -s /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 $(ROOTLESS_USER2)
	@grep -q '^$(ROOTLESS_USER2):' /etc/subuid || usermod --add-subuids 300000-365535 --add-subgids 300000-365535 $(ROOTLESS_USER2)
	@id -u $(NORANGE_USER) >/dev/null 2>&1 || useradd -m -s /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 $(NORANGE_USER)
	@[ ! -c /dev/net/tun ] || chmod 0666 /dev/net/tun  # Debian's default: pasta and slirp4netns open it as the user
	@for u in $(ROOTLESS_USER) $(ROOTLESS_USER2) $(NORANGE_USER); do \
	  d=/run/user/$$(id -u $$u); mkdir -p /run/user; \
	  [ -d $$d ] || install -d -m 0700 -o $$u -g $$(id -g $$u) $$d; done
	@flock /tmp/venv-rootless.lock sh -c '\
	  [ -x $(RPYTHON) ] || /usr/bin/python3 -m venv $(ROOTLESS_VENV); \
	  $(RPYTHON) -P -c "import os, pytest_pods, xdist, zstandard, cryptography, psycopg, redis, docker, testcontainers, hypothesis, yaml, pika, pymysql, pymemcache, paho.mqtt, nats, boto3, paramiko, ldap3, selenium; \
	    assert os.path.dirname(pytest_pods.__file__) == os.path.realpath(\"pytest_pods\")" 2>/dev/null || \
	  $(RPYTHON) -m pip install -q -e ".[test]"'
	@chmod -R a+rX $(ROOTLESS_VENV)
else
	@for t in newuidmap newgidmap pasta; do command -v $$t >/dev/null || [ -x /usr/bin/$$t ] || \
	  echo "missing $$t: as root, once: apt-get install uidmap passt slirp4netns"; done
	@grep -q "^$$(id -un):" /etc/subuid 2>/dev/null || echo "no subordinate ids for $$(id -un) (images with other owners \
	will not run): as root, once: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $$(id -un)"
endif

AS_USER = runuser -u $(1) -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=$$(getent passwd $(1) | cut -d: -f6) \
	USER=$(1) LOGNAME=$(1) XDG_RUNTIME_DIR=/run/user/$$(id -u $(1)) PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8
USER_ROOT = $$(getent passwd $(1) | cut -d: -f6)/.cache/pods-test-root

# the rootless suites as $(ROOTLESS_USER), then tests/rootless as root (leaks, isolation, two users)
test-rootless: test-rootless-suites
	$(MAKE) --no-print-directory test-rootless-root

test-rootless-suites: rootless-setup rootless-images
	@echo "== rootless suites as $(ROOTLESS_USER): $(ROOTLESS_SUITES)"
	@$(call AS_USER,$(ROOTLESS_USER)) sh -c 'mkdir -p "$$HOME/.cache" && cd $(CURDIR) && \
	  P="$(RPYTHON) -m pytest_pods.cli --root $(call USER_ROOT,$(ROOTLESS_USER))"; \
	  $$P inspect --type image -f "{{.Id}}" busybox:latest debian:bookworm >/dev/null 2>&1 || $$P load -q -i $(BASE_IMAGES_TAR)'
	$(call AS_USER,$(ROOTLESS_USER)) PODS_TEST_ROOT=$(call USER_ROOT,$(ROOTLESS_USER)) \
	  sh -c 'cd $(CURDIR) && exec $(RPYTHON) -m pytest $(ROOTLESS_SUITES) -p no:cacheprovider $(ROOTLESS_ARGS)'
	@# the session's test process kept the user's engine while it ran (it joined it); now it may go
	@$(call AS_USER,$(ROOTLESS_USER)) $(RPYTHON) -m pytest_pods.cli --root $(call USER_ROOT,$(ROOTLESS_USER)) system reap >/dev/null
	@# and any resident helper a `pods` of the suites started (tests/rootless counts the user's processes)
	@$(call AS_USER,$(ROOTLESS_USER)) $(RPYTHON) -m pytest_pods.cli resident stop >/dev/null

test-rootless-root: rootless-setup rootless-images
	$(PYTHON) -m pytest tests/rootless -p no:cacheprovider $(ROOTLESS_ARGS)

bench: setup
	$(PYTHON) bench/start_latency.py

clean:  # the test root only: the default root holds a user's own images
	-$(PODS_TEST) system prune -f
	rm -rf $(CACHE)
