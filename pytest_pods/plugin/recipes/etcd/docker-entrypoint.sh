#!/bin/sh
# pytest-pods: the official etcd images' conventions (quay.io/coreos/etcd, bitnami/etcd), on
# Debian's etcd-server 3.4 (issue 17). Written for this recipe from their documented behaviour,
# not copied from them.
#
# - `etcd ARGS`, or only ARGS when the first starts with "-" (`--name n1`); any other command
#   runs as given (`etcdctl get k`). /usr/local/bin/etcd ARGS, quay.io's documented command, too.
# - etcd reads its ETCD_* variables itself. The defaults below (a single member reachable from
#   outside the container, data in /etcd-data) are set only for a setting given neither as a
#   variable nor as a flag: etcd 3.4 refuses to start when one setting is given both ways.
#   The member's name is ETCD_NAME or --name ("default"), its one-member cluster itself.
# - Runs as the etcd user (started as root, it drops to etcd first, owning the data directory).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- etcd "$@"
fi
case "$1" in etcd|/usr/bin/etcd|/usr/local/bin/etcd) ;; *) exec "$@" ;; esac

# given VAR FLAG: VAR is set or --FLAG is among the arguments
given() {
    eval "[ -n \"\${$1+x}\" ]" && return 0
    case " $ARGS " in *" --$2 "*|*" --$2="*|*" -$2 "*|*" -$2="*) return 0 ;; esac
    return 1
}
# default VAR FLAG VALUE: export VAR=VALUE unless it is given
default() {
    given "$1" "$2" || export "$1=$3"
}
ARGS="$*"
name="${ETCD_NAME:-default}" prev=
for arg in "$@"; do
    case "$prev" in --name|-name) name="$arg" ;; esac
    case "$arg" in --name=*|-name=*) name="${arg#*=}" ;; esac
    prev="$arg"
done
default ETCD_DATA_DIR data-dir /etcd-data
default ETCD_LISTEN_CLIENT_URLS listen-client-urls http://0.0.0.0:2379
default ETCD_ADVERTISE_CLIENT_URLS advertise-client-urls http://0.0.0.0:2379
default ETCD_LISTEN_PEER_URLS listen-peer-urls http://0.0.0.0:2380
# the member's own peer URL by address: "localhost" may resolve to the container's address
default ETCD_INITIAL_ADVERTISE_PEER_URLS initial-advertise-peer-urls http://127.0.0.1:2380
default ETCD_INITIAL_CLUSTER initial-cluster "$name=http://127.0.0.1:2380"
# a single member elects itself after its election timeout (up to 2x, randomized; 1 s by
# default): ticks of 10 ms make a new server ready in tens of ms instead of up to a second
# (both or neither: etcd wants the election timeout at least 5 heartbeats)
if ! given ETCD_HEARTBEAT_INTERVAL heartbeat-interval && ! given ETCD_ELECTION_TIMEOUT election-timeout; then
    export ETCD_HEARTBEAT_INTERVAL=10 ETCD_ELECTION_TIMEOUT=100
fi

if [ -O / ]; then  # we own /: root (a test, no fork)
    data="${ETCD_DATA_DIR:-/etcd-data}"
    mkdir -p "$data" && chown etcd:etcd "$data" && chmod 700 "$data"
    exec setpriv --reuid=etcd --regid=etcd --init-groups "$0" "$@"
fi
exec "$@"
