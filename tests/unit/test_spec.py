"""ContainerSpec -> OCI config: the rules docker users rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_pods.engine.runtime.spec import (
    DEFAULT_CAPS,
    Bind,
    ContainerSpec,
    effective_caps,
    lookup_user,
    merge_env,
    parse_bytes,
    parse_signal,
    resolve_args,
)
from pytest_pods.errors import InvalidArgumentError


@pytest.mark.parametrize(("text", "value"), [("64m", 64 << 20), ("1g", 1 << 30), ("512k", 512 << 10),
                                             ("1048576", 1 << 20), ("2MB", 2 << 20), ("1.5g", 3 << 29)])
def test_parse_bytes_accepts_docker_sizes(text: str, value: int) -> None:
    assert parse_bytes(text) == value


@pytest.mark.parametrize("bad", ["abc", "12q", "-1m", "", "m"])
def test_parse_bytes_names_the_flag_and_value(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"invalid --memory value {bad!r}"):
        parse_bytes(bad)


def test_signals_by_name_short_name_and_number() -> None:
    assert parse_signal("SIGTERM") == parse_signal("term") == parse_signal("15") == 15
    with pytest.raises(InvalidArgumentError):
        parse_signal("SIGNOPE")


def test_entrypoint_and_cmd_override_rules() -> None:
    img = {"Entrypoint": ["/entry"], "Cmd": ["default"]}
    assert resolve_args(ContainerSpec("i"), img) == ["/entry", "default"]
    assert resolve_args(ContainerSpec("i", command=["x"]), img) == ["/entry", "x"]
    assert resolve_args(ContainerSpec("i", entrypoint=["/other"]), img) == ["/other"]  # resets Cmd
    assert resolve_args(ContainerSpec("i", entrypoint=[""], command=["sh"]), img) == ["sh"]
    with pytest.raises(InvalidArgumentError, match="no command specified"):
        resolve_args(ContainerSpec("i"), {})


def test_env_merges_by_key_and_defaults_path() -> None:
    env = merge_env(["A=1", "B=2"], ["B=3", "C=4=5"])
    assert env[:3] == ["A=1", "B=3", "C=4=5"]
    assert env[3].startswith("PATH=/usr/local/sbin")
    with pytest.raises(InvalidArgumentError):
        merge_env([], ["=x"])


def test_capabilities_add_and_drop() -> None:
    assert effective_caps([], []) == list(DEFAULT_CAPS)
    caps = effective_caps(["NET_ADMIN"], ["chown", "CAP_KILL"])
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps and "CAP_KILL" not in caps
    assert effective_caps([], ["ALL"]) == []
    with pytest.raises(InvalidArgumentError, match="unknown capability"):
        effective_caps(["CAP_FLY"], [])


def test_bind_parse() -> None:
    assert Bind.parse("/a:/b:ro") == Bind("/a", "/b", True)
    assert Bind.parse("/a/../c:/d") == Bind("/c", "/d", False)
    for bad in ("a:/b", "/a:b", "/a", "/a:/b:xx"):
        with pytest.raises(InvalidArgumentError, match="invalid volume specification"):
            Bind.parse(bad)


def test_lookup_user_by_name_uid_and_group(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\napp:x:1000:\nwheel:x:10:app\nstaff:x:50:\n")
    assert lookup_user(None, [tmp_path]) == (0, 0, [], "/root")
    assert lookup_user("app", [tmp_path]) == (1000, 1000, [10], "/home/app")
    # an explicit group: that group only, no supplementary groups (runc's rule, and BuildKit's for USER)
    assert lookup_user("1000:staff", [tmp_path]) == (1000, 50, [], "/home/app")
    assert lookup_user("4242", [tmp_path]) == (4242, 0, [], "/")
    with pytest.raises(InvalidArgumentError, match="unable to find user ghost"):
        lookup_user("ghost", [tmp_path])
    with pytest.raises(InvalidArgumentError, match="unable to find group nogroup"):
        lookup_user("app:nogroup", [tmp_path])
