"""The record of a verb, as each resource module lists its verbs: the function that adds the
verb's parser and the one that runs it. Three kinds, told apart by ``kind``: a verb of either
engine, a verb of the local engine only, and a command that needs no client."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeAlias

if TYPE_CHECKING:
    from pytest_pods.cli.main import Parser
    from pytest_pods.client.contract import ClientAPI
    from pytest_pods.client.local import Client

# what a verb's add function gets: the subparsers of `pods` (their parsers are main.Parser)
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"


class Verb(NamedTuple):
    """A verb that works on either engine, local or remote (``--host``): ``add(subparsers, verb)``
    adds its parser; ``run(client, args)`` does it and returns the exit code."""

    add: Callable[[Subparsers, str], None]
    run: Callable[[ClientAPI, argparse.Namespace], int]
    kind: Literal["either"] = "either"


class LocalVerb(NamedTuple):
    """A verb of the local engine only (its store, its networks, its host)."""

    add: Callable[[Subparsers, str], None]
    run: Callable[[Client, argparse.Namespace], int]
    kind: Literal["local"] = "local"


class Command(NamedTuple):
    """A verb that needs no client (``pods daemon`` makes its own engine)."""

    add: Callable[[Subparsers, str], None]
    run: Callable[[argparse.Namespace], int]
    kind: Literal["command"] = "command"


AnyVerb: TypeAlias = "Verb | LocalVerb | Command"
