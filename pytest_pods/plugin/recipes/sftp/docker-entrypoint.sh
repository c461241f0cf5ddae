#!/bin/sh
# pytest-pods: the atmoz/sftp image's conventions on Debian's OpenSSH 9.2 (issue 17). Written for
# this recipe from that image's documented behaviour (github.com/atmoz/sftp), not copied from it.
#
# - Users from the arguments, SFTP_USERS (separated by spaces) and /etc/sftp/users.conf (one a
#   line, # comments), each `user:pass[:e][:uid[:gid[:dir1[,dir2]...]]]`: `e` means pass is
#   crypt(3)-encrypted; the gid's group is made if missing; each dir is made in /home/USER and
#   owned by the user. /home/USER is root's (755): sshd's chroot needs that.
# - `docker-entrypoint.sh add-user SPEC` adds one such user to a running server (the fixtures'
#   user isolation).
# - Host keys: any of /etc/ssh/ssh_host_{ed25519,rsa,ecdsa}_key mounted is used; missing ones
#   are generated at first start (ed25519 and ecdsa: milliseconds; RSA only with SFTP_RSA_HOSTKEY=1,
#   as 3072 bits take a second or more).
# - Then sshd -D -e as pid 1, logging to stderr ("Server listening on 0.0.0.0 port 22.").
# - A first argument that is a program (`sh`, `bash`, /usr/sbin/sshd ...) runs as given.
set -eu

fail() { echo "docker-entrypoint.sh: $*" >&2; exit 3; }

add_user() {
    spec=$1
    user=$(echo "$spec" | cut -d: -f1)
    pass=$(echo "$spec" | cut -d: -f2)
    # the optional `e` after pass shifts the other fields by one (as in atmoz/sftp)
    enc=$(echo "$spec" | cut -d: -f3)
    if [ "$enc" = e ]; then n=4; else enc=; n=3; fi
    uid=$(echo "$spec" | cut -d: -f$n)
    gid=$(echo "$spec" | cut -d: -f$((n + 1)))
    dirs=$(echo "$spec" | cut -d: -f$((n + 2))-)
    case "$spec" in *:*) ;; *) fail "user '$spec': give user:pass[:e][:uid[:gid[:dir1[,dir2]...]]]" ;; esac
    echo "$user" | grep -Eq '^[a-z_][a-z0-9_.-]{0,31}$' || fail "user name '$user': lower-case letters, digits, _ . - (at most 32)"
    [ "$user" != root ] || fail "user root: not for SFTP (sshd refuses root here)"
    [ -z "$uid" ] || echo "$uid" | grep -Eq '^[0-9]+$' || fail "user '$user': uid '$uid' is not a number"
    [ -z "$gid" ] || echo "$gid" | grep -Eq '^[0-9]+$' || fail "user '$user': gid '$gid' is not a number"
    if getent passwd "$user" >/dev/null; then fail "user '$user' exists already"; fi
    set --
    [ -z "$uid" ] || set -- "$@" --non-unique --uid "$uid"
    if [ -n "$gid" ]; then
        getent group "$gid" >/dev/null || groupadd --gid "$gid" "g$gid"
        set -- "$@" --gid "$gid"
    fi
    useradd --no-user-group --no-create-home --home-dir "/home/$user" --shell /usr/sbin/nologin "$@" "$user"
    if [ -n "$pass" ]; then
        # SHA-512 crypt, not Debian 12's default yescrypt: a login checks it in a millisecond, not ~100 ms
        if [ "$enc" = e ]; then echo "$user:$pass" | chpasswd -e; else echo "$user:$pass" | chpasswd -c SHA512; fi
    else
        usermod -p '*' "$user"  # no password: keys only (/home/USER/.ssh/keys/*.pub)
    fi
    mkdir -p "/home/$user"
    chown root:root "/home/$user"
    chmod 755 "/home/$user"
    if [ -n "$dirs" ]; then
        ugid=$(id -g "$user")
        IFS=,
        for d in $dirs; do
            case "$d" in /*|*..*) fail "user '$user': dir '$d' must be relative to /home/$user, without .." ;; esac
            mkdir -p "/home/$user/$d"
            chown "$(id -u "$user"):$ugid" "/home/$user/$d"
        done
        unset IFS
    fi
    # public keys mounted at /home/USER/.ssh/keys/*.pub, as atmoz/sftp takes them
    if [ -d "/home/$user/.ssh/keys" ]; then
        cat "/home/$user/.ssh/keys"/*.pub > "/home/$user/.ssh/authorized_keys" 2>/dev/null || true
        chown "$(id -u "$user")" "/home/$user/.ssh/authorized_keys"
        chmod 600 "/home/$user/.ssh/authorized_keys"
    fi
}

if [ "${1:-}" = add-user ]; then
    shift
    [ "$#" -gt 0 ] || fail "add-user SPEC..."
    for spec in "$@"; do add_user "$spec"; done
    exit 0
fi
if [ "$#" -gt 0 ] && command -v "$1" >/dev/null 2>&1 && [ "${1#*:}" = "$1" ]; then
    exec "$@"
fi

count=0
for spec in "$@" ${SFTP_USERS:-}; do add_user "$spec"; count=$((count + 1)); done
if [ -f /etc/sftp/users.conf ]; then
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in ''|'#'*) continue ;; esac
        add_user "$line"; count=$((count + 1))
    done < /etc/sftp/users.conf
fi
[ "$count" -gt 0 ] || fail "no users: give user:pass[:e][:uid[:gid[:dir1[,dir2]...]]] as arguments, in SFTP_USERS or /etc/sftp/users.conf"

[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
[ -f /etc/ssh/ssh_host_ecdsa_key ] || ssh-keygen -q -t ecdsa -b 256 -N '' -f /etc/ssh/ssh_host_ecdsa_key
if [ "${SFTP_RSA_HOSTKEY:-}" = 1 ] && [ ! -f /etc/ssh/ssh_host_rsa_key ]; then
    ssh-keygen -q -t rsa -b 3072 -N '' -f /etc/ssh/ssh_host_rsa_key
fi
set --
for key in /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ecdsa_key /etc/ssh/ssh_host_rsa_key; do
    [ ! -f "$key" ] || set -- "$@" -h "$key"
done
mkdir -p /run/sshd
exec /usr/sbin/sshd -D -e "$@"
