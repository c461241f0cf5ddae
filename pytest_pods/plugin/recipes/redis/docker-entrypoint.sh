#!/bin/sh
# pytest-pods: the official redis image's entrypoint contract, on Debian's redis-server 7.0
# (issue 17). Written for this recipe from the documented behaviour of the official image
# (hub.docker.com/_/redis), not copied from it.
#
# - `redis-server ARGS`, or only ARGS when the first starts with "-" or ends in ".conf"
#   (`--requirepass pw`, `--appendonly yes`, `/usr/local/etc/redis/redis.conf --port 7000`);
#   any other command runs as given.
# - The official image's redis-server has protected mode off by default: so has this one
#   (`--protected-mode no` is added unless the arguments or the config file set it), so other
#   containers and the host reach a server without a password, as with the official image.
# - Runs as the redis user in /data (started as root, it drops to redis first).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi
[ "$1" = redis-server ] || exec "$@"

# root: become redis (Debian's util-linux setpriv; the official image uses gosu)
if [ -O / ]; then  # we own /: root (a test, no fork: `id` would cost one)
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || :
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

protected=
conf=
case "${2:-}" in -*|'') ;; *) conf=$2 ;; esac  # redis-server's config file comes first
for arg in "$@"; do
    [ "$arg" != --protected-mode ] || protected=1
done
if [ -z "$protected" ] && [ -n "$conf" ] && [ -r "$conf" ] && grep -qiE '^[[:space:]]*protected-mode[[:space:]]' "$conf"; then
    protected=1
fi
[ -n "$protected" ] || set -- "$@" --protected-mode no
exec "$@"
