"""The compose file parser (pytest_pods.compose_file, issue 16): interpolation as the Compose
Specification has it, the services' keys in their short and long forms, profiles and dependency
order, and one clear error (file, service, key) for what cannot work."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_pods.compose_file import ComposeFileError, Mount, interpolate, load, parse_duration, read_env_file


def write(tmp_path: Path, text: str, name: str = "docker-compose.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def err(msg: str) -> ValueError:
    return ValueError(msg)


@pytest.mark.parametrize(("text", "expected"), [
    ("${A}", "a"), ("$A", "a"), ("x${A}y", "xay"), ("$$A", "$A"), ("$${A}", "${A}"),
    ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"), ("${A:-d}", "a"),
    ("${UNSET:-${A}}", "a"), ("${UNSET:-${UNSET2:-deep}}", "deep"), ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""), ("${A?x}", "a"), ("cost: 5$$", "cost: 5$"),
    ("${UNSET:-a:b/c}", "a:b/c"),
])
def test_interpolation_forms(text: str, expected: str) -> None:
    assert interpolate(text, {"A": "a", "EMPTY": ""}, err) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("${EMPTY:?must be set}", "required variable EMPTY is missing a value: must be set"),
    ("${UNSET?}", "required variable UNSET is missing a value: is not set"),
    ("${A", "no closing"), ("$ 5", "'$' must be followed"), ("${A B}", "invalid interpolation format"),
])
def test_interpolation_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        interpolate(text, {"A": "a", "EMPTY": ""}, err)
    assert message in str(info.value)


def test_unset_plain_variable_is_blank_and_reported() -> None:
    missing: list[str] = []
    assert interpolate("x${NOPE}y$NOPE2", {}, err, missing) == "xy"
    assert missing == ["NOPE", "NOPE2"]


@pytest.mark.parametrize(("value", "ns"), [
    ("10s", 10 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("1.5s", 15 * 10**8), ("2h", 7200 * 10**9),
    (5, 5 * 10**9),
])
def test_durations(value: object, ns: int) -> None:
    assert parse_duration(value) == ns


@pytest.mark.parametrize("value", ["10", "1x", "s", "", True])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_env_file_forms(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        # a comment
        PLAIN=value # not part of it
        export EXPORTED=yes
        SINGLE='no ${PLAIN} here'
        DOUBLE="line\\nnext ${PLAIN}"
        REF=${PLAIN}-x
        FROM_SHELL
        EMPTY=
        """, ".env")
    assert read_env_file(path, {"FROM_SHELL": "shell"}) == {
        "PLAIN": "value", "EXPORTED": "yes", "SINGLE": "no ${PLAIN} here", "DOUBLE": "line\nnext value",
        "REF": "value-x", "FROM_SHELL": "shell", "EMPTY": ""}


def test_env_file_bad_line_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "GOOD=1\nthis is not it\n", ".env")
    with pytest.raises(ComposeFileError, match=r"\.env: line 2: 'this is not it' is not KEY=VALUE"):
        read_env_file(path)


FULL = """\
    name: shop
    services:
      web:
        build:
          context: ./app
          dockerfile: Dockerfile.dev
          args: [VERSION=1.2, FROM_ENV]
          target: runtime
        command: python -m app --port ${PORT:-8000}
        entrypoint: ["/entry.sh", "--flag"]
        environment:
          - DB_HOST=db
          - FROM_ENV
          - NOT_SET_ANYWHERE
        env_file: web.env
        ports:
          - "8000"
          - "127.0.0.1:9000:9000"
          - 7000-7001:8000-8001/udp
          - target: 5000
            published: 5001
            host_ip: 127.0.0.1
          - target: 6000
        networks:
          front:
            aliases: [shop, www]
          default:
        volumes:
          - data:/data:ro
          - ./static:/static
          - /anon
          - type: tmpfs
            target: /cache
            tmpfs: {size: 1000000}
          - type: volume
            source: data
            target: /seed
            volume: {nocopy: true}
        tmpfs: /run
        depends_on:
          db: {condition: service_healthy}
          migrate: {condition: service_completed_successfully}
        healthcheck:
          test: curl -f http://localhost:8000/
          interval: 1m30s
          timeout: 10s
          retries: 3
          start_period: 40s
        labels: {tier: front}
        working_dir: /app
        user: "1000:1000"
        restart: unless-stopped
        extra_hosts: ["example.test:10.0.0.1"]
        stop_grace_period: 1m
        x-custom: ignored
      db:
        image: postgres:${PG_VERSION:-15}
        environment: {POSTGRES_PASSWORD: "${DB_PASS:?set DB_PASS}", FLAG: true, COUNT: 3}
        volumes: [data:/var/lib/postgresql/data]
        healthcheck:
          test: ["CMD", "pg_isready"]
          interval: 2s
      migrate:
        image: app:latest
        depends_on: [db]
        command: ["migrate", 1]
      debug:
        image: busybox
        profiles: [debug]
        healthcheck: {disable: true}
    networks:
      front:
        ipam: {config: [{subnet: 10.91.0.0/24}]}
        internal: false
    volumes:
      data:
        labels: [purpose=test]
    x-anchors: {}
    """


@pytest.fixture
def full(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "web.env").write_text("FROM_FILE=1\nDB_HOST=overridden-by-environment\n")
    return write(tmp_path, FULL)


def test_full_file(full: Path) -> None:
    p = load(full, environ={"FROM_ENV": "env", "DB_PASS": "secret"})
    assert p.name == "shop"
    assert list(p.services) == ["web", "db", "migrate"]  # debug: only in a profile
    assert p.order() == ["db", "migrate", "web"]
    web, db, migrate = p.services["web"], p.services["db"], p.services["migrate"]
    assert web.build is not None and web.build.context == str(full.parent / "app")
    assert (web.build.dockerfile, web.build.target, web.build.args) == ("Dockerfile.dev", "runtime",
                                                                        {"VERSION": "1.2", "FROM_ENV": "env"})
    assert web.command == "python -m app --port 8000"
    assert web.entrypoint == ["/entry.sh", "--flag"]
    assert web.environment == {"FROM_FILE": "1", "DB_HOST": "db", "FROM_ENV": "env"}
    assert web.ports == ["8000/tcp", "127.0.0.1:9000:9000/tcp", "7000:8000/udp", "7001:8001/udp",
                         "127.0.0.1:5001:5000/tcp", "6000/tcp"]
    assert web.networks == {"front": ["shop", "www"], "default": []}
    assert web.mounts == [Mount("volume", "data", "/data", read_only=True),
                          Mount("bind", str(full.parent / "static"), "/static"),
                          Mount("volume", "", "/anon"), Mount("volume", "data", "/seed", nocopy=True)]
    assert web.tmpfs == ["/cache:size=1000000", "/run"]
    assert web.depends_on == {"db": "service_healthy", "migrate": "service_completed_successfully"}
    assert web.healthcheck == {"test": ["CMD-SHELL", "curl -f http://localhost:8000/"], "interval": 90 * 10**9,
                               "timeout": 10 * 10**9, "retries": 3, "start_period": 40 * 10**9}
    assert web.labels == {"tier": "front"}
    assert web.options == {"working_dir": "/app", "user": "1000:1000", "stop_timeout": 60}
    assert (web.restart, web.extra_hosts) == ("unless-stopped", ["example.test:10.0.0.1"])
    assert db.image == "postgres:15"
    assert db.environment == {"POSTGRES_PASSWORD": "secret", "FLAG": "true", "COUNT": "3"}
    assert db.healthcheck == {"test": ["CMD", "pg_isready"], "interval": 2 * 10**9}
    assert db.networks == {"default": []}
    assert migrate.command == ["migrate", "1"] and migrate.depends_on == {"db": "service_started"}
    assert p.networks["front"].subnet == "10.91.0.0/24"
    assert p.volumes["data"].labels == {"purpose": "test"}


def test_profiles_and_service_selection(full: Path) -> None:
    env = {"DB_PASS": "x"}
    assert "debug" in load(full, environ=env, profiles=["debug"]).services
    assert load(full, environ=env, profiles=["debug"]).services["debug"].healthcheck == {"test": ["NONE"]}
    assert list(load(full, environ=env, services=["migrate"]).services) == ["db", "migrate"]  # with its dependency
    assert list(load(full, environ=env, services=["debug"]).services) == ["debug"]  # named: its profile is implied


def test_dotenv_beside_the_file_and_the_shell_wins(full: Path) -> None:
    (full.parent / ".env").write_text("PG_VERSION=16\nDB_PASS=fromdotenv\n")
    p = load(full, environ={"PG_VERSION": "14"})
    assert p.services["db"].image == "postgres:14"
    assert p.services["db"].environment["POSTGRES_PASSWORD"] == "fromdotenv"
    (full.parent / "other.env").write_text("DB_PASS=other\n")
    assert load(full, environ={}, env_file="other.env").services["db"].environment["POSTGRES_PASSWORD"] == "other"


def test_required_variable_names_file_service_and_key(full: Path) -> None:
    with pytest.raises(ComposeFileError) as info:
        load(full, environ={})
    assert str(info.value) == (f"compose file {full}: service 'db': key 'environment.POSTGRES_PASSWORD': "
                               "required variable DB_PASS is missing a value: set DB_PASS")


def test_harmless_keys_warn_and_unset_variables_warn(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        services:
          a:
            image: busybox
            tty: true
            logging: {driver: json-file}
            command: echo ${NOT_THERE}
        """)
    p = load(path, environ={})
    assert p.warnings == ["the NOT_THERE variable is not set: defaulting to a blank string",
                          "service 'a': tty: ignored (no pseudo-terminal is given to compose services)",
                          "service 'a': logging: ignored (the engine keeps every service's log itself)"]


@pytest.mark.parametrize(("service", "message"), [
    ("links: [b]", "service 'a': key 'links': not supported by pytest-pods (use depends_on and networks"),
    ("secrets: [s]", "service 'a': key 'secrets': not supported by pytest-pods (mount the files"),
    ("imgae: busybox", "service 'a': key 'imgae': not supported by pytest-pods"),
    ("ports: ['abc']", "service 'a': key 'ports': 'abc' is not a port"),
    ("ports: ['1:2:3:4']", "service 'a': key 'ports': '1:2:3:4' is not a port"),
    ("ports: ['70000']", "service 'a': key 'ports': '70000': ports are 1 to 65535"),
    ("volumes: [nodecl:/x]", "service 'a': key 'volumes': named volume 'nodecl' is not declared"),
    ("volumes: ['./x:rel']", "service 'a': key 'volumes': './x:rel': the container path must be absolute"),
    ("networks: [nonet]", "service 'a': key 'networks': network 'nonet' is not declared"),
    ("depends_on: [ghost]", "service 'a': key 'depends_on': depends on undefined service 'ghost'"),
    ("depends_on: {b: {condition: service_ready}}",
     "key 'depends_on.b.condition': condition 'service_ready': expected one of service_started"),
    ("healthcheck: {test: [RUN, x]}", "key 'healthcheck.test': test must start with CMD, CMD-SHELL or NONE"),
    ("healthcheck: {test: 'true', interval: 10}", None),
    ("healthcheck: {test: 'true', interval: ten}", "key 'healthcheck.interval': 'ten' is not a duration"),
    ("healthcheck: {test: 'true', retries: many}", "key 'healthcheck.retries': expected a number"),
    ("environment: 5", "service 'a': key 'environment': expected a mapping or a list of KEY=VALUE"),
    ("command: {a: 1}", "service 'a': key 'command': expected a shell line or a list of arguments"),
    ("deploy: {replicas: 3}", "key 'deploy.replicas': more than one container per service"),
    ("network_mode: service:b", "key 'network_mode': network_mode service:NAME is not supported"),
    ("env_file: missing.env", "key 'env_file': env file"),
    ("restart: sometimes", "key 'restart': 'sometimes': expected no, always"),
])
def test_bad_service_keys(tmp_path: Path, service: str, message: str | None) -> None:
    path = write(tmp_path, f"services:\n  a:\n    image: busybox\n    {service}\n  b:\n    image: busybox\n")
    if message is None:
        load(path, environ={})
        return
    with pytest.raises(ComposeFileError) as info:
        load(path, environ={})
    assert str(info.value).startswith(f"compose file {path}: ")
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("services: {a: {command: x}}", "service 'a': neither image nor build is given"),
    ("services: {}", "no services"),
    ("servics: {a: {image: b}}", "unknown top-level key 'servics'"),
    ("services:\n  a: [1]\n", "service 'a': expected a mapping"),
    ("services:\n  a:\n    image: x\n   bad: indent\n", "line 4, column 4: not valid YAML"),
    ("services: {a: {image: b, depends_on: [c]}, c: {image: b, depends_on: [a]}}",
     "key 'depends_on': dependency cycle: a -> c -> a"),
    ("services: {a: {image: b, profiles: [x]}}", "no service is enabled: every service has a profile"),
    ("services: {a: {image: b, depends_on: [c]}, c: {image: b, profiles: [x]}}",
     "service 'a': key 'depends_on': depends on 'c', which is only in profiles x"),
    ("services: {a: {build: ./nowhere}}", "key 'build.context': build context"),
    ("services: {a: {image: b}}\nnetworks: {n: {driver: overlay}}", "key 'networks.n.driver': driver 'overlay'"),
    ("services: {a: {image: b}}\nvolumes: {v: {driver_opts: {type: none}}}", "key 'volumes.v.driver_opts'"),
    ("services: {a: {image: b}}\nsecrets: {s: {file: x}}", "top-level 'secrets' is not supported"),
])
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ComposeFileError) as info:
        load(path, environ={})
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ComposeFileError, match="nope.yml: cannot be read: No such file"):
        load(tmp_path / "nope.yml")


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        x-base: &base
          image: busybox
          environment: {A: "1"}
        services:
          one: {<<: *base, command: "true"}
          two:
            <<: *base
            environment: {A: "2"}
        """)
    p = load(path, environ={})
    assert p.services["one"].environment == {"A": "1"} and p.services["two"].environment == {"A": "2"}
