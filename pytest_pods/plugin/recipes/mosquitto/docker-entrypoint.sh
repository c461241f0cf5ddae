#!/bin/sh
# pytest-pods: the official eclipse-mosquitto image's entrypoint contract, on Debian's mosquitto
# 2.0 (issue 17). Written for this recipe from the documented behaviour of the official image
# (hub.docker.com/_/eclipse-mosquitto, its README and docker-entrypoint.sh), not copied from it.
#
# - `mosquitto ARGS` (`-c /mosquitto-no-auth.conf`), or only ARGS when the first starts with
#   "-"; any other command runs as given.
# - Started as root: /mosquitto/data and /mosquitto/log are given to the mosquitto user (the
#   official image chowns all of /mosquitto; the config is left as mounted here) and Mosquitto
#   drops to that user itself (its `user` option) once its listeners are open.
# - stdout line-buffered (coreutils' stdbuf): Mosquitto 2.0.11 does not flush what
#   `log_dest stdout` writes, so on a pipe its log lines (the ready line too, which
#   testcontainers' config sends there) would wait for 4 KiB; later 2.0.x flush each line.
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- mosquitto "$@"
fi
case "$1" in mosquitto|/usr/sbin/mosquitto) ;; *) exec "$@" ;; esac

if [ -O / ]; then  # we own /: root (a test, no fork)
    chown -R mosquitto:mosquitto /mosquitto/data /mosquitto/log 2>/dev/null || :
fi
exec stdbuf -oL "$@"
