"""The engine pool's options (issue 20): --pods-host lists, worker placement, --tx env specs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pytest_pods.plugin.hooks import engine_for, engine_pool, tx_engines


def test_a_pool_is_comma_separated_and_keeps_its_order() -> None:
    assert engine_pool("tcp://a:2376, tcp://b:2376,,unix:///run/p.sock") == [
        "tcp://a:2376", "tcp://b:2376", "unix:///run/p.sock"]
    assert engine_pool(None) == [] and engine_pool("") == []
    assert engine_pool("docker") == ["docker"]


def test_the_forms_without_slashes_a_tx_spec_needs_are_taken() -> None:
    assert engine_pool("tcp:127.0.0.1:2376,unix:/run/p.sock") == ["tcp://127.0.0.1:2376", "unix:///run/p.sock"]


def test_a_spec_cut_at_its_slashes_is_refused_naming_the_form_to_write() -> None:
    with pytest.raises(pytest.UsageError, match=r"tcp:HOST:PORT or unix:/PATH"):
        engine_pool("tcp:")


def test_workers_are_placed_by_index_modulo_the_pool() -> None:
    pool = ["A", "B", "C"]
    assert [engine_for(pool, w) for w in ("gw0", "gw1", "gw2", "gw3", "gw7")] == ["A", "B", "C", "A", "B"]
    assert engine_for(pool, "main") == "A"
    assert engine_for([], "gw1") is None


def test_the_controller_reads_its_workers_engines_from_tx_specs() -> None:
    config: Any = SimpleNamespace(option=SimpleNamespace(tx=[
        "popen//env:PODS_HOST=tcp:127.0.0.1:1", "popen//env:PODS_HOST=tcp:127.0.0.1:2",
        "popen//env:PODS_HOST=tcp:127.0.0.1:1", "ssh=ci@runner//python=python3"]))
    assert tx_engines(config) == ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]
    assert tx_engines(SimpleNamespace(option=SimpleNamespace())) == []  # type: ignore[arg-type]
