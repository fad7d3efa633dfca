#!/usr/bin/env bash
# The test dependencies of socialops: a PostgreSQL server on 127.0.0.1:5432 (trust auth for
# the `postgres` role) and a tansu Kafka-protocol broker on a loopback port.
#
# Run it by hand to get the same database and broker that CI uses:
#
#   scripts/dev-deps.sh          # ensure both are up, print the exports for the tests
#   scripts/dev-deps.sh env      # print the exports for what is already running
#   scripts/dev-deps.sh stop     # stop the broker this script started
#
# `.ci/run` sources this file and calls the functions below; sourcing only defines them.
#
# Settings (environment):
#   SOCIALOPS_TANSU_PORT      preferred broker port (default 19092)
#   SOCIALOPS_TANSU_STORAGE   tansu storage engine URL (default memory://tansu/)
#   SOCIALOPS_PG_URL          database URL to check (default postgres://postgres@127.0.0.1:5432/postgres)

SOCIALOPS_PG_URL="${SOCIALOPS_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SOCIALOPS_TANSU_PORT="${SOCIALOPS_TANSU_PORT:-19092}"
SOCIALOPS_TANSU_STORAGE="${SOCIALOPS_TANSU_STORAGE:-memory://tansu/}"
# Set by socialops_deps_start_tansu: the address in use, and the PID when this shell started it.
SOCIALOPS_TANSU_ADDR="${SOCIALOPS_TANSU_ADDR:-}"
SOCIALOPS_TANSU_PID="${SOCIALOPS_TANSU_PID:-}"
SOCIALOPS_APT_UPDATED="${SOCIALOPS_APT_UPDATED:-0}"

socialops_deps_log() {
    printf '[deps] %s\n' "$*" >&2
}

socialops_deps_die() {
    printf '[deps] error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Packages and PATH
# ---------------------------------------------------------------------------------------------

socialops_deps_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        socialops_deps_die "need root to run: $*"
    fi
}

# apt-get update at most once per run, then install the given packages.
socialops_deps_apt_install() {
    if [[ "$SOCIALOPS_APT_UPDATED" != 1 ]]; then
        socialops_deps_log "apt-get update"
        socialops_deps_as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get -o DPkg::Lock::Timeout=300 update -q
        SOCIALOPS_APT_UPDATED=1
    fi
    socialops_deps_log "apt-get install -y $*"
    socialops_deps_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
}

# Puts cargo (and whatever `cargo install` put there) on PATH.
socialops_deps_cargo_path() {
    local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
    if [[ -f "$cargo_home/env" ]]; then
        # shellcheck disable=SC1091
        source "$cargo_home/env"
    fi
    case ":$PATH:" in
        *":$cargo_home/bin:"*) ;;
        *) PATH="$cargo_home/bin:$PATH" ;;
    esac
    export PATH
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

socialops_deps_pg_ready() {
    pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1
}

socialops_deps_pg_version_dir() {
    [[ -d /etc/postgresql ]] || return 1
    local version
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
    [[ -n "$version" ]] || return 1
    printf '%s\n' "$version"
}

# Local TCP connections from loopback use trust, and the server listens on 127.0.0.1.
# Only for a cluster this script installed (a CI machine); an existing cluster is left as it is.
socialops_deps_pg_configure_trust() {
    local version=$1
    local dir="/etc/postgresql/$version/main"
    local hba="$dir/pg_hba.conf"
    [[ -f "$hba" ]] || socialops_deps_die "no $hba"
    if ! grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        socialops_deps_log "pg_hba.conf: trust for 127.0.0.1/32 and ::1/128"
        local tmp
        tmp=$(mktemp)
        {
            printf 'host all all 127.0.0.1/32 trust\n'
            printf 'host all all ::1/128 trust\n'
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba"
        rm -f "$tmp"
    fi
    if [[ -d "$dir/conf.d" ]]; then
        printf "listen_addresses = '127.0.0.1'\n" >"$dir/conf.d/socialops-ci.conf"
    elif ! grep -q "^listen_addresses = '127.0.0.1'" "$dir/postgresql.conf"; then
        printf "listen_addresses = '127.0.0.1'\n" >>"$dir/postgresql.conf"
    fi
}

socialops_deps_pg_start_cluster() {
    local version=$1
    if pg_ctlcluster "$version" main status >/dev/null 2>&1; then
        socialops_deps_log "restarting PostgreSQL $version/main"
        pg_ctlcluster --skip-systemctl-redirect "$version" main restart
    else
        socialops_deps_log "starting PostgreSQL $version/main"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
}

socialops_deps_ensure_postgres() {
    local version
    if socialops_deps_pg_ready; then
        socialops_deps_log "PostgreSQL is accepting connections on 127.0.0.1:5432"
    elif command -v pg_lsclusters >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1 \
        && version=$(socialops_deps_pg_version_dir); then
        socialops_deps_log "starting the existing PostgreSQL cluster $version/main"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start \
            || socialops_deps_log "pg_ctlcluster start returned non-zero (already running?)"
    else
        socialops_deps_apt_install postgresql
        version=$(socialops_deps_pg_version_dir) \
            || socialops_deps_die "postgresql installed but no cluster under /etc/postgresql"
        socialops_deps_pg_configure_trust "$version"
        socialops_deps_pg_start_cluster "$version"
    fi

    local waited=0
    until socialops_deps_pg_ready; do
        if ((waited >= 60)); then
            socialops_deps_die "PostgreSQL not ready on 127.0.0.1:5432 after 60 s"
        fi
        sleep 1
        waited=$((waited + 1))
    done

    local server_version
    if command -v psql >/dev/null 2>&1; then
        if ! server_version=$(psql "$SOCIALOPS_PG_URL" -XAtqc 'SHOW server_version' 2>&1); then
            socialops_deps_die "cannot connect as $SOCIALOPS_PG_URL: $server_version"
        fi
        socialops_deps_log "PostgreSQL server version: $server_version"
    else
        socialops_deps_log "PostgreSQL is ready (psql not installed; version not shown)"
    fi
}

# ---------------------------------------------------------------------------------------------
# tansu (Kafka-protocol broker)
# ---------------------------------------------------------------------------------------------

socialops_deps_tansu_bin() {
    local cargo_home="${CARGO_HOME:-$HOME/.cargo}"
    if command -v tansu >/dev/null 2>&1; then
        command -v tansu
    elif [[ -x "$cargo_home/bin/tansu" ]]; then
        printf '%s\n' "$cargo_home/bin/tansu"
    else
        return 1
    fi
}

# Installs tansu with cargo unless it is installed or being installed (then waits for that).
socialops_deps_ensure_tansu() {
    local bin
    socialops_deps_cargo_path
    local waited=0
    # The bracket keeps the pattern from matching a shell whose command line contains it.
    while pgrep -f '[c]argo install --locked tansu' >/dev/null 2>&1; do
        if ((waited % 60 == 0)); then
            socialops_deps_log "another 'cargo install --locked tansu' is running; waiting for it (${waited} s)"
        fi
        if ((waited >= 3600)); then
            socialops_deps_die "gave up waiting for the running tansu install after 60 min"
        fi
        sleep 5
        waited=$((waited + 5))
    done
    if bin=$(socialops_deps_tansu_bin); then
        socialops_deps_log "tansu: $bin"
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || socialops_deps_die "cargo is needed to install tansu"
    # dynostore brings the memory:// storage the scripts use; add libsql for sqlite:// storage.
    socialops_deps_log "installing tansu (15 to 40 minutes on 2 cores)"
    cargo install --locked tansu --features dynostore
    bin=$(socialops_deps_tansu_bin) || socialops_deps_die "tansu is not on PATH after cargo install"
    socialops_deps_log "tansu: $bin"
}

socialops_deps_port_open() {
    local port=$1
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" >/dev/null 2>&1
}

# Succeeds when a Kafka broker answers an ApiVersions request on the port.
socialops_deps_port_speaks_kafka() {
    local port=$1
    command -v python3 >/dev/null 2>&1 || return 1
    python3 - "$port" <<'PY' >/dev/null 2>&1
import socket
import struct
import sys

port = int(sys.argv[1])
client_id = b"socialops-deps"
correlation_id = 0x50C1A1
# ApiVersions (api key 18), version 0: every Kafka broker answers it.
body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
try:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.settimeout(3)
        sock.sendall(struct.pack(">i", len(body)) + body)
        head = b""
        while len(head) < 8:
            chunk = sock.recv(8 - len(head))
            if not chunk:
                sys.exit(1)
            head += chunk
        size, got = struct.unpack(">ii", head)
        sys.exit(0 if got == correlation_id and size >= 6 else 1)
except OSError:
    sys.exit(1)
PY
}

socialops_deps_free_port() {
    local port
    for port in $(seq "$1" $(($1 + 100))); do
        if ! socialops_deps_port_open "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    return 1
}

# Starts tansu on a free loopback port, logging to <state-dir>/tansu.log, and waits until it
# accepts connections. Sets SOCIALOPS_TANSU_ADDR; sets SOCIALOPS_TANSU_PID when it started one.
#   socialops_deps_start_tansu <state-dir> [attached|detached] [reuse|fresh]
# reuse: a Kafka broker already answering on the preferred port is used and left alone.
# fresh: always start a new broker, on the next free port if the preferred one is taken.
socialops_deps_start_tansu() {
    local state_dir=$1 mode=${2:-attached} policy=${3:-reuse}
    local preferred=$SOCIALOPS_TANSU_PORT
    local bin port log deadline _

    bin=$(socialops_deps_tansu_bin) || socialops_deps_die "tansu is not installed"
    mkdir -p "$state_dir"
    log="$state_dir/tansu.log"

    if socialops_deps_port_open "$preferred"; then
        if socialops_deps_port_speaks_kafka "$preferred"; then
            if [[ "$policy" == reuse ]]; then
                socialops_deps_log "a Kafka-protocol broker already answers on 127.0.0.1:$preferred; using it (not stopped by this script)"
                SOCIALOPS_TANSU_ADDR="127.0.0.1:$preferred"
                SOCIALOPS_TANSU_PID=""
                return 0
            fi
            socialops_deps_log "a Kafka-protocol broker already answers on $preferred; starting a fresh one beside it"
        else
            socialops_deps_log "port $preferred is taken by something that does not speak Kafka"
        fi
    fi

    for _ in 1 2 3; do
        port=$(socialops_deps_free_port "$preferred") || socialops_deps_die "no free port from $preferred"
        socialops_deps_log "starting tansu on 127.0.0.1:$port (storage $SOCIALOPS_TANSU_STORAGE, log $log)"
        local args=(broker
            --listener-url "tcp://127.0.0.1:$port"
            --advertised-listener-url "tcp://127.0.0.1:$port"
            --storage-engine "$SOCIALOPS_TANSU_STORAGE")
        if [[ "$mode" == detached ]]; then
            NO_COLOR=1 nohup setsid "$bin" "${args[@]}" >"$log" 2>&1 </dev/null &
        else
            NO_COLOR=1 "$bin" "${args[@]}" >"$log" 2>&1 </dev/null &
        fi
        SOCIALOPS_TANSU_PID=$!

        deadline=$((SECONDS + 60))
        while ! socialops_deps_port_open "$port"; do
            if ! kill -0 "$SOCIALOPS_TANSU_PID" 2>/dev/null; then
                SOCIALOPS_TANSU_PID=""
                socialops_deps_log "tansu exited during start-up; last log lines:"
                tail -n 20 "$log" >&2 || true
                if grep -qiE 'AddrInUse|address already in use' "$log"; then
                    # Another process took the port after the check; try the next one.
                    preferred=$((port + 1))
                    continue 2
                fi
                socialops_deps_die "tansu failed to start; see $log"
            fi
            if ((SECONDS >= deadline)); then
                socialops_deps_log "tansu did not accept connections on $port within 60 s; last log lines:"
                tail -n 20 "$log" >&2 || true
                socialops_deps_stop_tansu
                socialops_deps_die "tansu did not start"
            fi
            sleep 0.5
        done
        if ! kill -0 "$SOCIALOPS_TANSU_PID" 2>/dev/null; then
            # Something else took the port between the check and the start.
            SOCIALOPS_TANSU_PID=""
            preferred=$((port + 1))
            continue
        fi
        SOCIALOPS_TANSU_ADDR="127.0.0.1:$port"
        if command -v python3 >/dev/null 2>&1 && ! socialops_deps_port_speaks_kafka "$port"; then
            socialops_deps_log "warning: tansu accepts connections on $port but did not answer ApiVersions yet"
        fi
        socialops_deps_log "tansu (pid $SOCIALOPS_TANSU_PID) is accepting connections on $SOCIALOPS_TANSU_ADDR"
        return 0
    done
    socialops_deps_die "tansu failed to start after 3 attempts; see $log"
}

# Stops the broker started by socialops_deps_start_tansu in this shell, if any.
socialops_deps_stop_tansu() {
    local pid=${SOCIALOPS_TANSU_PID:-}
    [[ -n "$pid" ]] || return 0
    SOCIALOPS_TANSU_PID=""
    kill -0 "$pid" 2>/dev/null || return 0
    socialops_deps_log "stopping tansu (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local _
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    socialops_deps_log "tansu (pid $pid) did not stop after 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

socialops_deps_print_env() {
    printf 'export SOCIALOPS_TEST_KAFKA=%s\n' "$SOCIALOPS_TANSU_ADDR"
    printf 'export SOCIALOPS_TEST_DATABASE_URL=%s\n' "$SOCIALOPS_PG_URL"
}

# ---------------------------------------------------------------------------------------------
# Command line (only when run, not when sourced)
# ---------------------------------------------------------------------------------------------

socialops_deps_main() {
    local root state_dir pid_file
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    state_dir="$root/target/dev"
    pid_file="$state_dir/tansu.pid"

    local running_pid="" running_addr=""
    if [[ -f "$pid_file" ]]; then
        read -r running_pid running_addr <"$pid_file" || true
        if [[ -z "$running_pid" ]] || ! kill -0 "$running_pid" 2>/dev/null; then
            running_pid=""
            running_addr=""
        fi
    fi

    case "${1:-up}" in
        up)
            socialops_deps_ensure_postgres
            socialops_deps_ensure_tansu
            if [[ -n "$running_pid" ]] && socialops_deps_port_open "${running_addr##*:}"; then
                socialops_deps_log "tansu started earlier by this script is running (pid $running_pid, $running_addr)"
                SOCIALOPS_TANSU_ADDR=$running_addr
            else
                socialops_deps_start_tansu "$state_dir" detached reuse
                if [[ -n "$SOCIALOPS_TANSU_PID" ]]; then
                    printf '%s %s\n' "$SOCIALOPS_TANSU_PID" "$SOCIALOPS_TANSU_ADDR" >"$pid_file"
                fi
            fi
            socialops_deps_log "stop the broker with: scripts/dev-deps.sh stop"
            socialops_deps_print_env
            ;;
        env)
            if [[ -n "$running_addr" ]]; then
                SOCIALOPS_TANSU_ADDR=$running_addr
            elif socialops_deps_port_speaks_kafka "$SOCIALOPS_TANSU_PORT"; then
                SOCIALOPS_TANSU_ADDR="127.0.0.1:$SOCIALOPS_TANSU_PORT"
            else
                socialops_deps_die "no broker running; run scripts/dev-deps.sh first"
            fi
            socialops_deps_print_env
            ;;
        stop)
            if [[ -n "$running_pid" ]]; then
                SOCIALOPS_TANSU_PID=$running_pid
                socialops_deps_stop_tansu
            else
                socialops_deps_log "no tansu started by this script is running"
            fi
            rm -f "$pid_file"
            ;;
        -h | --help | help)
            sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            ;;
        *)
            socialops_deps_die "unknown command '$1' (up, env, stop)"
            ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    socialops_deps_main "$@"
fi
