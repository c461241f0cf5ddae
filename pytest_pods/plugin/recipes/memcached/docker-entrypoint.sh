#!/bin/sh
# pytest-pods: the official memcached image's entrypoint contract, on Debian's memcached 1.6
# (issue 17). Written for this recipe from the documented behaviour of the official image
# (hub.docker.com/_/memcached), not copied from it.
#
# - `memcached ARGS`, or only ARGS when the first starts with "-" (`-m 64`, `-c 1024`); any
#   other command runs as given.
# - Runs as the memcache user (started as root, it drops to memcache first: memcached itself
#   refuses root without -u).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- memcached "$@"
fi
[ "$1" = memcached ] || exec "$@"

# root: become memcache (Debian's util-linux setpriv; the official image's USER is memcache)
if [ -O / ]; then  # we own /: root (a test, no fork: `id` would cost one)
    exec setpriv --reuid=memcache --regid=memcache --init-groups "$0" "$@"
fi
exec "$@"
