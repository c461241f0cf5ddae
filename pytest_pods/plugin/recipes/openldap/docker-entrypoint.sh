#!/bin/sh
# pytest-pods: the OpenLDAP images' conventions on Debian's slapd 2.5 (issue 17). Written for this
# recipe from the documented behaviour of bitnami/openldap (the primary contract) and
# osixia/openldap, not copied from them.
#
# - bitnami/openldap (the default): LDAP_ROOT (dc=example,dc=org), LDAP_ADMIN_USERNAME (admin) and
#   LDAP_ADMIN_PASSWORD (adminpassword; or LDAP_ADMIN_PASSWORD_FILE) make the rootDN
#   cn=USER,ROOT; LDAP_USERS/LDAP_PASSWORDS (user01,user02 / bitnami1,bitnami2) the default tree's
#   users cn=USER,ou=users,ROOT, in group cn=LDAP_GROUP (readers),ou=groups,ROOT (LDAP_USER_OU,
#   LDAP_GROUP_OU; the older LDAP_USER_DC sets both); LDAP_SKIP_DEFAULT_TREE; LDAP_ADD_SCHEMAS and
#   LDAP_EXTRA_SCHEMAS (cosine,inetorgperson,nis); LDAP_CUSTOM_LDIF_DIR (/ldifs: its *.ldif instead
#   of the default tree), LDAP_CUSTOM_SCHEMA_FILE (/schema/custom.ldif), LDAP_CUSTOM_SCHEMA_DIR
#   (/schemas); LDAP_ALLOW_ANON_BINDING; LDAP_CONFIG_ADMIN_ENABLED/_USERNAME/_PASSWORD
#   (cn=admin,cn=config); LDAP_PASSWORD_HASH; LDAP_LOGLEVEL (256); LDAP_ULIMIT_NOFILES (1024);
#   LDAP_PORT_NUMBER (1389); /docker-entrypoint-initdb.d/*.sh after the setup.
# - osixia/openldap, when one of its own variables is set (LDAP_DOMAIN, LDAP_ORGANISATION,
#   LDAP_BASE_DN, LDAP_CONFIG_PASSWORD, LDAP_READONLY_USER, LDAP_TLS, LDAP_LOG_LEVEL) or its custom
#   LDIF directory holds files: base DN from LDAP_DOMAIN (example.org), organisation
#   LDAP_ORGANISATION (Example Inc.), rootDN cn=admin,BASE with LDAP_ADMIN_PASSWORD (admin),
#   cn=admin,cn=config with LDAP_CONFIG_PASSWORD (config), the memberOf and refint overlays, its
#   access rules, LDAP_READONLY_USER(_USERNAME/_PASSWORD), and the LDIFs of
#   /container/service/slapd/assets/config/bootstrap/ldif/custom with {{ LDAP_BASE_DN }} filled in.
# - Both: ports 1389 (bitnami's) and 389 (osixia's; when started as root) and ldapi:///; slapd in
#   the foreground as pid 1 with -d LOGLEVEL, logging to stderr: "slapd starting" when it serves.
#   The config and the database are made offline (slapadd) before slapd starts, so that line is
#   logged once; an LDIF with changetype records is applied by a slapd on ldapi:/// only, first.
# - Not here: TLS (LDAP_ENABLE_TLS=yes is refused by name), replication, accesslog, syncprov and
#   ppolicy setup, osixia's RFC2307bis schema.
# - `docker-entrypoint.sh slapd ARGS`, or only ARGS when the first starts with "-" (extra slapd
#   flags); osixia's `--copy-service` and `--loglevel LEVEL` are taken and ignored; any other
#   command runs as given.
set -eu

fail() { echo "docker-entrypoint.sh: $*" >&2; exit 3; }
log() { echo "openldap ==> $*" >&2; }

while [ "$#" -gt 0 ]; do  # osixia's run-tool flags
    case "$1" in
        --copy-service|--keep-startup-env) shift ;;
        --loglevel|-l) shift; [ "$#" -eq 0 ] || shift ;;
        *) break ;;
    esac
done
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- slapd "$@"
fi
case "$1" in
    slapd|/usr/sbin/slapd|/opt/bitnami/scripts/openldap/run.sh|/container/tool/run) shift ;;
    *) exec "$@" ;;
esac

CONF=/etc/ldap/slapd.d
DATA=/var/lib/ldap
RUN=/var/run/slapd
OSIXIA_LDIF=/container/service/slapd/assets/config/bootstrap/ldif/custom
OSIXIA_SCHEMA=/container/service/slapd/assets/config/bootstrap/schema/custom

yes_no() {  # yes_no VAR VALUE: yes or no, or fail naming the variable
    case "$2" in
        yes|true|TRUE|True|1) echo yes ;;
        no|false|FALSE|False|0|'') echo no ;;
        *) fail "$1='$2': use yes or no" ;;
    esac
}
file_env() {  # VAR_FILE holds VAR's value (Docker secrets)
    eval "f=\${${1}_FILE:-}"
    if [ -n "$f" ]; then
        [ -r "$f" ] || fail "${1}_FILE=$f: no such readable file"
        eval "$1=\$(cat \"\$f\")"
        export "$1"
    fi
}
b64() { printf %s "$1" | base64 -w0; }
hash_pw() { slappasswd -n -s "$1"; }

file_env LDAP_ADMIN_PASSWORD
file_env LDAP_CONFIG_ADMIN_PASSWORD
file_env LDAP_CONFIG_PASSWORD
file_env LDAP_READONLY_USER_PASSWORD

osixia=no
for v in LDAP_DOMAIN LDAP_ORGANISATION LDAP_BASE_DN LDAP_CONFIG_PASSWORD LDAP_READONLY_USER LDAP_TLS LDAP_LOG_LEVEL; do
    eval "[ -z \"\${$v+x}\" ]" || osixia=yes
done
if [ -d "$OSIXIA_LDIF" ] && [ -n "$(ls -A "$OSIXIA_LDIF" 2>/dev/null)" ]; then osixia=yes; fi

[ "$(yes_no LDAP_ENABLE_TLS "${LDAP_ENABLE_TLS:-no}")" = no ] || \
    fail "LDAP_ENABLE_TLS=yes: this recipe has no TLS (ldaps or StartTLS); use plain LDAP in tests"
PORT="${LDAP_PORT_NUMBER:-1389}"
case "$PORT" in ''|*[!0-9]*) fail "LDAP_PORT_NUMBER='$PORT' is not a port number" ;; esac

if [ "$osixia" = yes ]; then
    DOMAIN="${LDAP_DOMAIN:-example.org}"
    if [ -n "${LDAP_BASE_DN:-}" ]; then
        ROOT="$LDAP_BASE_DN"
    else
        ROOT="dc=$(echo "$DOMAIN" | sed 's/\./,dc=/g')"
    fi
    ORG="${LDAP_ORGANISATION:-Example Inc.}"
    ADMIN_DN="cn=admin,$ROOT"
    ADMIN_PW="${LDAP_ADMIN_PASSWORD:-admin}"
    CONFIG_ADMIN=yes
    CONFIG_DN="cn=admin,cn=config"
    CONFIG_PW="${LDAP_CONFIG_PASSWORD:-config}"
    LOGLEVEL="${LDAP_LOG_LEVEL:-256}"
    ANON=yes
    log "osixia/openldap's contract: base $ROOT, rootDN $ADMIN_DN"
else
    ROOT="${LDAP_ROOT:-dc=example,dc=org}"
    ADMIN_DN="cn=${LDAP_ADMIN_USERNAME:-admin},$ROOT"
    ADMIN_PW="${LDAP_ADMIN_PASSWORD:-adminpassword}"
    CONFIG_ADMIN=$(yes_no LDAP_CONFIG_ADMIN_ENABLED "${LDAP_CONFIG_ADMIN_ENABLED:-no}")
    CONFIG_DN="cn=${LDAP_CONFIG_ADMIN_USERNAME:-admin},cn=config"
    CONFIG_PW="${LDAP_CONFIG_ADMIN_PASSWORD:-configpassword}"
    LOGLEVEL="${LDAP_LOGLEVEL:-256}"
    ANON=$(yes_no LDAP_ALLOW_ANON_BINDING "${LDAP_ALLOW_ANON_BINDING:-yes}")
    log "bitnami/openldap's contract: base $ROOT, rootDN $ADMIN_DN, port $PORT"
fi
[ -n "$ADMIN_PW" ] || fail "an empty admin password: set LDAP_ADMIN_PASSWORD"
ulimit -n "${LDAP_ULIMIT_NOFILES:-${LDAP_NOFILE:-1024}}" 2>/dev/null || true

# the first RDN's value, for the base entry's dc or o
first_value() { echo "$1" | sed 's/^[^=]*=\([^,]*\).*/\1/'; }
first_attr() { echo "$1" | sed 's/^\([^=]*\)=.*/\1/' | tr 'A-Z' 'a-z'; }

base_entry() {  # the base entry: dcObject+organization for dc=, else the RDN's own class
    case "$(first_attr "$ROOT")" in
        dc) printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: %s\no: %s\n\n' \
                "$ROOT" "$(first_value "$ROOT")" "$1" ;;
        o) printf 'dn: %s\nobjectClass: organization\no: %s\n\n' "$ROOT" "$(first_value "$ROOT")" ;;
        ou) printf 'dn: %s\nobjectClass: organizationalUnit\nou: %s\n\n' "$ROOT" "$(first_value "$ROOT")" ;;
        *) fail "base DN '$ROOT': its first RDN must be dc=, o= or ou=" ;;
    esac
}

make_config() {
    tmp=$(mktemp -d)
    {
        printf 'dn: cn=config\nobjectClass: olcGlobal\ncn: config\n'
        printf 'olcPidFile: %s/slapd.pid\nolcArgsFile: %s/slapd.args\n' "$RUN" "$RUN"
        if [ "$ANON" = no ]; then printf 'olcDisallows: bind_anon\nolcRequires: authc\n'; fi
        printf '\ndn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n'
        printf 'olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n'
        if [ "$osixia" = yes ]; then printf 'olcModuleLoad: memberof\nolcModuleLoad: refint\n'; fi
        printf '\ndn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n'
        printf 'include: file:///etc/ldap/schema/core.ldif\n\n'
        if [ "$osixia" = yes ]; then
            schemas="cosine inetorgperson nis"  # osixia: Debian's slapd default schemas
        elif [ "$(yes_no LDAP_ADD_SCHEMAS "${LDAP_ADD_SCHEMAS:-yes}")" = yes ]; then
            schemas=$(echo "${LDAP_EXTRA_SCHEMAS:-cosine,inetorgperson,nis}" | tr ',;' '  ')
        else
            schemas=
        fi
        for s in $schemas; do
            [ -f "/etc/ldap/schema/$s.ldif" ] || fail "LDAP_EXTRA_SCHEMAS: no schema '$s' in /etc/ldap/schema"
            printf 'include: file:///etc/ldap/schema/%s.ldif\n\n' "$s"
        done
        printf 'dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\n'
        printf 'objectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n'
        if [ -n "${LDAP_PASSWORD_HASH:-}" ]; then printf 'olcPasswordHash: %s\n' "$LDAP_PASSWORD_HASH"; fi
        # cn=config: root over ldapi:/// (peer credentials) always; an admin by password if asked
        printf '\ndn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {0}config\n'
        printf 'olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * break\n'
        if [ "$CONFIG_ADMIN" = yes ]; then
            printf 'olcRootDN: %s\nolcRootPW: %s\n' "$CONFIG_DN" "$(hash_pw "$CONFIG_PW")"
        fi
        # the database: no fsync (a test server; a crash loses what the test wrote anyway)
        printf '\ndn: olcDatabase={1}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n'
        printf 'olcDatabase: {1}mdb\nolcDbDirectory: %s\nolcSuffix: %s\n' "$DATA" "$ROOT"
        printf 'olcRootDN: %s\nolcRootPW: %s\n' "$ADMIN_DN" "$(hash_pw "$ADMIN_PW")"
        printf 'olcDbMaxSize: 1073741824\nolcDbNoSync: TRUE\nolcDbIndex: objectClass eq,pres\n'
        if [ -n "$schemas" ] || [ "$osixia" = yes ]; then
            printf 'olcDbIndex: ou,cn,mail,sn,givenName eq,pres,sub\nolcDbIndex: uid,member,memberUid eq\n'
        fi
        if [ "$osixia" = yes ]; then
            ro=  # osixia's read-only user reads all but the passwords
            if [ "$(yes_no LDAP_READONLY_USER "${LDAP_READONLY_USER:-false}")" = yes ]; then
                ro=" by dn=\"cn=${LDAP_READONLY_USER_USERNAME:-readonly},$ROOT\" read"
            fi
            printf 'olcAccess: {0}to attrs=userPassword,shadowLastChange by self write by dn="%s" write by anonymous auth by * none\n' "$ADMIN_DN"
            printf 'olcAccess: {1}to * by self read by dn="%s" write%s by * none\n' "$ADMIN_DN" "$ro"
            printf '\ndn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n'
            printf 'objectClass: olcMemberOf\nolcOverlay: {0}memberof\nolcMemberOfDangling: ignore\nolcMemberOfRefInt: TRUE\n'
            printf 'olcMemberOfGroupOC: groupOfUniqueNames\nolcMemberOfMemberAD: uniqueMember\nolcMemberOfMemberOfAD: memberOf\n'
            printf '\ndn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n'
            printf 'objectClass: olcRefintConfig\nolcOverlay: {1}refint\nolcRefintAttribute: owner\n'
            printf 'olcRefintAttribute: manager\nolcRefintAttribute: uniqueMember\nolcRefintAttribute: member\nolcRefintAttribute: memberOf\n'
        fi
    } > "$tmp/config.ldif"
    slapadd -q -n0 -F "$CONF" -l "$tmp/config.ldif" >/dev/null || fail "slapadd of the configuration failed"
    # custom schemas (bitnami): LDIFs of cn=schema,cn=config entries
    if [ "$osixia" = no ]; then
        f="${LDAP_CUSTOM_SCHEMA_FILE:-/schema/custom.ldif}"
        if [ -f "$f" ]; then
            slapadd -q -n0 -F "$CONF" -l "$f" >/dev/null || fail "schema $f: slapadd refused it"
        fi
        d="${LDAP_CUSTOM_SCHEMA_DIR:-/schemas}"
        for f in $(find "$d" -maxdepth 1 \( -type f -o -type l \) -iname '*.ldif' 2>/dev/null | sort); do
            slapadd -q -n0 -F "$CONF" -l "$f" >/dev/null || fail "schema $f: slapadd refused it"
        done
    else
        for f in $(find "$OSIXIA_SCHEMA" -maxdepth 1 \( -type f -o -type l \) -iname '*.ldif' 2>/dev/null | sort); do
            slapadd -q -n0 -F "$CONF" -l "$f" >/dev/null || fail "schema $f: slapadd refused it"
        done
    fi
    rm -rf "$tmp"
}

default_tree() {  # bitnami's default tree
    user_ou="${LDAP_USER_OU:-${LDAP_USER_DC:-users}}"
    group_ou="${LDAP_GROUP_OU:-${LDAP_USER_DC:-groups}}"
    users=$(echo "${LDAP_USERS:-user01,user02}" | tr ',;' '  ')
    passwords=$(echo "${LDAP_PASSWORDS:-bitnami1,bitnami2}" | tr ',;' '  ')
    set -- $passwords
    n=0; for u in $users; do n=$((n + 1)); done
    [ "$n" -eq "$#" ] || fail "LDAP_USERS has $n users and LDAP_PASSWORDS $# passwords: give one password per user"
    o=example
    case "$(first_attr "$ROOT")" in o) o=$(first_value "$ROOT") ;; esac
    base_entry "$o"
    printf 'dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n' "$user_ou" "$ROOT" "$user_ou"
    if [ "$group_ou" != "$user_ou" ]; then
        printf 'dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n' "$group_ou" "$ROOT" "$group_ou"
    fi
    i=0
    for u in $users; do
        i=$((i + 1)); pw=$1; shift
        printf 'dn: cn=%s,ou=%s,%s\ncn: User%s\nsn: Bar%s\nobjectClass: inetOrgPerson\n' "$u" "$user_ou" "$ROOT" "$i" "$i"
        printf 'objectClass: posixAccount\nobjectClass: shadowAccount\nuserPassword:: %s\nuid: %s\n' "$(b64 "$pw")" "$u"
        printf 'uidNumber: %s\ngidNumber: %s\nhomeDirectory: /home/%s\n\n' "$((999 + i))" "$((999 + i))" "$u"
    done
    printf 'dn: cn=%s,ou=%s,%s\ncn: %s\nobjectClass: groupOfNames\n' "${LDAP_GROUP:-readers}" "$group_ou" "$ROOT" "${LDAP_GROUP:-readers}"
    for u in $users; do printf 'member: cn=%s,ou=%s,%s\n' "$u" "$user_ou" "$ROOT"; done
    echo
}

osixia_tree() {  # the base entry (Debian's slapd package makes it so), and the read-only user
    base_entry "$ORG"
    if [ "$(yes_no LDAP_READONLY_USER "${LDAP_READONLY_USER:-false}")" = yes ]; then
        printf 'dn: cn=%s,%s\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\ncn: %s\n' \
            "${LDAP_READONLY_USER_USERNAME:-readonly}" "$ROOT" "${LDAP_READONLY_USER_USERNAME:-readonly}"
        printf 'userPassword: %s\ndescription: LDAP read only user\n\n' "$(hash_pw "${LDAP_READONLY_USER_PASSWORD:-readonly}")"
    fi
}

ONLINE_PID=
online() {  # a slapd on ldapi:/// only, for LDIFs that modify
    [ -z "$ONLINE_PID" ] || return 0
    if [ -O / ]; then
        chown -R openldap:openldap "$CONF" "$DATA" "$RUN"
        set -- -u openldap -g openldap
    fi
    slapd -h ldapi:/// -F "$CONF" "$@" || fail "slapd did not start for the setup"
    i=0
    until ldapsearch -Q -Y EXTERNAL -H ldapi:/// -b cn=config -s base dn >/dev/null 2>&1; do
        i=$((i + 1)); [ "$i" -lt 500 ] || fail "slapd did not answer on ldapi:/// for the setup"
        sleep 0.01
    done
    ONLINE_PID=$(cat "$RUN/slapd.pid")
}
offline() {
    [ -n "$ONLINE_PID" ] || return 0
    kill "$ONLINE_PID"
    while kill -0 "$ONLINE_PID" 2>/dev/null; do sleep 0.01; done
    ONLINE_PID=
}

load_ldifs() {  # load_ldifs DIR: its *.ldif in order, adds by slapadd, changetype records online
    for f in $(find "$1" -maxdepth 1 \( -type f -o -type l \) -iname '*.ldif' 2>/dev/null | sort); do
        src="$f"
        if [ "$osixia" = yes ]; then
            src=$(mktemp); sed "s|{{ LDAP_BASE_DN }}|$ROOT|g; s|{{ LDAP_BACKEND }}|mdb|g; s|{{ LDAP_DOMAIN }}|${DOMAIN:-}|g" "$f" > "$src"
        fi
        if grep -qi '^changetype:' "$src"; then
            online
            ldapmodify -a -Q -Y EXTERNAL -H ldapi:/// -f "$src" >/dev/null 2>"$RUN/err" || \
                ldapmodify -a -x -H ldapi:/// -D "$ADMIN_DN" -w "$ADMIN_PW" -f "$src" >/dev/null 2>"$RUN/err" || \
                fail "LDIF $f: $(cat "$RUN/err")"
        else
            offline
            slapadd -F "$CONF" -b "$ROOT" -l "$src" >/dev/null 2>"$RUN/err" || fail "LDIF $f: $(cat "$RUN/err")"
        fi
        [ "$src" = "$f" ] || rm -f "$src"
    done
    offline
}

mkdir -p "$RUN" "$CONF" "$DATA"
if [ -z "$(ls -A "$CONF")" ]; then
    [ -z "$(ls -A "$DATA")" ] || fail "$DATA holds a database but $CONF no configuration"
    make_config
    tree=$(mktemp)
    if [ "$osixia" = yes ]; then
        osixia_tree > "$tree"
        slapadd -F "$CONF" -b "$ROOT" -l "$tree" >/dev/null || fail "slapadd of the base entry failed"
        load_ldifs "$OSIXIA_LDIF"
    else
        ldifs="${LDAP_CUSTOM_LDIF_DIR:-/ldifs}"
        if [ -d "$ldifs" ] && [ -n "$(find "$ldifs" -maxdepth 1 -iname '*.ldif' 2>/dev/null)" ]; then
            log "loading the LDIFs of $ldifs (LDAP_USERS, LDAP_PASSWORDS, LDAP_GROUP not used)"
            load_ldifs "$ldifs"
        elif [ "$(yes_no LDAP_SKIP_DEFAULT_TREE "${LDAP_SKIP_DEFAULT_TREE:-no}")" = no ]; then
            default_tree > "$tree"
            slapadd -F "$CONF" -b "$ROOT" -l "$tree" >/dev/null 2>"$RUN/err" || fail "the default tree: $(cat "$RUN/err")"
        fi
    fi
    rm -f "$tree" "$RUN/err"
    for f in /docker-entrypoint-initdb.d/*.sh; do
        [ -f "$f" ] || continue
        log "running $f"
        if [ -x "$f" ]; then "$f"; else . "$f"; fi
    done
fi
if [ -O / ]; then chown -R openldap:openldap "$CONF" "$DATA" "$RUN"; fi

urls="ldapi:/// ldap://:$PORT/"
if [ -O / ] && [ "$PORT" != 389 ]; then urls="$urls ldap://:389/"; fi  # root: osixia's port too
log "** Starting slapd ** ($urls)"
if [ -O / ]; then
    exec slapd -h "$urls" -F "$CONF" -u openldap -g openldap -d "$LOGLEVEL" "$@"
fi
exec slapd -h "$urls" -F "$CONF" -d "$LOGLEVEL" "$@"
