#!/bin/sh
# pytest-pods: the official mariadb (and mysql) image's entrypoint contract, on Debian's MariaDB
# 10.11 (issue 17). Written for this recipe from the documented behaviour of the official images
# (hub.docker.com/_/mariadb, hub.docker.com/_/mysql), not copied from them.
#
# - `mariadbd ARGS` (or `mysqld ARGS`), or just `--option ...` (arguments starting with "-" go
#   to mariadbd); any other command runs as given.
# - A data directory (/var/lib/mysql, or --datadir=DIR among the arguments) that holds a
#   "mysql" directory is initialised: the server starts on it as it is, the variables below
#   are not read (as by the official image). /var/lib/mysql-ready is such a directory, made at
#   build time: root without a password, from anywhere; an empty database "test".
# - An empty data directory is initialised first, as the official image does it: from a copy of
#   /var/lib/mysql-ready (in place of mariadb-install-db), then a server that listens on the
#   unix socket only applies
#     MARIADB_ROOT_PASSWORD / MYSQL_ROOT_PASSWORD (root@localhost and root@MARIADB_ROOT_HOST,
#       default '%'), or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD / MYSQL_ALLOW_EMPTY_PASSWORD, or
#       MARIADB_RANDOM_ROOT_PASSWORD / MYSQL_RANDOM_ROOT_PASSWORD (printed as "GENERATED ROOT
#       PASSWORD: ..."): one of them is required, else it refuses to start and says so;
#     MARIADB_DATABASE / MYSQL_DATABASE (created), MARIADB_USER / MYSQL_USER with
#       MARIADB_PASSWORD / MYSQL_PASSWORD (a user from anywhere with all privileges on that
#       database);
#     each also as VAR_FILE (the value read from that file);
#   and runs /docker-entrypoint-initdb.d/* in name order: *.sh (run if executable, else
#   sourced), *.sql, *.sql.gz, *.sql.xz, *.sql.zst (into MARIADB_DATABASE when set); then that
#   server stops and the real one starts. So "ready for connections" is logged twice, as by the
#   official image (the first server's line says port: 0).
# - Not done: time zone tables (Debian's tzdata is not in the image; MARIADB_INITDB_SKIP_TZINFO
#   is what happens anyway), MARIADB_ROOT_PASSWORD_HASH, MARIADB_REPLICATION_*, MARIADB_AUTO_UPGRADE.
# - Runs as the mysql user (started as root, it drops to mysql first).
set -eu

READY_DIR=/var/lib/mysql-ready
BAKED=pytest-pods.baked

note() { printf '%s 0 [Note] [Entrypoint]: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*"; }
error() {
    printf '%s 0 [ERROR] [Entrypoint]: %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >&2
    exit 1
}

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- mariadbd "$@"
fi
case "$1" in
    mariadbd | mysqld) ;;
    *) exec "$@" ;;
esac

# the data directory and the socket the server will use: the arguments' or the defaults
datadir=/var/lib/mysql
socket=/run/mysqld/mysqld.sock
next=
for arg in "$@"; do
    case "$next" in
        datadir) datadir=$arg ;;
        socket) socket=$arg ;;
    esac
    next=
    case "$arg" in
        --datadir=*) datadir=${arg#--datadir=} ;;
        --socket=*) socket=${arg#--socket=} ;;
        --datadir) next=datadir ;;
        --socket) next=socket ;;
    esac
done

# root: become mysql (Debian's util-linux setpriv; the official image uses gosu)
if [ -O / ]; then  # we own /: root (a test, no fork: `id` would cost one)
    mkdir -p "$datadir" /run/mysqld
    chown mysql:mysql "$datadir" /run/mysqld
    exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
fi

if [ -d "$datadir/mysql" ]; then
    exec "$@"  # initialised: the ready-made directory, a volume of the user's, a warm snapshot's
fi

# -- first start: initialise the data directory as the variables ask --------------------------
note "Entrypoint script for MariaDB Server $("$1" --version | sed -n 's/.*Ver \([^ ]*\).*/\1/p') started."

# MYSQL_* stand for MARIADB_* where those are unset; VAR_FILE gives VAR from a file
for name in ROOT_PASSWORD ROOT_HOST RANDOM_ROOT_PASSWORD DATABASE USER PASSWORD; do
    for prefix in MARIADB MYSQL; do
        var=${prefix}_$name
        eval "val=\${$var:-}; file=\${${var}_FILE:-}"
        if [ -n "$val" ] && [ -n "$file" ]; then
            error "both $var and ${var}_FILE are set (but are exclusive)"
        fi
        if [ -n "$file" ]; then
            val=$(cat "$file") || error "$var: cannot read ${var}_FILE ($file)"
            eval "$var=\$val"
        fi
    done
    eval "[ -n \"\${MARIADB_$name:-}\" ] || MARIADB_$name=\${MYSQL_$name:-}"
done
: "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:=${MYSQL_ALLOW_EMPTY_PASSWORD:-}}"
: "${MARIADB_ROOT_HOST:=%}"
export MARIADB_ROOT_PASSWORD MARIADB_ROOT_HOST MARIADB_DATABASE MARIADB_USER MARIADB_PASSWORD \
    MARIADB_ALLOW_EMPTY_ROOT_PASSWORD MARIADB_RANDOM_ROOT_PASSWORD

if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] \
        && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    error "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD
	(or MYSQL_ROOT_PASSWORD, MYSQL_ALLOW_EMPTY_PASSWORD and MYSQL_RANDOM_ROOT_PASSWORD)"
fi
if [ "$MARIADB_USER" = root ]; then
    error "MARIADB_USER=root: MARIADB_USER and MARIADB_PASSWORD are for a regular user and cannot be used for the root user
	Remove MARIADB_USER=root and use one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD"
fi
if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
    note "MARIADB_USER=$MARIADB_USER without MARIADB_PASSWORD: the user has an empty password"
fi
if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ] && [ -z "$MARIADB_ROOT_PASSWORD" ]; then
    MARIADB_ROOT_PASSWORD=$(tr -dc 'A-Za-z0-9,.;:_=+-' < /dev/urandom | head -c 32)
    note "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
fi

mkdir -p "$datadir"
if [ -n "$(ls -A "$datadir")" ]; then
    error "$datadir is not empty and holds no database (no $datadir/mysql): empty it or choose another --datadir"
fi
if [ -e "$READY_DIR/$BAKED" ] && [ "$datadir" != "$READY_DIR" ]; then
    note "Initializing database files (a copy of $READY_DIR)"
    cp -a "$READY_DIR/." "$datadir/"
    rm -f "$datadir/$BAKED"
else
    note "Initializing database files"
    mariadb-install-db --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal \
        --skip-name-resolve --cross-bootstrap > /dev/null
fi
note "Database files initialized"

# the init server: the unix socket only, so that nothing from outside connects before the end
note "Starting temporary server"
"$@" --skip-networking --socket="$socket" --skip-slave-start --loose-wsrep-on=OFF &
pid=$!
i=0
until mariadb-admin --socket="$socket" -uroot --connect-timeout=1 ping > /dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || error "the temporary server exited: see its log above"
    i=$((i + 1))
    [ "$i" -lt 600 ] || error "the temporary server did not answer on $socket within 30 s"
    sleep 0.05
done
note "Temporary server started."

# SQL string and identifier literals
sql_str() { printf "'%s'" "$(printf %s "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"; }
sql_id() { printf '`%s`' "$(printf %s "$1" | sed -e 's/`/``/g')"; }

docker_process_sql() {  # for sourced *.sh scripts, as in the official image: SQL on stdin
    if [ -n "$MARIADB_DATABASE" ]; then
        mariadb --protocol=socket --socket="$socket" -uroot --database="$MARIADB_DATABASE" "$@"
    else
        mariadb --protocol=socket --socket="$socket" -uroot "$@"
    fi
}

line() { printf '%s\n' "$*"; }  # not echo: dash's echo reads backslashes
pw=$(sql_str "$MARIADB_ROOT_PASSWORD")
{
    line "SET @@SESSION.SQL_LOG_BIN=0;"
    [ "$MARIADB_DATABASE" = test ] || line "DROP DATABASE IF EXISTS test;"
    line "DROP USER IF EXISTS 'root'@'%';"
    line "ALTER USER 'root'@'localhost' IDENTIFIED BY $pw;"
    if [ "$MARIADB_ROOT_HOST" != localhost ]; then
        host=$(sql_str "$MARIADB_ROOT_HOST")
        line "CREATE USER 'root'@$host IDENTIFIED BY $pw;"
        line "GRANT ALL ON *.* TO 'root'@$host WITH GRANT OPTION;"
    fi
    if [ -n "$MARIADB_DATABASE" ]; then
        note "Creating database $MARIADB_DATABASE" >&2
        line "CREATE DATABASE IF NOT EXISTS $(sql_id "$MARIADB_DATABASE");"
    fi
    if [ -n "$MARIADB_USER" ]; then
        note "Creating user $MARIADB_USER" >&2
        user="$(sql_str "$MARIADB_USER")@'%'"
        line "CREATE USER $user IDENTIFIED BY $(sql_str "$MARIADB_PASSWORD");"
        if [ -n "$MARIADB_DATABASE" ]; then
            note "Giving user $MARIADB_USER access to schema $MARIADB_DATABASE" >&2
            line "GRANT ALL ON $(sql_id "$MARIADB_DATABASE" | sed 's/_/\\_/g').* TO $user;"
        fi
    fi
} | mariadb --protocol=socket --socket="$socket" -uroot

# from here on the clients need root's password (MYSQL_PWD: read by the client, not shown in ps)
MYSQL_PWD=$MARIADB_ROOT_PASSWORD
export MYSQL_PWD

echo
for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
        *.sh)
            if [ -x "$f" ]; then
                note "$0: running $f"; "$f"
            else
                note "$0: sourcing $f"; . "$f"
            fi ;;
        *.sql) note "$0: running $f"; docker_process_sql < "$f" ;;
        *.sql.gz) note "$0: running $f"; gunzip -c "$f" | docker_process_sql ;;
        *.sql.xz) note "$0: running $f"; xzcat "$f" | docker_process_sql ;;
        *.sql.zst) note "$0: running $f"; zstd -dc "$f" | docker_process_sql ;;
        *) note "$0: ignoring $f" ;;
    esac
done
echo

note "Stopping temporary server"
kill -TERM "$pid"
wait "$pid" || :
unset MYSQL_PWD
note "Temporary server stopped"
echo
note "MariaDB init process done. Ready for start up."
echo
exec "$@"
