"""The notes API (examples/app) against real Postgres and Redis, each test on fresh servers.

Per test: Postgres, Redis and the app, started on one bridge network that the module shares; the
app reaches the servers by container name, the tests reach all three through published ports.
The app image is built once per session (the layer cache makes later sessions take ms).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
import requests

from pytest_pods import Container, container, image, network, wait
from pytest_pods.plugin.services import Postgres, Redis, postgres_container, redis_container

backend = network(scope="module")
db = postgres_container(network=backend)
cache = redis_container(network=backend)
app_image = image("app", tag="examples/notes:latest")
app = container(
    image=app_image, network=backend, ports=[8080],
    environment={
        "DB_HOST": "{db.name}", "DB_PORT": "5432",
        "REDIS_HOST": "{cache.name}", "REDIS_PORT": "6379",
    },
    wait=wait.http(8080, "/health"),
)


class Api:
    """The app's HTTP API from the host, on its published port."""

    def __init__(self, ctr: Container) -> None:
        self.base = ctr.url(8080).rstrip("/")
        self.http = requests.Session()
        self.http.trust_env = False  # straight to the published port, never through a proxy

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=5)

    def post(self, path: str, body: Any = None, *, data: bytes | None = None) -> requests.Response:
        return self.http.post(self.base + path, json=body, data=data, timeout=5,
                              headers={"Content-Type": "application/json"})


@pytest.fixture
def api(app: Container) -> Api:
    """Scope: function. Depends on: app. A client for the notes API."""
    return Api(app)


def test_note_is_read_back_first_from_the_database_then_from_the_cache(api: Api) -> None:
    created = api.post("/notes", {"text": "buy milk"})
    assert created.status_code == 201
    note_id = created.json()["id"]
    assert created.headers["Location"] == f"/notes/{note_id}"

    first, second = api.get(f"/notes/{note_id}"), api.get(f"/notes/{note_id}")

    assert (first.status_code, first.headers["X-Cache"]) == (200, "miss")
    assert (second.status_code, second.headers["X-Cache"]) == (200, "hit")
    assert first.json() == second.json() == {"id": note_id, "text": "buy milk"}


def test_note_is_a_row_in_postgres_and_a_key_in_redis(api: Api, db: Postgres, cache: Redis) -> None:
    note_id = api.post("/notes", {"text": "é ünïcode ✓"}).json()["id"]
    with psycopg.connect(db.dsn) as conn:  # from the host, on Postgres's published port
        row = conn.execute("SELECT text FROM notes WHERE id = %s", (note_id,)).fetchone()
    assert row == ("é ünïcode ✓",)
    assert cache.client().get(f"note:{note_id}") is None  # cached on the first read only

    api.get(f"/notes/{note_id}")

    r = cache.client()
    assert json.loads(r.get(f"note:{note_id}")) == {"id": note_id, "text": "é ünïcode ✓"}
    assert 0 < r.ttl(f"note:{note_id}") <= 300


def test_missing_note_is_404_and_not_cached(api: Api, cache: Redis) -> None:
    response = api.get("/notes/999")
    assert response.status_code == 404
    assert response.json() == {"error": "no note 999"}
    assert cache.client().exists("note:999") == 0
    assert api.get("/notes/abc").status_code == 404


BAD_BODIES = [b"{not json", b"\xff", b"[]", b'{"title": "x"}', b'{"text": ""}', b'{"text": 1}', b""]


def test_bad_body_is_400_and_stores_nothing(api: Api, db: Postgres) -> None:
    answers = {body: api.post("/notes", data=body) for body in BAD_BODIES}
    assert {body: r.status_code for body, r in answers.items()} == dict.fromkeys(BAD_BODIES, 400)
    assert all("error" in r.json() for r in answers.values())
    assert db.psql("SELECT count(*) FROM notes") == "0"


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_fresh_servers(run: int, api: Api, db: Postgres, cache: Redis) -> None:
    # Whichever runs second would see the other's note if Postgres or Redis were shared.
    assert db.psql("SELECT count(*) FROM notes") == "0"
    assert cache.client().dbsize() == 0

    note_id = api.post("/notes", {"text": f"run {run}"}).json()["id"]
    api.get(f"/notes/{note_id}")

    assert note_id == 1  # a new sequence: a new database
    assert db.psql("SELECT text FROM notes") == f"run {run}"
    assert cache.client().keys("note:*") == [b"note:1"]


def test_health_is_503_while_redis_is_down(api: Api, cache: Redis) -> None:
    assert api.get("/health").json() == {"db": "ok", "redis": "ok"}

    cache.container.stop(timeout=2)

    health = api.get("/health")
    assert health.status_code == 503
    assert health.json()["db"] == "ok" and health.json()["redis"] != "ok"
