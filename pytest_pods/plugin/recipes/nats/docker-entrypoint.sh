#!/bin/sh
# pytest-pods: the official nats image's entrypoint contract, on Debian's nats-server 2.9
# (issue 17). Written for this recipe from the documented behaviour of the official image
# (hub.docker.com/_/nats and its alpine variant's docker-entrypoint.sh), not copied from it.
#
# - `nats-server ARGS`, or only ARGS when the first starts with "-" (`-js`, `--config FILE`);
#   any other command runs as given.
# - Runs as the nats user (started as root, it drops to nats first: the official image has no
#   user of its own and runs nats-server as root).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- nats-server "$@"
fi
case "$1" in nats-server|/nats-server|/usr/sbin/nats-server) ;; *) exec "$@" ;; esac

if [ -O / ]; then  # we own /: root (a test, no fork)
    exec setpriv --reuid=nats --regid=nats --init-groups "$0" "$@"
fi
exec "$@"
