#!/bin/sh
# pytest-pods: the official postgres image's entrypoint contract, on Debian's PostgreSQL 15
# (issue 17). Written for this recipe from the documented behaviour of the official image
# (hub.docker.com/_/postgres), not copied from it.
#
# - `postgres ARGS` and `-c key=value ...` (arguments starting with "-" go to postgres); any other
#   command runs as given.
# - The image holds a ready cluster (user postgres, database postgres, trust), marked by the
#   file $BAKED in it. With none of the variables below set it starts at once: what the plugin's
#   own fixtures use.
# - POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB (default: the user), POSTGRES_INITDB_ARGS,
#   POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD, or scripts in /docker-entrypoint-initdb.d
#   replace that ready cluster by one made as the official image makes it: initdb as the user,
#   the password set, "host all all all METHOD" in pg_hba.conf, the database created, then
#   *.sh (run if executable, else sourced), *.sql, *.sql.gz|xz|zst run once by a server that
#   listens on the unix socket only, which is then stopped; then the real server starts (so
#   "database system is ready to accept connections" is logged twice, as by the official image).
# - PGDATA elsewhere, empty: initialised the same way. A PGDATA that holds a cluster of its own
#   (a volume) is used as it is.
# - Runs as the postgres user (started as root, it drops to postgres first).
set -eu

BAKED=pytest-pods.baked

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
[ "$1" = postgres ] || exec "$@"

# root: become postgres (Debian's util-linux setpriv; the official image uses gosu)
if [ -O / ]; then  # we own /: root (a test, no fork: `id` would cost one)
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

custom=
[ -z "${POSTGRES_USER:-}" ] || [ "$POSTGRES_USER" = postgres ] || custom=1
[ -z "${POSTGRES_PASSWORD:-}" ] || custom=1
[ -z "${POSTGRES_DB:-}" ] || [ "$POSTGRES_DB" = "${POSTGRES_USER:-postgres}" ] || custom=1
[ -z "${POSTGRES_INITDB_ARGS:-}" ] || custom=1
[ -z "${POSTGRES_INITDB_WALDIR:-}" ] || custom=1
[ -z "${POSTGRES_HOST_AUTH_METHOD:-}" ] || [ "$POSTGRES_HOST_AUTH_METHOD" = trust ] || custom=1
for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] && custom=1
    break
done

if [ -s "$PGDATA/PG_VERSION" ] && { [ -z "$custom" ] || [ ! -e "$PGDATA/$BAKED" ]; }; then
    exec "$@"  # the ready cluster, or a cluster of the user's own: start it as it is
fi

# -- first start: make the cluster the variables ask for -------------------------------------
shift  # "postgres": what follows are the server's arguments
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:=}"
: "${POSTGRES_HOST_AUTH_METHOD:=}"
export POSTGRES_USER POSTGRES_DB POSTGRES_PASSWORD

if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    cat >&2 <<'EOF'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
EOF
    exit 1
fi

if [ -e "$PGDATA/$BAKED" ]; then
    # the image's ready cluster: replaced (files of the image layer: the overlay hides them)
    find "$PGDATA" -mindepth 1 -delete
fi
mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || :
if [ -n "$(ls -A "$PGDATA")" ]; then
    echo "initdb: $PGDATA is not empty and holds no cluster (no PG_VERSION): empty it or set PGDATA" >&2
    exit 1
fi

pwfile=
if [ -n "$POSTGRES_PASSWORD" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
fi
waldir=
[ -z "${POSTGRES_INITDB_WALDIR:-}" ] || waldir="--waldir=$POSTGRES_INITDB_WALDIR"
# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list, as in the official image
# (encoding and locale from LANG=C.UTF-8: UTF8, C.UTF-8; POSTGRES_INITDB_ARGS may say otherwise)
initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} $waldir --no-sync --no-instructions \
    ${POSTGRES_INITDB_ARGS:-}
[ -z "$pwfile" ] || rm -f "$pwfile"
echo "include '/etc/postgresql/pytest-pods.conf'" >> "$PGDATA/postgresql.conf"

if [ -z "$POSTGRES_HOST_AUTH_METHOD" ]; then
    POSTGRES_HOST_AUTH_METHOD=$(postgres -C password_encryption "$@" 2>/dev/null || echo scram-sha-256)
fi
if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    echo "WARNING: POSTGRES_HOST_AUTH_METHOD=trust: every connection is let in without a password." >&2
fi
printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"

# the init server: the unix socket only, so that nothing from outside connects before the end
quoted=
for arg in "$@"; do
    esc=
    while :; do
        case "$arg" in
            *\'*) esc="$esc${arg%%\'*}'\\''"; arg=${arg#*\'} ;;
            *) esc="$esc$arg"; break ;;
        esac
    done
    quoted="$quoted '$esc'"
done
pg_ctl -D "$PGDATA" -w -s -o "$quoted -c listen_addresses='' -p ${PGPORT:-5432}" start

export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
psql_run() {
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}
if [ "$POSTGRES_DB" != postgres ]; then
    psql_run --dbname postgres -q -v db="$POSTGRES_DB" <<'EOF'
SELECT 'CREATE DATABASE ' || quote_ident(:'db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
EOF
fi

echo
for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
        *.sh)
            if [ -x "$f" ]; then
                echo "$0: running $f"; "$f"
            else
                echo "$0: sourcing $f"; . "$f"
            fi ;;
        *.sql) echo "$0: running $f"; psql_run --dbname "$POSTGRES_DB" -f "$f"; echo ;;
        *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_run --dbname "$POSTGRES_DB"; echo ;;
        *.sql.xz) echo "$0: running $f"; xzcat "$f" | psql_run --dbname "$POSTGRES_DB"; echo ;;
        *.sql.zst) echo "$0: running $f"; zstd -dc "$f" | psql_run --dbname "$POSTGRES_DB"; echo ;;
        *) echo "$0: ignoring $f" ;;
    esac
done
unset PGPASSWORD

pg_ctl -D "$PGDATA" -m fast -w -s stop
echo
echo "PostgreSQL init process complete; ready for start up."
echo
exec postgres "$@"
