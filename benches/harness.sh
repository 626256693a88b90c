# What the shell benchmarks (benches/http.sh, benches/redis.sh) share, sourced by them:
# the two CPUs (the server's, the load generator's), whether perf can count system calls,
# a work directory, and stopping the one server running, also on exit.
#
# Sets: server_cpu, load_cpu, clk_tck (clock ticks per second of /proc/PID/stat),
# perf_ok (true or false), work (a directory removed on exit), server_pid (empty: set it
# when starting a server); defines stop_server, and median and medians_table over the
# measurements in `results`.

# The first two CPUs this process may use.
cpus=()
for part in $(sed -n 's/^Cpus_allowed_list:\s*//p' /proc/self/status | tr ',' ' '); do
  if [[ $part == *-* ]]; then cpus+=($(seq "${part%-*}" "${part#*-}")); else cpus+=("$part"); fi
done
if [ ${#cpus[@]} -lt 2 ]; then
  # One CPU: both share it, and the figures say less (the report names the CPUs).
  echo "$(basename "$0"): only CPU ${cpus[*]}: the server and the load generator share it" >&2
  cpus+=("${cpus[0]}")
fi
server_cpu=${cpus[0]}
load_cpu=${cpus[1]}
clk_tck=$(getconf CLK_TCK)
perf_ok=false
# The per-call counts need the syscalls:sys_enter_* tracepoints as well as the total.
if perf stat -x, -e raw_syscalls:sys_enter -e 'syscalls:sys_enter_*' true >/dev/null 2>&1; then
  perf_ok=true
fi

work=$(mktemp -d)
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT

# Measurements go into the array `results`, a line each: "RUN LOAD SERVER REQUESTS/S
# CPU_US SYSCALLS USER_US" (SYSCALLS may be n/a).

# The median of column $3 (requests/s=4, cpu=5, syscalls=6, user cpu=7) over the runs of
# load $1, server $2.
median() {
  printf '%s\n' "${results[@]}" | awk -v l="$1" -v n="$2" -v c="$3" '$2 == l && $3 == n { print $c }' |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (v[1] == "n/a") print "n/a";
      else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The Markdown table of medians: column title $1 for the loads $3 (each shown after the
# prefix $2), the servers $4.
medians_table() {
  local title=$1 prefix=$2 loads=$3 servers=$4 load name
  echo "| $title | server | requests/s | server CPU per request | of it user space | system calls per request |"
  echo "|---|---|---:|---:|---:|---:|"
  for load in $loads; do
    for name in $servers; do
      printf '| %s%s | %s | %.0f | %s µs | %s µs | %s |\n' "$prefix" "$load" "$name" "$(median "$load" "$name" 4)" \
        "$(median "$load" "$name" 5)" "$(median "$load" "$name" 7)" "$(median "$load" "$name" 6)"
    done
  done
}
