"""cgroup v2's device controller: an eBPF program of type ``BPF_PROG_TYPE_CGROUP_DEVICE`` attached to
the container's group (issue 14).

v2 has no ``devices.allow``; the kernel instead runs the programs attached to the group (and, with
``BPF_F_ALLOW_MULTI``, its ancestors') on every mknod and open of a device node, and refuses with
EPERM when one returns 0. Its context is ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major;
u32 minor;}``, ``access_type`` holding the device type in its low 16 bits (block 1, char 2) and the
access in its high 16 (mknod 1, read 2, write 4).

The program is generated here from a :class:`~pytest_pods.engine.runtime.cgroups.devices.DeviceSet`
(the rules already folded as v1 folds them), one block per exception, in order::

    r2 = type, r3 = access, r4 = major, r5 = minor      (from the context)
    block:  if r2 != TYPE goto next                      (each test only when the rule is not a wildcard)
            if access does not fit the rule goto next
            if r4 != MAJOR goto next
            if r5 != MINOR goto next
            r0 = verdict; exit
    r0 = default; exit

"Fits" is v1's: under a deny default an allow exception must cover every access bit asked for;
under an allow default a deny exception refuses when it shares any bit. Imported only where a v2
group with device rules is created (the CLI never needs it).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import struct
from typing import NamedTuple

from pytest_pods.engine import linux
from pytest_pods.engine.runtime.cgroups.devices import ANY, DeviceSet
from pytest_pods.errors import CgroupError

# bpf(2) commands, program and attach types (include/uapi/linux/bpf.h)
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TEST_RUN = 10
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
ACCESS_BITS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}

# opcodes used (class | op | source)
LDXW = 0x61        # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
MOV64_X = 0xBF     # BPF_ALU64 | BPF_MOV | BPF_X
MOV32_K = 0xB4     # BPF_ALU | BPF_MOV | BPF_K
AND64_K = 0x57     # BPF_ALU64 | BPF_AND | BPF_K
RSH64_K = 0x77     # BPF_ALU64 | BPF_RSH | BPF_K
JEQ_K = 0x15       # BPF_JMP | BPF_JEQ | BPF_K
JNE_K = 0x55       # BPF_JMP | BPF_JNE | BPF_K
EXIT = 0x95        # BPF_JMP | BPF_EXIT

_ATTR_SIZE = 128   # covers every field we set; the kernel wants the rest zero
_LOG_SIZE = 1 << 16


class Insn(NamedTuple):
    """One ``struct bpf_insn``; ``off`` of a jump counts instructions after the next one."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        # the register nibbles are a C bitfield: dst in the low nibble on little-endian hosts
        regs = (self.dst | self.src << 4) if _LITTLE else (self.dst << 4 | self.src)
        return struct.pack("=BBhi", self.code, regs, self.off, self.imm)

    @classmethod
    def decode(cls, raw: bytes) -> Insn:
        code, regs, off, imm = struct.unpack("=BBhi", raw)
        dst, src = (regs & 0xF, regs >> 4) if _LITTLE else (regs >> 4, regs & 0xF)
        return cls(code, dst, src, off, imm)


_LITTLE = struct.pack("=H", 1) == b"\x01\x00"


def access_mask(access: str) -> int:
    mask = 0
    for c in access:
        mask |= ACCESS_BITS[c]
    return mask


def compile_program(devices: DeviceSet) -> list[Insn]:
    """The device program for ``devices`` (see the module's docstring for its shape)."""
    prog = [
        Insn(LDXW, 2, 1, 0),        # r2 = ctx->access_type
        Insn(MOV64_X, 3, 2),        # r3 = r2
        Insn(AND64_K, 2, imm=0xFFFF),  # r2 = type
        Insn(RSH64_K, 3, imm=16),   # r3 = access
        Insn(LDXW, 4, 1, 4),        # r4 = ctx->major
        Insn(LDXW, 5, 1, 8),        # r5 = ctx->minor
    ]
    verdict = 0 if devices.default_allow else 1
    for rule in devices.exceptions:
        # (instruction, jumps to the next block) pairs; offsets filled in once the block is known
        block: list[tuple[Insn, bool]] = []
        if rule.type != "a":
            block.append((Insn(JNE_K, 2, imm=TYPES[rule.type]), True))
        mask = access_mask(rule.access)
        if mask != 7:
            if devices.default_allow:  # a deny exception: refuses when any asked bit is in it
                block += [(Insn(MOV64_X, 1, 3), False), (Insn(AND64_K, 1, imm=mask), False),
                          (Insn(JEQ_K, 1, imm=0), True)]
            else:  # an allow exception: grants when no asked bit is outside it
                block += [(Insn(MOV64_X, 1, 3), False), (Insn(AND64_K, 1, imm=7 & ~mask), False),
                          (Insn(JNE_K, 1, imm=0), True)]
        if rule.major != ANY:
            block.append((Insn(JNE_K, 4, imm=rule.major), True))
        if rule.minor != ANY:
            block.append((Insn(JNE_K, 5, imm=rule.minor), True))
        block += [(Insn(MOV32_K, 0, imm=verdict), False), (Insn(EXIT), False)]
        for i, (insn, skips) in enumerate(block):
            prog.append(insn._replace(off=len(block) - i - 1) if skips else insn)
    prog += [Insn(MOV32_K, 0, imm=1 if devices.default_allow else 0), Insn(EXIT)]
    if len(prog) > 4096:
        raise CgroupError(f"device program: {len(prog)} instructions is over the kernel's 4096 for this "
                          "program type; pass fewer --device rules. Fix this and try again.")
    return prog


def encode(prog: list[Insn]) -> bytes:
    return b"".join(insn.encode() for insn in prog)


def load(code: bytes) -> int:
    """BPF_PROG_LOAD the program; its fd. On a verifier refusal the error carries the verifier's log.

    :raises CgroupError: the kernel refused it.
    """
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(0)

    def attempt(with_log: bool) -> int:
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        struct.pack_into("=IIQQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                         ctypes.addressof(insns), ctypes.addressof(license_))
        if with_log:
            struct.pack_into("=IIQ", attr, 24, 1, len(log), ctypes.addressof(log))
        struct.pack_into("=16s", attr, 48, b"pods_devices")
        return linux.bpf(BPF_PROG_LOAD, attr)

    try:
        try:
            return attempt(False)
        except PermissionError:
            # kernels before 5.11 charge programs to RLIMIT_MEMLOCK; root may lift it
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            return attempt(False)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EINVAL, errno.EACCES):
            log = ctypes.create_string_buffer(_LOG_SIZE)
            try:
                os.close(attempt(True))
            except OSError:
                text = log.value.decode(errors="replace").strip()
                reason += f"; verifier: {text[-400:]}" if text else ""
        raise CgroupError(f"load device program: bpf(BPF_PROG_LOAD): {reason}") from exc


def attach(cgroup_dir: str, prog_fd: int) -> None:
    """BPF_PROG_ATTACH to ``cgroup_dir`` as a device program, beside any its ancestors have.

    The group holds the program from then on; removing the group detaches it.

    :raises CgroupError: the kernel refused it.
    """
    try:
        dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise CgroupError(f"attach device program to {cgroup_dir}: {exc.strerror or exc}") from exc
    try:
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        struct.pack_into("=IIII", attr, 0, dfd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        linux.bpf(BPF_PROG_ATTACH, attr)
    except OSError as exc:
        raise CgroupError(f"attach device program to {cgroup_dir}: bpf(BPF_PROG_ATTACH): "
                          f"{exc.strerror or exc}") from exc
    finally:
        os.close(dfd)


def install(cgroup_dir: str, devices: DeviceSet) -> None:
    """Compile, load and attach the device program for ``devices`` to ``cgroup_dir``.

    :raises CgroupError: the kernel refused the program or the attach.
    """
    fd = load(encode(compile_program(devices)))
    try:
        attach(cgroup_dir, fd)
    finally:
        os.close(fd)
