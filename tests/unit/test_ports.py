"""PortBinding: every form of a published port, by Docker's rules (``docker run -p`` reference,
moby's ``nat.ParsePortSpec``, docker-py's ``convert_port_bindings``)."""

from __future__ import annotations

import pytest

from pytest_pods.engine.network.ports import (
    PortBinding,
    check_publishable,
    parse_container_port,
    parse_ports,
    publish_rules,
    to_api,
)
from pytest_pods.errors import InvalidArgumentError

B = PortBinding


@pytest.mark.parametrize(("text", "expected"), [
    ("80", [B(80)]),
    ("8080:80", [B(80, host_port=8080)]),
    ("127.0.0.1:8080:80", [B(80, host_ip="127.0.0.1", host_port=8080)]),
    ("127.0.0.1::80", [B(80, host_ip="127.0.0.1")]),
    ("80/udp", [B(80, "udp")]),
    ("53:53/udp", [B(53, "udp", host_port=53)]),
    ("80/tcp", [B(80)]),
    ("80/", [B(80)]),                              # moby: an empty protocol is tcp
    ("80/UDP", [B(80, "udp")]),                    # moby lowercases the protocol
    ("132/sctp", [B(132, "sctp")]),
    ("0:80", [B(80)]),                             # host port 0: any free one
    ("8000-8001:80-81", [B(80, host_port=8000), B(81, host_port=8001)]),
    ("80-82", [B(80), B(81), B(82)]),
    ("127.0.0.1:8000-8001:80-81/udp", [B(80, "udp", "127.0.0.1", 8000), B(81, "udp", "127.0.0.1", 8001)]),
    ("[::1]:8080:80", [B(80, host_ip="::1", host_port=8080)]),
    ("[::]::80", [B(80, host_ip="::")]),
    ("::1:8080:80", [B(80, host_ip="::1", host_port=8080)]),  # moby: all but the last two parts
    ("0.0.0.0:8080:80", [B(80, host_ip="0.0.0.0", host_port=8080)]),
    ("080", [B(80)]),                              # strconv.ParseUint takes leading zeros
    ("65535:65535", [B(65535, host_port=65535)]),
])
def test_parse_accepts_what_docker_run_p_accepts(text: str, expected: list[PortBinding]) -> None:
    assert PortBinding.parse(text) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("", "no port specified"),
    ("8080:", "no port specified"),
    ("abc", "expected"),
    ("80/xyz", "protocol"),
    ("0", "1 to 65535"),
    ("65536", "1 to 65535"),
    ("70000:80", "1 to 65535"),
    ("-1", "expected"),
    ("+80", "expected"),
    (" 80", "expected"),
    ("8_0", "expected"),
    ("81-80", "invalid range"),
    ("8080:80-81", "invalid ranges"),
    ("8000-8002:80-81", "invalid ranges"),
    ("8000-8010:80", "range of host ports"),     # docker allocates from the range: we do not
    ("300.0.0.1:8080:80", "invalid IP address"),
    ("localhost:8080:80", "invalid IP address"),
    ("[::1:8080:80", "invalid IP address"),
    ("fe80::1%eth0:8080:80", "invalid IP address"),
])
def test_parse_refuses_what_docker_refuses_and_names_the_value(text: str, why: str) -> None:
    with pytest.raises(InvalidArgumentError, match=why) as exc:
        PortBinding.parse(text)
    assert repr(text) in str(exc.value)


def test_key_and_text_form() -> None:
    assert B(80).key == "80/tcp" and B(53, "udp").key == "53/udp"
    for text in ("80/tcp", "8080:80/tcp", "127.0.0.1:8080:80/tcp", "127.0.0.1::80/udp", "[::1]:8080:80/tcp"):
        assert str(PortBinding.parse(text)[0]) == text


@pytest.mark.parametrize(("ports", "expected"), [
    ({"80/tcp": 8080}, [B(80, host_port=8080)]),
    ({"80/tcp": None}, [B(80)]),
    ({"80/tcp": "8080"}, [B(80, host_port=8080)]),
    ({80: 8080}, [B(80, host_port=8080)]),
    ({"80": 8080}, [B(80, host_port=8080)]),
    ({"53/udp": 5353}, [B(53, "udp", host_port=5353)]),
    ({"80/tcp": ("127.0.0.1", 8080)}, [B(80, host_ip="127.0.0.1", host_port=8080)]),
    ({"80/tcp": ("127.0.0.1", None)}, [B(80, host_ip="127.0.0.1")]),
    ({"80/tcp": ("127.0.0.1",)}, [B(80, host_ip="127.0.0.1")]),
    ({"80/tcp": (8080,)}, [B(80, host_port=8080)]),
    ({"80/tcp": [8080, 8081]}, [B(80, host_port=8080), B(80, host_port=8081)]),
    ({"80/tcp": [("127.0.0.1", 8080), None]}, [B(80, host_ip="127.0.0.1", host_port=8080), B(80)]),
    ({"80/tcp": {"HostIp": "127.0.0.1", "HostPort": "8080"}}, [B(80, host_ip="127.0.0.1", host_port=8080)]),
    ({"80/tcp": ("::1", 8080)}, [B(80, host_ip="::1", host_port=8080)]),
])
def test_from_docker_py(ports: dict[str | int, object], expected: list[PortBinding]) -> None:
    assert PortBinding.from_docker_py(ports) == expected


@pytest.mark.parametrize("ports", [
    {"abc/tcp": 8080}, {"0/tcp": 8080}, {"80/xyz": 8080}, {"80/tcp": "abc"}, {"80/tcp": 70000},
    {"80/tcp": ("x", 8080)}, {"80/tcp": ("127.0.0.1", 8080, 1)}, {"80/tcp": "8000-8010"},
])
def test_from_docker_py_refuses(ports: dict[str | int, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        PortBinding.from_docker_py(ports)


def test_from_api() -> None:
    assert PortBinding.from_api(None) == []
    assert PortBinding.from_api({}) == []
    assert PortBinding.from_api({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}) == [B(80, host_port=8080)]
    assert PortBinding.from_api({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                                 "53/udp": [{}, {"HostPort": "0"}]}) == [
        B(80, host_ip="127.0.0.1"), B(53, "udp"), B(53, "udp")]
    assert PortBinding.from_api({"80": None}) == [B(80)]
    assert PortBinding.from_api({"80/tcp": []}) == [B(80)]  # as before: published on a free port


@pytest.mark.parametrize(("bindings", "why"), [
    ({"80/tcp": "x"}, "want a list"),
    ({"80/tcp": [5]}, "want objects"),
    ({"abc/tcp": [{}]}, "invalid port"),
    ({"0/tcp": [{}]}, "invalid port"),
    ({"80/tcp": [{"HostPort": "abc"}]}, "invalid port binding"),
    ({"80/tcp": [{"HostPort": "70000"}]}, "1 to 65535"),
    ({"80/tcp": [{"HostIp": "x"}]}, "invalid IP address"),
])
def test_from_api_refuses(bindings: dict[str, object], why: str) -> None:
    with pytest.raises(InvalidArgumentError, match=why):
        PortBinding.from_api(bindings)


def test_records_round_trip_and_keep_the_state_files_form() -> None:
    rec = B(80).to_record()
    assert rec == {"container_port": 80, "proto": "tcp", "host_ip": "0.0.0.0", "host_port": 0}
    assert PortBinding.from_record(rec) == B(80)
    b = B(53, "udp", "127.0.0.1", 5353)
    assert PortBinding.from_record(b.to_record()) == b


def test_to_api_from_bindings_and_from_records() -> None:
    assert to_api([B(8080), *PortBinding.parse("127.0.0.1:9000:90/udp")]) == {
        "8080/tcp": [{"HostIp": "", "HostPort": ""}], "90/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}]}
    bound = [B(80, host_port=32768).to_record(), B(80, host_ip="127.0.0.1", host_port=32769).to_record()]
    assert to_api(bound) == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"},
                                        {"HostIp": "127.0.0.1", "HostPort": "32769"}]}
    # what the API says comes back as it was said
    api = {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": [{"HostIp": "", "HostPort": ""}]}
    assert to_api(PortBinding.from_api(api)) == api


@pytest.mark.parametrize(("value", "expected"), [
    (80, (80, "tcp")), ("80", (80, "tcp")), ("80/udp", (80, "udp")), ("80/TCP", (80, "tcp")),
    ("132/sctp", (132, "sctp")),
])
def test_parse_container_port(value: int | str, expected: tuple[int, str]) -> None:
    assert parse_container_port(value) == expected


@pytest.mark.parametrize("value", [0, 65536, "abc", "80/xyz", "", "-1", True])
def test_parse_container_port_refuses(value: int | str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_container_port(value)


def test_parse_ports_takes_every_user_form() -> None:
    assert parse_ports(None) == [] and parse_ports(()) == []
    assert parse_ports(["8080:80", 6379, B(53, "udp")]) == [B(80, host_port=8080), B(6379), B(53, "udp")]
    assert parse_ports({"80/tcp": None}) == [B(80)]
    assert parse_ports("8000-8001:80-81") == [B(80, host_port=8000), B(81, host_port=8001)]


def test_ipv6_host_addresses_are_refused_at_create() -> None:
    check_publishable(PortBinding.parse("127.0.0.1:8080:80"))
    with pytest.raises(InvalidArgumentError, match="IPv6"):
        check_publishable(PortBinding.parse("[::1]:8080:80"))


def test_publish_rules_name_the_container_and_the_address() -> None:
    rules = publish_rules("ab" * 32, "10.89.0.2", [B(80, host_port=8080), B(53, "udp", "127.0.0.1", 5353)])
    assert rules == {"nat": [
        "-A PODS-DNAT -p tcp -m tcp --dport 8080 -m comment --comment pods:ctr:abababababab "
        "-j DNAT --to-destination 10.89.0.2:80",
        "-A PODS-DNAT -d 127.0.0.1 -p udp -m udp --dport 5353 -m comment --comment pods:ctr:abababababab "
        "-j DNAT --to-destination 10.89.0.2:53"]}
