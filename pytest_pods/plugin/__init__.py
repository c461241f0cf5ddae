"""The pytest face: the ``pytest11`` entry point (``pytest_pods.plugin``) is this module, which
re-exports the hook implementations and the built-in fixtures so that pytest finds them here."""

from pytest_pods.plugin.hooks import (
    pods,
    postgres,
    postgres_image,
    pytest_addhooks,
    pytest_addoption,
    pytest_configure,
    pytest_fixture_setup,
    pytest_report_header,
    pytest_runtest_makereport,
    pytest_runtest_protocol,
    pytest_sessionfinish,
    pytest_sessionstart,
    pytest_terminal_summary,
    redis,
    redis_image,
)

#: issue 17: the image-alias options and their report lines, in a plugin module of their own
#: issue 17: the catalogue of ready services (a module each, re-exported by the package)
pytest_plugins = ["pytest_pods.plugin.image_aliases", "pytest_pods.plugin.catalog"]

__all__ = [
    "pods",
    "postgres",
    "postgres_image",
    "pytest_addhooks",
    "pytest_addoption",
    "pytest_configure",
    "pytest_fixture_setup",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_runtest_protocol",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "pytest_terminal_summary",
    "redis",
    "redis_image",
]
