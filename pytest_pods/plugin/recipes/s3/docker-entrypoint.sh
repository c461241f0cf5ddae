#!/bin/sh
# pytest-pods: moto's server as the motoserver/moto image runs it (issue 17). Written for this
# recipe, not copied.
#
# - `moto_server ARGS`, or only ARGS when the first starts with "-" (`-p 5001`); listens on
#   0.0.0.0 and $MOTO_PORT (5000) unless the arguments say otherwise; any other command runs as
#   given.
# - Runs as the moto user (started as root, it drops to moto first).
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- moto_server "$@"
fi
if [ "$1" = moto_server ]; then
    shift
    case " $* " in *" -H "*|*" --host "*|*" --host="*) ;; *) set -- -H 0.0.0.0 "$@" ;; esac
    case " $* " in *" -p "*|*" --port "*|*" --port="*) ;; *) set -- "$@" -p "${MOTO_PORT:-5000}" ;; esac
    set -- moto_server "$@"
fi
if [ -O / ]; then  # root: become moto
    exec setpriv --reuid=moto --regid=moto --init-groups "$@"
fi
exec "$@"
