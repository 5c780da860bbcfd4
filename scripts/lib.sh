# shellcheck shell=bash
# scripts/lib.sh — small shell helpers shared by scripts/pg.sh, scripts/farm.sh,
# scripts/up, scripts/test and bench/run. Source it; it defines functions only.

# sb_say MSG… — a progress line on stderr.
sb_say () { printf '%s\n' "$*" >&2; }

# sb_die MSG… — an error line on stderr, then exit 1.
sb_die () { printf 'error: %s\n' "$*" >&2; exit 1; }

# sb_port_busy PORT — true when something accepts TCP connections on 127.0.0.1:PORT.
sb_port_busy () {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# sb_free_port — prints a TCP port on 127.0.0.1 that nothing listens on.
# Picked at random below the kernel's ephemeral range (32768+) so outgoing
# connections do not take it in the meantime. Two scripts running at once
# (ctest -j) could pick the same port before either listens on it, so each
# pick is reserved with an atomic mkdir under $SB_PORT_RESERVE_DIR (default
# /tmp/sb-ports-$UID); reservations older than 30 minutes are reclaimed.
sb_free_port () {
    local port i dir=${SB_PORT_RESERVE_DIR:-/tmp/sb-ports-$UID}
    mkdir -p "$dir" 2>/dev/null
    find "$dir" -mindepth 1 -maxdepth 1 -mmin +30 -exec rmdir {} + 2>/dev/null
    for ((i = 0; i < 200; i++)); do
        port=$(( (RANDOM * 32768 + RANDOM) % 12000 + 20000 ))
        if sb_port_busy "$port"; then continue; fi
        if [[ -d "$dir" ]] && ! mkdir "$dir/$port" 2>/dev/null; then continue; fi
        echo "$port"
        return 0
    done
    return 1
}

# sb_wait_port PORT TIMEOUT_S [PID] — waits until 127.0.0.1:PORT accepts a
# connection; fails at the deadline, or at once when PID (if given) exits.
sb_wait_port () {
    local port=$1 deadline=$((SECONDS + $2)) pid=${3:-}
    while ((SECONDS < deadline)); do
        if sb_port_busy "$port"; then return 0; fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# sb_wait_log FILE PATTERN TIMEOUT_S [PID] — waits until FILE holds a line
# matching the extended regex PATTERN (e.g. the `"event":"ready"` log line).
sb_wait_log () {
    local file=$1 pattern=$2 deadline=$((SECONDS + $3)) pid=${4:-}
    while ((SECONDS < deadline)); do
        if [[ -f "$file" ]] && grep -Eq "$pattern" "$file"; then return 0; fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# sb_stop_pid PID [TIMEOUT_S] — SIGTERM, wait up to TIMEOUT_S (default 10),
# then SIGKILL. Returns once the process is gone, with its exit status when
# it is a child of this shell (128+N when killed by signal N), also when it
# had already exited; 127 when it is not our child.
sb_stop_pid () {
    local pid=$1 deadline=$((SECONDS + ${2:-10})) rc=0
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return $?; }
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        sb_say "pid $pid ignored SIGTERM for ${2:-10} s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return $rc
}
