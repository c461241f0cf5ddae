# The adversarial probes of tests/integration/test_confinement.py (issue 14), in perl because the
# Debian image has perl-base and no python3. Run as `sh -c 'perl probe.pl'` (pid 1 is the shell):
# prints one line per probe, NAME=ok or NAME=<errno number>. x86_64 syscall numbers.
use strict;
use warnings;
use POSIX ();

sub report { my ($name, $ok) = @_; print "$name=", ($ok ? "ok" : ($! + 0)), "\n"; }
# each call in a child of its own: one that succeeds (a user namespace) must not change the next
sub sys {
    my ($name, $nr, @args) = @_;
    my $pid = fork();
    if ($pid == 0) { my $r = syscall($nr, @args); POSIX::_exit($r == -1 ? ($! + 0) : 0); }
    waitpid($pid, 0);
    my $code = $? >> 8;
    print "$name=", ($code ? $code : "ok"), "\n";
}

# write back the value a file has: harmless where it is allowed
sub rewrite {
    my ($name, @paths) = @_;
    for my $p (@paths) {
        next unless -e $p;
        open(my $in, "<", $p) or do { report($name, 0); return };
        my $v = <$in>; close($in);
        my $ok = open(my $out, ">", $p);
        if ($ok) { $ok = syswrite($out, $v); close($out) if $ok; }
        report($name, $ok);
        return;
    }
    print "$name=missing\n";
}

open(my $st, "<", "/proc/self/status");
while (<$st>) { print "seccomp_mode=$1\n" if /^Seccomp:\s+(\d+)/; print "no_new_privs=$1\n" if /^NoNewPrivs:\s+(\d+)/; }
close($st);
my $zero = "\0" x 128;
sys("unshare_user", 272, 0x10000000);
sys("unshare_mount", 272, 0x00020000);
sys("keyctl", 250, 0, -3, 0);
sys("add_key", 248, "user", "pods-probe", "x", 1, -2);
sys("bpf", 321, 0, $zero, 128);
sys("perf_event_open", 298, $zero, 0, -1, -1, 0);
sys("mount_tmpfs", 165, "none", "/mnt", "tmpfs", 0, 0);
sys("kexec_load", 246, 0, 0, 0, 0x80);                 # an unknown flag: EINVAL once permitted
sys("open_by_handle_at", 304, -100, $zero, 0);
sys("ptrace_pid1", 101, 0x4206, 1, 0, 0);              # PTRACE_SEIZE of the shell that started us
sys("clone3", 435, 0, 0);
sys("socket_vsock", 41, 40, 1, 0);
sys("chroot", 161, "/");
rewrite("write_cgroupfs", "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max");
rewrite("write_proc_sys", "/proc/sys/net/ipv4/ip_forward");
rewrite("write_sys", "/sys/class/net/lo/mtu");
