# bench/cpu.sh — sourced by the benchmarks: CPU time per farm process from
# /proc (all threads of a process), so a run can report CPU per call.
#
#   snap=$(bench_cpu_snapshot)        "name ticks" per process of SB_FARM_DIR/pids
#   … load …
#   bench_cpu_report "$snap" CALLS    prints "name µs/call" lines

# One "name ticks" line per live farm process (user + system clock ticks).
bench_cpu_snapshot () {
    local name pid
    while read -r name pid; do
        [[ -r /proc/$pid/stat ]] || continue
        # Fields after the ")" that ends the command name: utime is the
        # 12th, stime the 13th.
        awk -v n="$name" '{ sub(/^.*\) /, ""); print n, $12 + $13 }' "/proc/$pid/stat"
    done <"$SB_FARM_DIR/pids"
}

# bench_cpu_report BEFORE CALLS: CPU µs per call of each process since BEFORE.
bench_cpu_report () {
    local before=$1 calls=$2
    local hz
    hz=$(getconf CLK_TCK)
    join <(sort <<<"$before") <(bench_cpu_snapshot | sort) |
        awk -v calls="$calls" -v hz="$hz" '
            calls > 0 { us = ($3 - $2) * 1e6 / hz / calls; if (us >= 0.5) printf "  %-16s %7.1f µs\n", $1, us }'
}

# The whole machine's busy clock ticks so far, all CPUs (/proc/stat: user,
# nice, system, irq, softirq; not idle, iowait or time stolen by the host):
# the CPU a run costs, load generator and every server included.
bench_machine_ticks () {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat
}
