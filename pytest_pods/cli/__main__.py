"""``python -m pytest_pods.cli``."""

from pytest_pods.cli.main import main

main()
