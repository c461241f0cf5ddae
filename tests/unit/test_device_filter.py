"""The device cgroup's rules (issue 14): folding them as v1 does, the v1 writes, and the v2 device
program, run here by a small interpreter of the instructions it emits (the kernel offers no
BPF_PROG_TEST_RUN for this program type) and compared with the v1 decision for every case."""

from __future__ import annotations

import itertools

import pytest

from pytest_pods.engine.runtime.cgroups.devices import (
    ANY,
    DEFAULT_ALLOWED,
    DeviceRule,
    DeviceSet,
    effective,
    parse_rule,
    permitted,
    rules_from_config,
    v1_list,
    v1_writes,
)
from pytest_pods.engine.runtime.cgroups.devices_bpf import (
    AND64_K,
    EXIT,
    JEQ_K,
    JNE_K,
    LDXW,
    MOV32_K,
    MOV64_X,
    RSH64_K,
    Insn,
    access_mask,
    compile_program,
    encode,
)
from pytest_pods.errors import CgroupError

DENY_ALL = {"allow": False, "access": "rwm"}
DOCKER_DEFAULT_LIST = [
    "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
    "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
]
U64 = (1 << 64) - 1


def config(*entries: dict[str, object], devices: list[dict[str, object]] | None = None) -> dict[str, object]:
    return {"linux": {"resources": {"devices": list(entries)}, "devices": devices or []}}


def run_program(prog: list[Insn], kind: str, major: int, minor: int, access: str) -> int:
    """Interpret the program on one ``struct bpf_cgroup_dev_ctx`` as the kernel would."""
    ctx = {0: ({"b": 1, "c": 2}[kind] | access_mask(access) << 16), 4: major, 8: minor}
    regs = [0] * 11
    pc = 0
    for _ in range(10_000):
        ins = prog[pc]
        pc += 1
        if ins.code == LDXW:
            assert ins.src == 1, "only the context is read"
            regs[ins.dst] = ctx[ins.off]
        elif ins.code == MOV64_X:
            regs[ins.dst] = regs[ins.src]
        elif ins.code == MOV32_K:
            regs[ins.dst] = ins.imm & 0xFFFFFFFF
        elif ins.code == AND64_K:
            regs[ins.dst] &= ins.imm & U64  # imm is sign-extended to 64 bits
        elif ins.code == RSH64_K:
            regs[ins.dst] >>= ins.imm
        elif ins.code in (JEQ_K, JNE_K):
            equal = regs[ins.dst] == ins.imm & U64
            if equal == (ins.code == JEQ_K):
                pc += ins.off
        elif ins.code == EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {ins.code:#x}")
    raise AssertionError("no exit")


CASES = list(itertools.product("bc", [1, 5, 8, 10, 136, 254], [0, 1, 3, 5, 7, 9, 11, 200], [
    "r", "w", "m", "rw", "rwm", "rm"]))


def test_docker_default_is_deny_then_runcs_allowed_devices_in_order() -> None:
    rules = rules_from_config(config(DENY_ALL))
    assert rules is not None
    got = effective(rules)
    assert not got.default_allow
    assert v1_list(got) == DOCKER_DEFAULT_LIST
    assert v1_writes(got) == [("devices.deny", "a"), *(("devices.allow", line) for line in DOCKER_DEFAULT_LIST)]
    assert permitted(got, "b", 254, 0, "m")  # mknod of the host's disk: allowed, as in Docker
    assert not permitted(got, "b", 254, 0, "r") and not permitted(got, "b", 254, 0, "rw")  # opening it: not
    assert not permitted(got, "c", 1, 1, "r")  # /dev/mem
    assert permitted(got, "c", 1, 3, "rw") and permitted(got, "c", 136, 7, "rw") and permitted(got, "c", 10, 200, "r")


def test_privileged_allows_everything_and_writes_nothing() -> None:
    rules = rules_from_config(config(DENY_ALL, {"allow": True, "access": "rwm"}))
    assert rules is not None
    got = effective(rules)
    assert got == DeviceSet(True, ())
    assert v1_list(got) == ["a *:* rwm"] and v1_writes(got) == []  # a new group inherits its parent's


def test_device_rule_merges_with_a_default_unless_its_path_replaces_it() -> None:
    zero_r = {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}
    # --device /dev/zero:/dev/myzero:r: runc's own /dev/zero rule stays, so 1:5 is rwm
    rules = rules_from_config(config(DENY_ALL, zero_r, devices=[{"path": "/dev/myzero"}]))
    assert rules is not None
    assert "c 1:5 rwm" in v1_list(effective(rules))
    # --device /dev/zero:/dev/zero:r replaces the default device, and its rule (runc's createDevices)
    rules = rules_from_config(config(DENY_ALL, zero_r, devices=[{"path": "/dev/zero"}]))
    assert rules is not None
    got = effective(rules)
    assert v1_list(got)[0] == "c 1:5 r" and "c 1:5 rwm" not in v1_list(got)
    assert permitted(got, "c", 1, 5, "r") and not permitted(got, "c", 1, 5, "w")


def test_folding_follows_the_v1_kernel() -> None:
    fold = effective([
        DeviceRule(False), DeviceRule(True, "c", 1, 3, "r"), DeviceRule(True, "c", 1, 3, "w"),  # merged: rw
        DeviceRule(True, "b", 8, ANY, "rwm"), DeviceRule(False, "b", 8, ANY, "w"),  # bits taken off: rm
        DeviceRule(True, "c", 4, 1, "m"), DeviceRule(False, "c", 4, 1, "m"),  # gone
    ])
    assert v1_list(fold) == ["c 1:3 rw", "b 8:* rm"]
    assert effective([DeviceRule(True, "c", 1, 3), DeviceRule(True)]) == DeviceSet(True, ())  # 'a' resets
    deny_some = effective([DeviceRule(True), DeviceRule(False, "c", 1, 3, "w")])
    assert v1_list(deny_some) == ["a *:* rwm"] and v1_writes(deny_some) == [
        ("devices.allow", "a"), ("devices.deny", "c 1:3 w")]
    assert not permitted(deny_some, "c", 1, 3, "rw") and permitted(deny_some, "c", 1, 3, "r")


def test_oci_entries_are_checked() -> None:
    assert parse_rule({"allow": True, "type": "c", "major": 1, "access": "mwr"}) == DeviceRule(True, "c", 1, ANY, "rwm")
    with pytest.raises(CgroupError, match="type 'p'"):
        parse_rule({"allow": True, "type": "p", "access": "r"})
    with pytest.raises(CgroupError, match="subset of 'rwm'"):
        parse_rule({"allow": True, "type": "c", "access": "rx"})
    assert rules_from_config({"linux": {}}) is None
    assert [path for path, _ in DEFAULT_ALLOWED if path] == [
        "/dev/null", "/dev/random", "/dev/full", "/dev/tty", "/dev/zero", "/dev/urandom"]


SETS = {
    "docker default": effective(rules_from_config(config(DENY_ALL)) or []),
    "device r and block rm": effective([DeviceRule(False), DeviceRule(True, "c", 1, 11, "r"),
                                        DeviceRule(True, "b", 8, ANY, "rm"), DeviceRule(True, "c", ANY, 9, "w")]),
    "allow default, deny some": effective([DeviceRule(True), DeviceRule(False, "c", 1, 3, "w"),
                                           DeviceRule(False, "b", ANY, ANY, "rw"), DeviceRule(False, "c", 10, ANY)]),
    "deny everything": DeviceSet(False, ()),
    "allow everything": DeviceSet(True, ()),
}


@pytest.mark.parametrize("name", list(SETS))
def test_program_decides_as_v1_does_for_every_case(name: str) -> None:
    devices = SETS[name]
    prog = compile_program(devices)
    for kind, major, minor, access in CASES:
        want = permitted(devices, kind, major, minor, access)
        assert run_program(prog, kind, major, minor, access) == int(want), (kind, major, minor, access)


@pytest.mark.parametrize("name", list(SETS))
def test_program_is_what_the_verifier_accepts(name: str) -> None:
    prog = compile_program(SETS[name])
    assert [Insn.decode(encode(prog)[i:i + 8]) for i in range(0, len(prog) * 8, 8)] == prog
    assert prog[-1].code == EXIT and prog[-2] == Insn(MOV32_K, 0, imm=int(SETS[name].default_allow))
    for i, ins in enumerate(prog):
        if ins.code in (JEQ_K, JNE_K):
            assert ins.off >= 0 and i + 1 + ins.off < len(prog)  # forward, inside: no loops
        if ins.code == LDXW:
            assert ins.off in (0, 4, 8)  # u32 fields of struct bpf_cgroup_dev_ctx only
    # every instruction reachable (the verifier refuses dead code): each block ends in exit and
    # the next block starts where its jumps land
    targets = {i + 1 + ins.off for i, ins in enumerate(prog) if ins.code in (JEQ_K, JNE_K)}
    after_exit = {i + 1 for i, ins in enumerate(prog[:-1]) if ins.code == EXIT}
    assert after_exit <= targets


def test_program_rejects_too_many_rules() -> None:
    many = DeviceSet(False, tuple(DeviceRule(True, "c", 1, n, "r") for n in range(1000)))
    with pytest.raises(CgroupError, match="4096"):
        compile_program(many)
