#!/bin/sh
# pytest-pods: the official nginx image's entrypoint contract, on Debian's nginx 1.22 (issue 17).
# Written for this recipe from the documented behaviour of the official image
# (hub.docker.com/_/nginx, "Using environment variables in nginx configuration"), not copied.
#
# For `nginx ...` or `nginx-debug ...` (anything else runs as given):
# - /docker-entrypoint.d/: executable *.sh files run and *.envsh files are sourced, in order;
# - every $NGINX_ENVSUBST_TEMPLATE_DIR (/etc/nginx/templates) file ending in
#   $NGINX_ENVSUBST_TEMPLATE_SUFFIX (.template) is rendered with envsubst into
#   $NGINX_ENVSUBST_OUTPUT_DIR (/etc/nginx/conf.d), keeping its subdirectories; only the
#   variables that are set are substituted (nginx's own $uri etc. stay), limited to names
#   matching $NGINX_ENVSUBST_FILTER when that is set;
# - NGINX_ENTRYPOINT_QUIET_LOGS=1 silences these lines.
# pytest-pods' own: PODS_NGINX_PROXY_PASS=URL makes the default server a reverse proxy to URL.
set -eu

say() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$0: $*"; }

if [ "${1:-}" != nginx ] && [ "${1:-}" != nginx-debug ]; then
    exec "$@"
fi

if find /docker-entrypoint.d -mindepth 1 -maxdepth 1 2>/dev/null | read -r _; then
    say "/docker-entrypoint.d/ is not empty, will attempt to perform configuration"
    for f in $(find /docker-entrypoint.d -follow -type f -print | sort -V); do
        case "$f" in
            *.envsh) if [ -x "$f" ]; then say "Sourcing $f"; . "$f"; else say "Ignoring $f, not executable"; fi ;;
            *.sh) if [ -x "$f" ]; then say "Launching $f"; "$f"; else say "Ignoring $f, not executable"; fi ;;
            *) say "Ignoring $f" ;;
        esac
    done
fi

template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
filter=${NGINX_ENVSUBST_FILTER:-}
if [ -d "$template_dir" ]; then
    if [ ! -w "$output_dir" ]; then
        say "ERROR: $template_dir exists, but $output_dir is not writable"
    else
        defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | grep -E -- "${filter:-.}" \
                  | sed 's/.*/${&}/' | tr '\n' ' ')
        find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
            relative=${template#"$template_dir/"}
            out="$output_dir/${relative%"$suffix"}"
            mkdir -p "$(dirname "$out")"
            say "Running envsubst on $template to $out"
            envsubst "$defined" < "$template" > "$out"
        done
    fi
fi

if [ -n "${PODS_NGINX_PROXY_PASS:-}" ]; then
    say "proxying / to $PODS_NGINX_PROXY_PASS"
    cat > "$output_dir/default.conf" <<CONF
server {
    listen       80;
    server_name  localhost;

    location / {
        proxy_pass $PODS_NGINX_PROXY_PASS;
        proxy_set_header Host \$http_host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
    }
}
CONF
fi

say "Configuration complete; ready for start up"
exec "$@"
