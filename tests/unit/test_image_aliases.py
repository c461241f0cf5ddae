"""Image alias specs and lookups (issue 17): pure, no engine."""

from __future__ import annotations

import pytest

from pytest_pods.client.aliases import ImageAliases, Resolver
from pytest_pods.errors import ImageNotFoundError, InvalidArgumentError


@pytest.mark.parametrize("name", ["postgres", "postgres:16", "postgres:16.4", "postgres:latest",
                                  "docker.io/library/postgres:16", "library/postgres:13-bookworm",
                                  "index.docker.io/library/postgres:17-alpine"])
def test_the_official_preset_serves_the_official_postgres_names(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) == ("pytest-pods/postgres:15", False)


@pytest.mark.parametrize("name", ["redis", "redis:7", "docker.io/library/redis:7.2", "redis:6-alpine"])
def test_the_official_preset_serves_the_official_redis_names(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) == ("pytest-pods/redis:7", False)


@pytest.mark.parametrize("name", ["mariadb", "mariadb:10.11", "mariadb:11", "mysql", "mysql:8", "mysql:8.0",
                                  "docker.io/library/mysql:5.7"])
def test_the_official_preset_serves_mariadb_and_mysql_by_mariadb(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) == ("pytest-pods/mariadb:10.11", False)


@pytest.mark.parametrize("name", ["memcached", "memcached:1", "memcached:1.6", "memcached:1.6-alpine"])
def test_the_official_preset_serves_memcached(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) == ("pytest-pods/memcached:1.6", False)


@pytest.mark.parametrize("name", ["atmoz/sftp", "atmoz/sftp:latest", "atmoz/sftp:alpine", "atmoz/sftp:debian",
                                  "docker.io/atmoz/sftp:debian"])
def test_the_official_preset_serves_the_atmoz_sftp_names(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) == ("pytest-pods/sftp:9.2", False)


@pytest.mark.parametrize("name", ["atmoz/sftp:1", "atmoz/sftp:alpine-3.7", "atmoz/sftp@sha256:" + "a" * 64,
                                  "quay.io/atmoz/sftp", "library/atmoz-sftp", "other/sftp", "sftp"])
def test_other_sftp_names_and_atmoz_tags_are_not_aliased(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) is None


@pytest.mark.parametrize("name", ["eclipse-mosquitto", "eclipse-mosquitto:2", "eclipse-mosquitto:2.0.18",
                                  "docker.io/library/eclipse-mosquitto:latest"])
def test_the_official_preset_serves_eclipse_mosquitto(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) == ("pytest-pods/mosquitto:2.0", False)


@pytest.mark.parametrize("name", ["nats", "nats:2", "nats:2.10.24", "nats:2.10-alpine", "docker.io/library/nats"])
def test_the_official_preset_serves_nats(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) == ("pytest-pods/nats:2.9", False)


@pytest.mark.parametrize("name", ["mongo:7", "bitnami/postgresql:16", "ghcr.io/x/postgres:16",
                                  "localhost:5000/postgres:16", "postgres@sha256:" + "a" * 64,
                                  "postgres:16-custom", "pytest-pods/postgres:15"])
def test_the_preset_leaves_other_names_alone(name: str) -> None:
    assert ImageAliases.parse(["official"]).target(name) is None


def test_explicit_aliases_are_normalized_win_over_the_preset_and_none_clears() -> None:
    a = ImageAliases.parse(["official", "docker.io/library/postgres:16=my/pg:1, redis:7=my/redis"])
    assert a.target("postgres:16") == ("my/pg:1", True)
    assert a.target("postgres:15") == ("pytest-pods/postgres:15", False)
    assert a.target("redis:7") == ("my/redis:latest", True)
    assert not ImageAliases.parse(["official postgres:16=x", "none"])
    assert ImageAliases.parse(["none", "postgres:16=x"]).presets == ()


@pytest.mark.parametrize(("spec", "message"), [
    ("bogus", "image alias 'bogus': neither NAME=IMAGE nor a preset (official)"),
    ("Postgres:16=x", "image alias 'Postgres:16=x': invalid reference format: repository name must be lowercase"),
    ("postgres:16=", "image alias 'postgres:16=': invalid reference format"),
])
def test_a_malformed_spec_is_named(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ImageAliases.parse([spec])
    assert str(info.value).startswith(message)


class Images:
    """A store of names (the seam the resolver reads through): get() or ImageNotFoundError."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def get(self, name: str) -> object:
        if name not in self.names:
            raise ImageNotFoundError(f"No such image: {name}")
        return type("Img", (), {"id": "sha256:" + "b" * 64, "config": {"config": {"Labels": {
            "org.pytest-pods.provides": "PostgreSQL 15 from Debian 12 (bookworm)"}}}})()


class Holder:
    def __init__(self, images: Images) -> None:
        self.images: object = images
        self.containers: object = object()


def test_the_resolver_makes_a_missing_stand_in_once_reports_each_name_once_and_prefers_a_real_image() -> None:
    store = Images({"postgres:13"})
    made: list[str] = []
    lines: list[str] = []

    def make(image: str) -> bool:
        made.append(image)
        store.names.add(image)
        return True

    r = Resolver(ImageAliases.parse(["official"]), lines.append, make)
    r.install(Holder(store))
    assert r.resolve("postgres:16") == "pytest-pods/postgres:15"
    assert r.resolve("postgres:16") == "pytest-pods/postgres:15"
    assert r.resolve("busybox") == "busybox"
    assert r.resolve("postgres:13") == "postgres:13"  # the real image is there: no stand-in
    assert made == ["pytest-pods/postgres:15"]
    assert lines == ["image alias: postgres:16 -> pytest-pods/postgres:15 (PostgreSQL 15 from Debian 12 (bookworm))"]


def test_a_stand_in_that_cannot_be_made_names_both() -> None:
    r = Resolver(ImageAliases.parse(["postgres:16=my/pg:1"]), lambda line: None, lambda image: False)
    r.install(Holder(Images(set())))
    with pytest.raises(ImageNotFoundError, match=r"No such image: my/pg:1 \(the image alias of postgres:16\)"):
        r.resolve("postgres:16")


@pytest.mark.parametrize("name", ["quay.io/coreos/etcd:v3.5.0", "quay.io/coreos/etcd", "bitnami/etcd:3.4",
                                  "gcr.io/etcd-development/etcd:v3.5.0", "etcd"])
def test_the_official_preset_names_no_etcd_image(name: str) -> None:
    # another registry's names and a vendor's: only an explicit alias serves them
    assert ImageAliases.parse(["official"]).target(name) is None
    explicit = ImageAliases.parse(["official", f"{name}=pytest-pods/etcd:3.4"])
    assert explicit.target(name) == ("pytest-pods/etcd:3.4", True)
