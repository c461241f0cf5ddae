"""Seccomp: Docker's default profile, the profiles users give, and the filter a container loads.

Three steps, each cheap to cache (issue 14):

1. **parse** a ``seccomp=`` security option: ``unconfined``, ``builtin``, a JSON text (what the
   docker CLI sends after reading a file) or a path to a JSON file (read here, so the Client API and
   the fixtures accept paths). Profiles are in Docker's format: ``defaultAction``,
   ``defaultErrnoRet``, ``architectures`` or ``archMap``, ``syscalls`` with ``names``, ``action``,
   ``args``, ``errnoRet`` and ``includes``/``excludes`` (``caps``, ``arches``, ``minKernel``).
2. **resolve** it for one container, as moby does (``profiles/seccomp/seccomp_linux.go``): keep the
   rules whose conditions hold for this architecture, kernel and bounding capability set. The
   result is the OCI runtime-spec ``linux.seccomp`` section that the bundle's ``config.json``
   carries (so that runc runs the bundle with the same filter).
3. **compile** that section to classic BPF with libseccomp (as runc does), once per distinct
   section: ``ROOT/seccomp/<sha256>.bpf``, written atomically. A start or an exec then only reads
   those bytes and hands them to the kernel (``linux.seccomp_load``); this module, ctypes'
   libseccomp and the profile table are never imported on that path.

The default rules below are Docker's default profile (moby ``profiles/seccomp/default.json``, as
of moby b985e23, 2025) in a table of our own: the syscalls it allows, grouped by the condition
under which it allows them. Denied calls fail with EPERM (``defaultErrnoRet`` 1), ``clone3``
without CAP_SYS_ADMIN with ENOSYS (so that glibc falls back to ``clone``, whose namespace flags the
filter can see).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pytest_pods.engine.files import mkstemp
from pytest_pods.errors import InvalidArgumentError

# -- Docker's default profile, as a table ----------------------------------------------------------
# Allowed for every container on every architecture.
_ALWAYS = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount
listxattr listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise
map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2
mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause
pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64
prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall riscv_hwprobe
rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statmount statx symlink symlinkat
sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid
waitpid write writev
"""


class _Rule(NamedTuple):
    """One row of the default table: ``names`` allowed when every condition holds."""

    names: str
    cap: str = ""                       # the bounding set has this capability
    unless_cap: str = ""                # ... has not this one
    arches: str = ""                    # the native architecture (Go's names) is one of these
    unless_arches: str = ""
    args: tuple[tuple[int, int, str], ...] = ()  # (index, value, op): all must hold
    min_kernel: str = ""
    errno: int | None = None            # SCMP_ACT_ERRNO with this errno instead of allowing


# clone's namespace flags: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
_CLONE_NS_MASK = 0x7E020000
_SYSADMIN_CALLS = """bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie lsm_get_self_attr
lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd
setdomainname sethostname setns syslog umount umount2 unshare"""

_DEFAULT_TABLE: tuple[_Rule, ...] = (
    _Rule(_ALWAYS),
    _Rule("process_vm_readv process_vm_writev ptrace", min_kernel="4.8"),  # ptrace is safe with seccomp since 4.8
    # socket: every address family but AF_ALG (38) and AF_VSOCK (40)
    _Rule("socket", args=((0, 38, "SCMP_CMP_LT"),)),
    _Rule("socket", args=((0, 39, "SCMP_CMP_EQ"),)),
    _Rule("socket", args=((0, 40, "SCMP_CMP_GT"),)),
    # personality: only PER_LINUX, PER_LINUX32, UNAME26 (and combinations) and the query (0xffffffff)
    *(_Rule("personality", args=((0, v, "SCMP_CMP_EQ"),)) for v in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)),
    _Rule("sync_file_range2 swapcontext", arches="ppc64le"),
    _Rule("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls", arches="arm arm64"),
    _Rule("arch_prctl", arches="amd64 x32"),
    _Rule("modify_ldt", arches="amd64 x32 x86"),
    _Rule("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr", arches="s390 s390x"),
    _Rule("riscv_flush_icache", arches="riscv64"),
    _Rule("open_by_handle_at", cap="CAP_DAC_READ_SEARCH"),
    _Rule(_SYSADMIN_CALLS, cap="CAP_SYS_ADMIN"),
    # without CAP_SYS_ADMIN: clone without namespace flags, and clone3 (whose flags live in memory
    # the filter cannot read) fails with ENOSYS so that libc falls back to clone
    _Rule("clone", unless_cap="CAP_SYS_ADMIN", unless_arches="s390 s390x",
          args=((0, _CLONE_NS_MASK, "SCMP_CMP_MASKED_EQ"),)),
    _Rule("clone", unless_cap="CAP_SYS_ADMIN", arches="s390 s390x", args=((1, _CLONE_NS_MASK, "SCMP_CMP_MASKED_EQ"),)),
    _Rule("clone3", unless_cap="CAP_SYS_ADMIN", errno=38),
    _Rule("reboot", cap="CAP_SYS_BOOT"),
    _Rule("chroot", cap="CAP_SYS_CHROOT"),
    _Rule("delete_module init_module finit_module", cap="CAP_SYS_MODULE"),
    _Rule("acct", cap="CAP_SYS_PACCT"),
    _Rule("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace", cap="CAP_SYS_PTRACE"),
    _Rule("iopl ioperm", cap="CAP_SYS_RAWIO"),
    _Rule("settimeofday stime clock_settime clock_settime64", cap="CAP_SYS_TIME"),
    _Rule("vhangup", cap="CAP_SYS_TTY_CONFIG"),
    _Rule("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", cap="CAP_SYS_NICE"),
    _Rule("syslog", cap="CAP_SYSLOG"),
    _Rule("bpf", cap="CAP_BPF"),
    _Rule("perf_event_open", cap="CAP_PERFMON"),
)

# Docker's archMap: the native architecture and the ones its kernel also runs.
_ARCH_FAMILIES = {
    "SCMP_ARCH_X86_64": ("SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "SCMP_ARCH_AARCH64": ("SCMP_ARCH_ARM",),
    "SCMP_ARCH_MIPS64": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "SCMP_ARCH_MIPS64N32": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"),
    "SCMP_ARCH_MIPSEL64": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
    "SCMP_ARCH_MIPSEL64N32": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"),
    "SCMP_ARCH_S390X": ("SCMP_ARCH_S390",),
    "SCMP_ARCH_RISCV64": (),
    "SCMP_ARCH_LOONGARCH64": (),
}

# uname -m -> (Go's name, as the profiles' includes/excludes say it; the OCI architecture)
_MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "i686": ("x86", "SCMP_ARCH_X86"), "i386": ("x86", "SCMP_ARCH_X86"), "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"), "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"), "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
    "loongarch64": ("loong64", "SCMP_ARCH_LOONGARCH64"),
}


def native_arch() -> tuple[str, str]:
    """(Go's name, the OCI name) of this machine's architecture."""
    machine = os.uname().machine
    return _MACHINES.get(machine, (machine, "SCMP_ARCH_" + machine.upper()))


def default_profile() -> dict[str, Any]:
    """Docker's default profile in Docker's JSON format (what ``docker info`` calls builtin)."""
    syscalls: list[dict[str, Any]] = []
    for rule in _DEFAULT_TABLE:
        entry: dict[str, Any] = {"names": rule.names.split(), "action": "SCMP_ACT_ALLOW"}
        if rule.errno is not None:
            entry.update(action="SCMP_ACT_ERRNO", errnoRet=rule.errno)
        if rule.args:
            entry["args"] = [{"index": i, "value": v, "valueTwo": 0, "op": op} for i, v, op in rule.args]
        includes: dict[str, Any] = {}
        excludes: dict[str, Any] = {}
        if rule.cap:
            includes["caps"] = [rule.cap]
        if rule.arches:
            includes["arches"] = rule.arches.split()
        if rule.min_kernel:
            includes["minKernel"] = rule.min_kernel
        if rule.unless_cap:
            excludes["caps"] = [rule.unless_cap]
        if rule.unless_arches:
            excludes["arches"] = rule.unless_arches.split()
        if includes:
            entry["includes"] = includes
        if excludes:
            entry["excludes"] = excludes
        syscalls.append(entry)
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [{"architecture": a, "subArchitectures": list(subs)} for a, subs in _ARCH_FAMILIES.items()],
        "syscalls": syscalls,
    }


# -- parse ------------------------------------------------------------------------------------------
UNCONFINED = "unconfined"

_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
        "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
_EPERM = 1


def load_profile(value: str) -> dict[str, Any] | None:
    """The profile a ``seccomp=VALUE`` option names, in Docker's format; None for unconfined.

    ``VALUE`` is ``unconfined``, ``builtin`` (Docker's default), a JSON document, or the path of a
    JSON file (Docker's CLI reads the file and sends its text; we accept both).

    :raises InvalidArgumentError: the file cannot be read or is not a valid profile (the message
        names the file and what is wrong).
    """
    if value == UNCONFINED:
        return None
    if value in ("builtin", ""):
        return default_profile()
    text, origin = value, "the seccomp profile"
    if not value.lstrip().startswith("{"):
        origin = f"seccomp profile {value}"
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise InvalidArgumentError(
                f"invalid --security-opt seccomp={value}: cannot read {value}: {exc.strerror}. Give the path of a JSON "
                "profile (Docker's format), 'unconfined' or 'builtin'.") from None
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"invalid --security-opt seccomp={value}: {value} is not a text file") from None
    try:
        profile = json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"decoding {origin} failed: {exc}. Fix the JSON and try again.") from None
    validate(profile, origin)
    return profile if (profile.get("defaultAction") or profile.get("syscalls")) else None


def _bad(origin: str, what: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"invalid {origin}: {what}. Fix the profile (Docker's seccomp JSON format) "
                                "and try again.")


def validate(profile: Any, origin: str = "the seccomp profile") -> None:
    """Check a profile in Docker's format before anything is made from it."""
    if not isinstance(profile, dict):
        raise _bad(origin, "the document is not a JSON object")
    if profile.get("architectures") and profile.get("archMap"):
        raise _bad(origin, "both 'architectures' and 'archMap' are specified, use either")
    default = profile.get("defaultAction", "")
    if default and default not in _ACTIONS:
        raise _bad(origin, f"unknown defaultAction {default!r} (one of {', '.join(_ACTIONS)})")
    if not default and profile.get("syscalls"):
        raise _bad(origin, "defaultAction is missing")
    for flag in profile.get("flags") or []:
        if flag not in _FLAGS:
            raise _bad(origin, f"unknown flag {flag!r}")
    if profile.get("listenerPath"):
        raise _bad(origin, "listenerPath (SCMP_ACT_NOTIFY) is not supported")
    for entry in profile.get("archMap") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("architecture"), str):
            raise _bad(origin, f"archMap entry {entry!r} has no architecture")
    for arch in profile.get("architectures") or []:
        if not isinstance(arch, str) or not arch.startswith("SCMP_ARCH_"):
            raise _bad(origin, f"unknown architecture {arch!r}")
    syscalls = profile.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _bad(origin, "'syscalls' is not a list")
    for n, call in enumerate(syscalls):
        where = f"syscalls[{n}]"
        if not isinstance(call, dict):
            raise _bad(origin, f"{where} is not an object")
        if call.get("name") and call.get("names"):
            raise _bad(origin, f"{where}: both 'name' and 'names' are specified, use either")
        names = call.get("names") or ([call["name"]] if call.get("name") else [])
        if not names or not all(isinstance(x, str) and x for x in names):
            raise _bad(origin, f"{where} names no syscall")
        if call.get("action") not in _ACTIONS:
            raise _bad(origin, f"{where} ({names[0]}): unknown action {call.get('action')!r}")
        for arg in call.get("args") or []:
            if not isinstance(arg, dict) or not isinstance(arg.get("index"), int) or not 0 <= arg["index"] < 6:
                raise _bad(origin, f"{where} ({names[0]}): an argument index must be 0 to 5")
            if arg.get("op") not in _OPS:
                raise _bad(origin, f"{where} ({names[0]}): unknown op {arg.get('op')!r} (one of {', '.join(_OPS)})")
            for key in ("value", "valueTwo"):
                if not isinstance(arg.get(key, 0), int) or not 0 <= arg.get(key, 0) < 2**64:
                    raise _bad(origin, f"{where} ({names[0]}): {key} must be an unsigned 64-bit integer")
        for key in ("includes", "excludes"):
            cond = call.get(key) or {}
            if not isinstance(cond, dict):
                raise _bad(origin, f"{where}: {key} is not an object")
            if cond.get("minKernel") is not None:
                _kernel_version(cond["minKernel"], origin)


def _kernel_version(text: Any, origin: str) -> tuple[int, int]:
    parts = str(text).split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or parts == ["0", "0"]:
        raise _bad(origin, f'invalid kernel version {text!r}, expected "<kernel>.<major>"')
    return int(parts[0]), int(parts[1])


def _host_kernel() -> tuple[int, int]:
    major, minor = [*os.uname().release.split("."), "0"][:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


# -- resolve ----------------------------------------------------------------------------------------
def resolve(profile: Mapping[str, Any], bounding: Iterable[str]) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` section of ``profile`` for a process with this bounding set, on
    this machine: moby's expansion of ``archMap`` and of each rule's includes and excludes."""
    caps = set(bounding)
    go_arch, oci_arch = native_arch()
    kernel = _host_kernel()
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry["architecture"] == oci_arch:
            arches = [oci_arch, *(entry.get("subArchitectures") or [])]
            break
    if arches:
        out["architectures"] = arches
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    syscalls: list[dict[str, Any]] = []
    for call in profile.get("syscalls") or []:
        exc = call.get("excludes") or {}
        inc = call.get("includes") or {}
        if go_arch in (exc.get("arches") or []) or any(c in caps for c in exc.get("caps") or []):
            continue
        if exc.get("minKernel") and kernel >= _kernel_version(exc["minKernel"], "profile"):
            continue
        if inc.get("arches") and go_arch not in inc["arches"]:
            continue
        if not all(c in caps for c in inc.get("caps") or []):
            continue
        if inc.get("minKernel") and kernel < _kernel_version(inc["minKernel"], "profile"):
            continue
        rule: dict[str, Any] = {"names": list(call.get("names") or [call["name"]]), "action": call["action"]}
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            rule["args"] = [{"index": a["index"], "value": a.get("value", 0), "valueTwo": a.get("valueTwo", 0),
                             "op": a["op"]} for a in call["args"]]
        syscalls.append(rule)
    out["syscalls"] = syscalls
    return out


# -- compile, with libseccomp -----------------------------------------------------------------------
class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


_SCMP_FLTATR_CTL_NNP = 3
_SCMP_FLTATR_CTL_OPTIMIZE = 8
_NR_SCMP_ERROR = -1
_lib: list[ctypes.CDLL] = []


def _libseccomp() -> ctypes.CDLL:
    if not _lib:
        try:
            lib = ctypes.CDLL("libseccomp.so.2")
        except OSError:
            raise InvalidArgumentError(
                "compile the seccomp profile: libseccomp.so.2 is not installed (apt-get install libseccomp2), or run "
                "with --security-opt seccomp=unconfined") from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib.append(lib)
    return _lib[0]


def _action(name: str, errno_ret: int | None) -> int:
    code = _ACTIONS[name]
    if name == "SCMP_ACT_ERRNO":
        return code | ((_EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return code | ((_EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    return code


def compile_bpf(section: Mapping[str, Any]) -> bytes:
    """Classic BPF (``struct sock_filter`` array) for an OCI ``linux.seccomp`` section, as runc
    builds it: rules whose action is the default are skipped, names libseccomp does not know are
    skipped (an older libseccomp than the profile), several conditions on one argument become one
    rule each (libseccomp ANDs the conditions of a rule)."""
    lib = _libseccomp()
    default = _action(section["defaultAction"], section.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise InvalidArgumentError(f"compile the seccomp profile: bad default action {section['defaultAction']}")
    try:
        lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_NNP, 0)  # no_new_privs is the container's own setting
        # a binary tree of syscall numbers (libseccomp >= 2.5; ignored before): the kernel runs the
        # filter for every syscall of every architecture when it is loaded (its action cache), which
        # costs a start ~0.35 ms with the linear list and ~0.2 ms with the tree, here
        lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)
        for arch in section.get("architectures") or []:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token == 0:
                raise InvalidArgumentError(f"compile the seccomp profile: unknown architecture {arch}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -17:  # EEXIST: the native one is there from seccomp_init
                raise InvalidArgumentError(f"compile the seccomp profile: add architecture {arch}: {os.strerror(-rc)}")
        for call in section.get("syscalls") or []:
            action = _action(call["action"], call.get("errnoRet"))
            if action == default:
                continue
            args = call.get("args") or []
            conds = [_ArgCmp(a["index"], _OPS[a["op"]], a.get("value", 0), a.get("valueTwo", 0)) for a in args]
            indexes = [a["index"] for a in args]
            groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
            for name in call["names"]:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:
                    continue  # unknown to this libseccomp: runc skips it too
                for group in groups:
                    array = (_ArgCmp * max(len(group), 1))(*group)
                    rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), array)
                    if rc < 0:
                        raise InvalidArgumentError(
                            f"compile the seccomp profile: rule for {name}: {os.strerror(-rc)}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise InvalidArgumentError(f"compile the seccomp profile: export: {os.strerror(-rc)}")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


# -- the cache: what a start reads ------------------------------------------------------------------
MAGIC = b"PSC1"  # then the load flags (u32, little-endian), then the program


def section_key(section: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(section, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def flags_of(section: Mapping[str, Any]) -> int:
    return sum(_FLAGS[f] for f in section.get("flags") or [] if f != "SECCOMP_FILTER_FLAG_TSYNC")


def ensure_compiled(section: Mapping[str, Any], cache: Path) -> Path:
    """The cached filter of ``section`` under ``cache``, compiled and written (atomically) if new."""
    path = cache / f"{section_key(section)}.bpf"
    if path.exists():
        return path
    program = compile_bpf(section)
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = mkstemp(cache, ".tmp-")
    try:
        os.write(fd, MAGIC + struct.pack("<I", flags_of(section)) + program)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    return path


def prepare(option: str | None, bounding: Sequence[str], cache: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The ``linux.seccomp`` section and its cached filter's path for a container, or (None, None).

    :param option: the ``seccomp=`` value (None: Docker's default profile, whose outcome a
        long-lived process (the Client API, the daemon) keeps per capability set: ~0.3 ms a create)."""
    key = (tuple(bounding), str(cache))
    if option is None and (hit := _default_prepared.get(key)) is not None and os.path.exists(hit[1]):
        return hit
    profile = load_profile(option) if option is not None else default_profile()
    if profile is None:
        return None, None
    section = resolve(profile, bounding)
    prepared = section, str(ensure_compiled(section, cache))
    if option is None:
        _default_prepared[key] = prepared
    return prepared


_default_prepared: dict[tuple[tuple[str, ...], str], tuple[dict[str, Any], str]] = {}
