#!/usr/bin/env bash
# The Redis benchmark: the kv_server example against redis-server itself, both loaded by
# redis-benchmark with the same commands.
#
#   benches/redis.sh [--runs K] [-n REQUESTS] [--clients N] [--idle N] [--quick]
#
# For each server and pipeline depth (-P 1: one request at a time per connection; -P 16),
# one redis-benchmark run of `-t set,get,incr -c N -r 100000 -n REQUESTS` (after a warm-up
# of a tenth of that) measures requests/s (all three tests' requests over their time) and
# the server's CPU time per request (utime + stime of the whole process from /proc/PID/stat,
# over exactly that run); a second run of the same size under `perf stat -p PID` counts the
# server's system calls (the raw_syscalls tracepoint), kept apart so that counting does not
# slow the first; the same pass counts the busiest calls one by one (the last run's are
# printed). Then, on a freshly started server, --idle connections that each sent one
# PING (benches/redis/idle_clients.py) and then stay idle for 3 s (longer than Redis's 2 s
# before it shrinks an idle client's query buffer): the growth of VmRSS, per connection.
# Each server is pinned to one CPU and redis-benchmark (single-threaded) to another;
# --runs repeats it all, the servers in alternating order. Prints Markdown tables: medians,
# and the kv/redis ratios of each run (median, min-max). --quick is a smoke run for CI
# (1 run, 20,000 requests, 100 idle clients): it fails on any error, the figures say little.
# See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
requests=200000
clients=50
idle=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    -n|--requests) requests=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --quick) runs=1; requests=20000; idle=100; shift ;;
    -h|--help) sed -n '2,22s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "redis.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
for tool in redis-server redis-cli redis-benchmark taskset python3; do
  command -v "$tool" >/dev/null ||
    { echo "redis.sh: $tool is missing (apt-get install redis-server redis-tools util-linux python3)" >&2; exit 1; }
done

cargo build --release --example kv_server >&2
kv_bin=${CARGO_TARGET_DIR:-target}/release/examples/kv_server
depths="1 16"
keyspace=100000

# The CPUs (server, load generator), perf, $work, stop_server and the medians.
source benches/harness.sh
# The calls a server of this kind makes per request, counted one by one where perf can.
calls_by_name=()
for call in read write writev recvfrom sendto epoll_wait epoll_pwait epoll_ctl accept4; do
  if $perf_ok && perf stat -x, -e "syscalls:sys_enter_$call" true >/dev/null 2>&1; then
    calls_by_name+=("$call")
  fi
done
perf_events=raw_syscalls:sys_enter
for call in "${calls_by_name[@]}"; do perf_events+=",syscalls:sys_enter_$call"; done

# A port nobody listens on now (Redis cannot pick its own and say which: --port 0 means no TCP).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts server $1 (kv|redis) pinned to the server CPU; sets server_pid and port.
start_server() {
  local name=$1
  local out
  out=$(mktemp "$work/$name.XXXXXX")
  port=
  if [ "$name" = kv ]; then
    taskset -c "$server_cpu" "$kv_bin" --listen 127.0.0.1:0 >"$out" 2>"$work/$name.err" </dev/null &
    server_pid=$!
    for _ in $(seq 200); do
      port=$(sed -n 's/^kv server listening on \(tcp:\)\{0,1\}127\.0\.0\.1:\([0-9]*\)$/\2/p' "$out")
      [ -n "$port" ] && break
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.05
    done
  else
    local candidate
    candidate=$(free_port)
    mkdir -p "$work/redis-dir"
    taskset -c "$server_cpu" redis-server --port "$candidate" --bind 127.0.0.1 --save '' \
      --appendonly no --dir "$work/redis-dir" >"$out" 2>"$work/$name.err" </dev/null &
    server_pid=$!
    for _ in $(seq 200); do
      if [ "$(redis-cli -p "$candidate" PING 2>/dev/null)" = PONG ]; then port=$candidate; break; fi
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.05
    done
  fi
  [ -n "$port" ] || { echo "redis.sh: $name did not start:" >&2; cat "$out" "$work/$name.err" >&2; exit 1; }
}

# utime (field 14) and stime (field 15) of the server, all threads, in clock ticks; the
# command name (field 2) of both servers has no spaces.
user_ticks() { awk '{ print $14 }' "/proc/$server_pid/stat"; }
system_ticks() { awk '{ print $15 }' "/proc/$server_pid/stat"; }

# redis-benchmark on the load CPU with depth $1 and $2 requests per test, CSV into $3;
# fails on anything on its stderr (errors from the server, "Could not fetch server CONFIG").
benchmark_command() {
  echo taskset -c "$load_cpu" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get,incr \
    -c "$clients" -r "$keyspace" -n "$2" -P "$1" --csv
}
run_benchmark() {
  $(benchmark_command "$1" "$2") >"$3" 2>"$work/benchmark.err"
  check_benchmark "$3"
}
check_benchmark() {
  if [ -s "$work/benchmark.err" ] || [ "$(grep -c '^"\(SET\|GET\|INCR\)"' "$1")" -ne 3 ]; then
    echo "redis.sh: redis-benchmark failed against port $port:" >&2
    cat "$1" "$work/benchmark.err" >&2
    exit 1
  fi
}

# Requests/s over the three tests of CSV $1 with $2 requests each: all requests over the
# sum of the tests' times.
total_rps() {
  awk -F, -v n="$2" '/^"(SET|GET|INCR)"/ { gsub(/"/, "", $2); t += n / $2; c += n }
    END { printf "%.0f", c / t }' "$1"
}

# VmRSS of the server, in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }

# Sets kib: KiB of VmRSS per idle connection, on a fresh server $1 (not in a subshell, so
# that a failure still stops the server on exit).
idle_memory() {
  start_server "$1"
  local before after
  before=$(rss_kib)
  mkfifo "$work/idle.in"
  python3 benches/redis/idle_clients.py 127.0.0.1 "$port" "$idle" <"$work/idle.in" >"$work/idle.out" &
  local idle_pid=$!
  exec 4>"$work/idle.in"
  for _ in $(seq 600); do
    grep -q ready "$work/idle.out" && break
    kill -0 "$idle_pid" 2>/dev/null || break
    sleep 0.05
  done
  grep -q ready "$work/idle.out" || { echo "redis.sh: the idle clients did not connect to $1" >&2; exit 1; }
  sleep 3
  after=$(rss_kib)
  exec 4>&-
  wait "$idle_pid"
  rm -f "$work/idle.in"
  stop_server
  kib=$(awk -v b="$before" -v a="$after" -v n="$idle" 'BEGIN { printf "%.2f", (a - b) / n }')
}

results=()
memory=()
declare -A by_call
for run in $(seq "$runs"); do
  order="kv redis"
  [ $((run % 2)) -eq 0 ] && order="redis kv"
  for depth in $depths; do
    for name in $order; do
      start_server "$name"
      run_benchmark "$depth" $((requests / 10)) "$work/warmup.csv"
      user_before=$(user_ticks)
      system_before=$(system_ticks)
      run_benchmark "$depth" "$requests" "$work/run.csv"
      user=$(( $(user_ticks) - user_before ))
      system=$(( $(system_ticks) - system_before ))
      total=$((requests * 3))
      rps=$(total_rps "$work/run.csv" "$requests")
      syscalls=n/a
      if $perf_ok; then
        # -p with a command: count the server while the command (redis-benchmark) runs.
        perf stat -x, -o "$work/perf.txt" -e "$perf_events" -p "$server_pid" -- \
          $(benchmark_command "$depth" "$requests") >"$work/perf.csv" 2>"$work/benchmark.err"
        check_benchmark "$work/perf.csv"
        calls=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$work/perf.txt")
        syscalls=$(awk -v c="$calls" -v r="$total" 'BEGIN { printf "%.3f", c / r }')
        by_call["$depth $name"]=$(awk -F, -v r="$total" '/syscalls:sys_enter_/ && $1 > 0 {
            sub(/.*sys_enter_/, "", $3); printf "%s %.3f, ", $3, $1 / r }' "$work/perf.txt" | sed 's/, $//')
      fi
      stop_server
      cpu_us=$(awk -v t="$((user + system))" -v hz="$clk_tck" -v r="$total" 'BEGIN { printf "%.3f", t / hz * 1e6 / r }')
      user_us=$(awk -v t="$user" -v hz="$clk_tck" -v r="$total" 'BEGIN { printf "%.3f", t / hz * 1e6 / r }')
      echo "run $run, -P $depth, $name: $total requests, $rps/s, server CPU $cpu_us µs/request" \
        "($user_us in user space), $syscalls syscalls/request" \
        "(load average $(cut -d' ' -f1 /proc/loadavg))" >&2
      results+=("$run $depth $name $rps $cpu_us $syscalls $user_us")
    done
  done
  for name in $order; do
    idle_memory "$name"
    echo "run $run, $name: $kib KiB per idle client ($idle clients)" >&2
    memory+=("$run $name $kib")
  done
done

# Ratios kv/redis within each run (servers measured back to back) of column $2 for the
# lines $1 (a `$2 == depth` filter, or all), then their median and range.
ratios() {
  awk -v key="$1" -v col="$2" -v keycol="$3" -v namecol="$4" '
    (key == "" || $keycol == key) { v[$1, $namecol] = $col; if ($1 > runs) runs = $1 }
    END {
      for (r = 1; r <= runs; r++) {
        if (v[r, "redis"] == "n/a" || v[r, "redis"] == 0) { print "n/a"; exit }
        x[r] = v[r, "kv"] / v[r, "redis"]
      }
      for (i = 1; i <= runs; i++) for (j = i + 1; j <= runs; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
      m = (runs % 2) ? x[(runs + 1) / 2] : (x[runs / 2] + x[runs / 2 + 1]) / 2
      if (runs > 1) printf "%.2f (%.2f-%.2f)", m, x[1], x[runs]; else printf "%.2f", m
    }'
}

echo
echo "redis-benchmark -t set,get,incr -c $clients -r $keyspace -n $requests -P 1 and -P 16;" \
  "$runs run(s); server on CPU $server_cpu, redis-benchmark on CPU $load_cpu."
echo "kv_server against $(redis-server --version | sed -n 's/^\(Redis server v=[^ ]*\).*/\1/p');" \
  "$(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)."
echo
medians_table depth "-P " "$depths" "kv redis"
echo
echo "| depth | requests/s, kv / redis | server CPU per request, kv / redis | system calls per request, kv / redis |"
echo "|---|---:|---:|---:|"
for depth in $depths; do
  printf '| -P %s | %s | %s | %s |\n' "$depth" \
    "$(printf '%s\n' "${results[@]}" | ratios "$depth" 4 2 3)" \
    "$(printf '%s\n' "${results[@]}" | ratios "$depth" 5 2 3)" \
    "$(printf '%s\n' "${results[@]}" | ratios "$depth" 6 2 3)"
done
if [ ${#by_call[@]} -gt 0 ]; then
  echo
  echo "| depth | server | system calls per request, by call (last run) |"
  echo "|---|---|---|"
  for depth in $depths; do
    for name in kv redis; do printf '| -P %s | %s | %s |\n' "$depth" "$name" "${by_call["$depth $name"]}"; done
  done
fi
echo
echo "| server | memory per idle client (VmRSS growth / $idle) | kv / redis |"
echo "|---|---:|---:|"
for name in kv redis; do
  kib=$(printf '%s\n' "${memory[@]}" | awk -v n="$name" '$2 == n { print $3 }' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  ratio=
  [ "$name" = kv ] && ratio=$(printf '%s\n' "${memory[@]}" | ratios "" 3 0 2)
  printf '| %s | %s KiB | %s |\n' "$name" "$kib" "$ratio"
done
