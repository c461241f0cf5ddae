"""``pods``: the command line, a thin layer over the Client API and the only place that prints
and exits. The console script is ``pytest_pods.cli:main``; ``python -m pytest_pods.cli`` runs it too.

``main`` is the launcher (:mod:`pytest_pods.cli.resident`): it hands the call to the resident
helper when one answers, else runs it here. ``VERBS`` and ``build_parser`` (of
:mod:`pytest_pods.cli.main`) load on first use: ``pods`` imports neither argparse nor the engine
before it knows it needs them (issue 19)."""

from pytest_pods.cli.resident import lazy_cli_attribute as __getattr__  # noqa: F401 (a module's __getattr__)
from pytest_pods.cli.resident import main

__all__ = ["VERBS", "build_parser", "main"]
