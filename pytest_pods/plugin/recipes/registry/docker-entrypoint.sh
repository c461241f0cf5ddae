#!/bin/sh
# pytest-pods: the official registry:2 image's entrypoint contract, on Debian's docker-registry
# 2.8 (issue 17). Written for this recipe from the documented behaviour (distribution's
# "Deploying a registry server"), not copied.
#
# A first argument ending in .yaml/.yml is a config file: `docker-registry serve FILE`; `serve`
# and `garbage-collect` run docker-registry with those arguments; anything else runs as given.
# PODS_REGISTRY_USERS="user:password [user2:password2 ...]" (pytest-pods' own): a bcrypt htpasswd
# file in /auth/htpasswd and REGISTRY_AUTH=htpasswd with it, unless REGISTRY_AUTH is set.
set -eu

case "${1:-}" in
    *.yaml|*.yml) set -- docker-registry serve "$@" ;;
    serve|garbage-collect|help) set -- docker-registry "$@" ;;
esac

if [ -n "${PODS_REGISTRY_USERS:-}" ] && [ -z "${REGISTRY_AUTH:-}" ]; then
    : > /auth/htpasswd
    for entry in $PODS_REGISTRY_USERS; do
        htpasswd -Bbi /auth/htpasswd "${entry%%:*}" 2>/dev/null <<PW
${entry#*:}
PW
    done
    export REGISTRY_AUTH=htpasswd REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd \
           REGISTRY_AUTH_HTPASSWD_REALM="${REGISTRY_AUTH_HTPASSWD_REALM:-Registry Realm}"
fi
exec "$@"
