"""What the verb modules share: the record of a verb (its flags, its handler), the argparse that
exits as docker does, and docker's exit code for an engine error."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, NoReturn, TypeAlias

if TYPE_CHECKING:
    from pytest_pods.client.contract import ClientAPI
    from pytest_pods.client.local import Client

# docker's exit code for an error of the engine (bad flag, unknown image, name in use)
ENGINE_ERROR = 125


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 125 (as docker does) with one line naming the problem."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message}. See '{self.prog} --help'.\n")
        sys.exit(ENGINE_ERROR)


# what a verb's add function gets: the subparsers of `pods`, whose parsers are Parsers
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"


class Verb(NamedTuple):
    """A verb that works on either engine, local or remote (``--host``): ``add(subparsers, verb)``
    adds its parser; ``run(client, args)`` does it and returns the exit code."""

    add: Callable[[Subparsers, str], None]
    run: Callable[[ClientAPI, argparse.Namespace], int]


class LocalVerb(NamedTuple):
    """A verb of the local engine only (its store, its networks, its host)."""

    add: Callable[[Subparsers, str], None]
    run: Callable[[Client, argparse.Namespace], int]


class Command(NamedTuple):
    """A verb that needs no client (``pods daemon`` makes its own engine)."""

    add: Callable[[Subparsers, str], None]
    run: Callable[[argparse.Namespace], int]


AnyVerb: TypeAlias = Verb | LocalVerb | Command
