"""``pods``: the command line, a thin layer over the Client API and the only place that prints
and exits. The console script is ``pytest_pods.cli:main``; ``python -m pytest_pods.cli`` runs it too."""

from pytest_pods.cli.main import VERBS, build_parser, main

__all__ = ["VERBS", "build_parser", "main"]
