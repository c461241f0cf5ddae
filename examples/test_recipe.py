"""The main recipe at database isolation: the notes API and its worker, built from their Dockerfile,
with Postgres and Redis on one network; each test gets its own database and Redis database on
servers the session shares (cheaper than fresh servers: a clone of a template, ~20 ms).

The app and the worker reach the servers as other containers do, by the addresses the service
objects give for the network (``network_host``); the tests reach all of them from the host.
``pytest --pods-reuse`` keeps the servers and the network between runs on a developer machine;
``pytest -n 2`` (pytest-xdist) gives each worker its own servers.
"""

from __future__ import annotations

import time

import pytest
import requests

from pytest_pods import Container, container, image, network, postgres_container, redis_container, wait
from pytest_pods.plugin.services import Postgres, Redis

backend = network(scope="session")
db = postgres_container(isolation="database", network=backend)
cache = redis_container(isolation="database", network=backend)
app_image = image("app", tag="examples/notes:latest")
settings = {
    "DB_HOST": "{db.network_host}", "DB_PORT": "{db.network_port}", "DB_NAME": "{db.dbname}",
    "REDIS_HOST": "{cache.network_host}", "REDIS_PORT": "{cache.network_port}", "REDIS_DB": "{cache.db}",
}
app = container(image=app_image, network=backend, ports=[8080], environment=settings,
                wait=wait.http(8080, "/health"))
worker = container(image=app_image, command=["python3", "-u", "/app/notes.py", "worker"], network=backend,
                   environment=settings, wait=wait.log("worker ready"))


@pytest.fixture
def http() -> requests.Session:
    """Scope: function. Straight to the published ports, never through a proxy."""
    session = requests.Session()
    session.trust_env = False
    return session


def words_of(http: requests.Session, app: Container, note_id: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        answer = http.get(app.url(8080, f"/notes/{note_id}/words"), timeout=5)
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return int(answer.json()["words"])
        time.sleep(0.05)


def test_the_worker_counts_the_words_of_a_new_note(http: requests.Session, app: Container,
                                                   worker: Container, db: Postgres) -> None:
    note_id = http.post(app.url(8080, "/notes"), json={"text": "three little words"}, timeout=5).json()["id"]

    assert words_of(http, app, note_id) == 3
    assert db.psql(f"SELECT words FROM notes WHERE id = {note_id}") == "3"
    assert f"counted the words of note {note_id}" in worker.logs().decode()


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_has_its_own_database_and_cache(run: int, http: requests.Session, app: Container,
                                                   worker: Container, db: Postgres, cache: Redis) -> None:
    # whichever runs second would see the other's note, or its queue, if anything were shared
    assert db.psql("SELECT count(*) FROM notes") == "0"
    assert cache.client().dbsize() == 0

    note_id = http.post(app.url(8080, "/notes"), json={"text": f"run {run}"}, timeout=5).json()["id"]

    assert note_id == 1
    assert words_of(http, app, note_id) == 2
    assert db.network_dsn.endswith(f"@{db.name}:5432/{db.dbname}")
