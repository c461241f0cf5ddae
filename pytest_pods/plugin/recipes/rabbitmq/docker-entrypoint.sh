#!/bin/sh
# pytest-pods: the official rabbitmq image's entrypoint contract, on Debian's rabbitmq-server
# 3.10 (issue 17). Written for this recipe from the documented behaviour of the official image
# (hub.docker.com/_/rabbitmq), not copied from it.
#
# - RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST: the user, password
#   and vhost made on the first start (guest/guest and "/" without them).
# - RABBITMQ_NODE_PORT: the AMQP port. rabbitmq-server reads it too, but the listener that
#   10-defaults.conf names (5672, as the official image's does) would win over it in 3.10; the
#   official image listens on the variable's port (testcontainers' RabbitMqContainer(port=5673)
#   relies on it), so it is written after that file.
# - RABBITMQ_ERLANG_COOKIE: the node's cookie (deprecated by the official image, still honoured).
# - RABBITMQ_ENABLED_PLUGINS: plugins to enable (comma separated), e.g. rabbitmq_management.
# - Runs as the rabbitmq user (started as root, it drops to rabbitmq first).
set -eu

[ "$#" -gt 0 ] || set -- rabbitmq-server
[ "$1" = rabbitmq-server ] || exec "$@"

if [ -O / ]; then  # root: become rabbitmq
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /etc/rabbitmq 2>/dev/null || :
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups "$0" "$@"
fi

conf=/etc/rabbitmq/conf.d/20-pods-env.conf
: > "$conf"
[ -z "${RABBITMQ_DEFAULT_USER:-}" ] || printf 'default_user = %s\n' "$RABBITMQ_DEFAULT_USER" >> "$conf"
[ -z "${RABBITMQ_DEFAULT_PASS:-}" ] || printf 'default_pass = %s\n' "$RABBITMQ_DEFAULT_PASS" >> "$conf"
[ -z "${RABBITMQ_DEFAULT_VHOST:-}" ] || printf 'default_vhost = %s\n' "$RABBITMQ_DEFAULT_VHOST" >> "$conf"
[ -z "${RABBITMQ_NODE_PORT:-}" ] || printf 'listeners.tcp.default = %s\n' "$RABBITMQ_NODE_PORT" >> "$conf"
if [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && [ "$RABBITMQ_DEFAULT_USER" != guest ]; then
    printf 'loopback_users = none\n' >> "$conf"
fi
if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
    umask 077
    printf '%s' "$RABBITMQ_ERLANG_COOKIE" > "$HOME/.erlang.cookie"
fi
if [ -n "${RABBITMQ_ENABLED_PLUGINS:-}" ]; then
    printf '[%s].\n' "$RABBITMQ_ENABLED_PLUGINS" > /etc/rabbitmq/enabled_plugins
fi
exec "$@"
