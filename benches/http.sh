#!/usr/bin/env bash
# The HTTP benchmark: the http_server example against hyper (benches/http/hyper_server.rs),
# both serving TechEmpower's /plaintext on one thread, loaded by wrk.
#
#   benches/http.sh [--runs N] [--duration SECS] [--connections N] [--depth N] [--paced MS]
#                   [--svg FILE]
#
# For each server and each load (keep-alive: one request at a time per connection;
# pipelined: --depth requests per batch with benches/http/pipeline.lua; with --paced, also
# keep-alive with MS ms between a response and the next request, benches/http/paced.lua,
# the same offered load for both servers), one run of
# --duration seconds (after a 1 s warm-up) measures requests/s and the server's CPU time per
# request (utime + stime of the whole process from /proc/PID/stat, over exactly wrk's run);
# a second run of the same length under `perf stat -p PID` counts the server's system calls
# (kernel tracepoints), in all and by name, kept apart so that counting does not slow the
# first. The server is pinned to one CPU and wrk (one thread) to another. --runs repeats it
# all, the servers in alternating order. Prints Markdown tables: medians, the reactor/hyper
# ratios of each run (median, min-max), and the system calls per request by name (over all
# runs); --svg also draws CPU per request. See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=1
duration=10
connections=50
depth=16
paced_ms=
svg=
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    --paced) paced_ms=$2; shift 2 ;;
    --svg) svg=$2; shift 2 ;;
    -h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "http.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
loads="keepalive pipelined"
[ -n "$paced_ms" ] && loads="$loads paced"
for tool in wrk taskset; do
  command -v "$tool" >/dev/null || { echo "http.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

cargo build --release --example http_server >&2
reactor_bin=${CARGO_TARGET_DIR:-target}/release/examples/http_server
hyper_bin=$(cargo bench --no-run --bench http_hyper 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$hyper_bin" ] || { echo "http.sh: could not build the hyper server" >&2; exit 1; }

# The CPUs (server, load generator), perf, $work, stop_server and the medians.
source benches/harness.sh

# Starts a server pinned to the server CPU; sets server_pid and url.
start_server() {
  local name=$1
  local bin=$2
  # A file of its own: a background start truncates it later than this shell may read it.
  local out
  out=$(mktemp "$work/$name.XXXXXX")
  taskset -c "$server_cpu" "$bin" --addr 127.0.0.1:0 >"$out" 2>"$work/$name.err" </dev/null &
  server_pid=$!
  local addr=
  for _ in $(seq 200); do
    addr=$(sed -n 's/^.*listening on \(http:\/\/\)\{0,1\}\(127\.0\.0\.1:[0-9]*\)$/\2/p' "$out")
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "http.sh: $name did not start:" >&2; cat "$work/$name.err" >&2; exit 1; }
  url="http://$addr/plaintext"
}

# utime of process $1 (all its threads), in clock ticks; field 14 of /proc/PID/stat (the
# command name, field 2, has no spaces for these servers).
user_ticks() {
  awk '{ print $14 }' "/proc/$1/stat"
}

# stime, field 15.
system_ticks() {
  awk '{ print $15 }' "/proc/$1/stat"
}

# wrk on the load CPU for $1 seconds with load $2 (keepalive|pipelined|paced); output to
# $3; any further arguments go before it (a command that runs wrk, as perf does).
run_wrk() {
  local secs=$1 load=$2 out=$3
  shift 3
  local script=() args=()
  case "$load" in
    pipelined) script=(-s benches/http/pipeline.lua); args=(-- "$depth") ;;
    paced) script=(-s benches/http/paced.lua); args=(-- "$paced_ms") ;;
  esac
  "$@" taskset -c "$load_cpu" wrk -t1 -c"$connections" -d"${secs}s" "${script[@]}" "$url" "${args[@]}" >"$out"
}

# Checks that wrk saw only 200s and no socket errors, and prints the request count.
wrk_requests() {
  if grep -q -e "Non-2xx" -e "Socket errors" "$1"; then
    echo "http.sh: errors under load:" >&2; cat "$1" >&2; exit 1
  fi
  sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$1"
}

results=()
for run in $(seq "$runs"); do
for load in $loads; do
  order="reactor hyper"
  [ $((run % 2)) -eq 0 ] && order="hyper reactor"
  for name in $order; do
    bin=$reactor_bin
    [ "$name" = hyper ] && bin=$hyper_bin
    start_server "$name" "$bin"
    run_wrk 1 "$load" "$work/warmup.txt"
    user_before=$(user_ticks "$server_pid")
    system_before=$(system_ticks "$server_pid")
    run_wrk "$duration" "$load" "$work/wrk.txt"
    user=$(( $(user_ticks "$server_pid") - user_before ))
    system=$(( $(system_ticks "$server_pid") - system_before ))
    requests=$(wrk_requests "$work/wrk.txt")
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$work/wrk.txt")
    cpu_ns=$(( (user + system) * 1000000000 / clk_tck ))
    user_ns=$(( user * 1000000000 / clk_tck ))
    syscalls=n/a
    if $perf_ok; then
      # -p with a command: count the server while the command (wrk) runs; every call, and
      # each call by name (one tracepoint per call).
      run_wrk "$duration" "$load" "$work/wrk-perf.txt" perf stat -x, -o "$work/perf.txt" \
        -e raw_syscalls:sys_enter -e 'syscalls:sys_enter_*' -p "$server_pid" --
      perf_requests=$(wrk_requests "$work/wrk-perf.txt")
      calls=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$work/perf.txt")
      syscalls=$(awk -v c="$calls" -v r="$perf_requests" 'BEGIN { printf "%.3f", c / r }')
      # "load server call count requests" for each call made at least once.
      awk -F, -v l="$load" -v n="$name" -v r="$perf_requests" '
        $3 ~ /^syscalls:sys_enter_/ && $1 + 0 > 0 { sub(/^syscalls:sys_enter_/, "", $3); print l, n, $3, $1, r }
      ' "$work/perf.txt" >>"$work/calls.txt"
      echo "$load $name $perf_requests" >>"$work/perf-requests.txt"
    fi
    stop_server
    cpu_us=$(awk -v ns="$cpu_ns" -v r="$requests" 'BEGIN { printf "%.3f", ns / r / 1000 }')
    user_us=$(awk -v ns="$user_ns" -v r="$requests" 'BEGIN { printf "%.3f", ns / r / 1000 }')
    echo "run $run, $load, $name: $requests requests, $rps/s, server CPU $cpu_us µs/request" \
      "($user_us in user space)," \
      "$syscalls syscalls/request (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
    results+=("$run $load $name $rps $cpu_us $syscalls $user_us")
  done
done
done

echo
echo "wrk -t1 -c$connections -d${duration}s; pipelined: $depth deep; $runs run(s)." \
  "Server on CPU $server_cpu, wrk on CPU $load_cpu."
echo "$(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)."
echo
medians_table load "" "$loads" "reactor hyper"
echo
echo "| load | requests/s, reactor / hyper | server CPU per request, reactor / hyper |"
echo "|---|---:|---:|"
for load in $loads; do
  # Ratios within each run (servers measured back to back), then their median and range.
  printf '%s\n' "${results[@]}" | awk -v l="$load" '
    $2 == l { rps[$1, $3] = $4; cpu[$1, $3] = $5; if ($1 > runs) runs = $1 }
    function show(v, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      return (n > 1) ? sprintf("%.2f (%.2f-%.2f)", m, v[1], v[n]) : sprintf("%.2f", m)
    }
    END {
      for (r = 1; r <= runs; r++) { a[r] = rps[r, "reactor"] / rps[r, "hyper"]; b[r] = cpu[r, "reactor"] / cpu[r, "hyper"] }
      printf "| %s | %s | %s |\n", l, show(a, runs), show(b, runs)
    }'
done

if $perf_ok; then
  # Each call's count over all runs, divided by the requests of those runs.
  echo
  echo "| load | system call | reactor, per request | hyper, per request |"
  echo "|---|---|---:|---:|"
  for load in $loads; do
    awk -v l="$load" '
      FILENAME ~ /perf-requests/ { if ($1 == l) requests[$2] += $3; next }
      $1 == l { count[$3, $2] += $4; calls[$3] = 1 }
      END {
        for (c in calls) printf "| %s | %s | %.4f | %.4f |\n", l, c,
          count[c, "reactor"] / requests["reactor"], count[c, "hyper"] / requests["hyper"]
      }' "$work/perf-requests.txt" "$work/calls.txt" | sort -t'|' -k4,4gr
  done
fi

if [ -n "$svg" ]; then
  # One bar per server and load: CPU per request, the figure the goal is about.
  for load in $loads; do
    for name in reactor hyper; do echo "$load $name $(median "$load" "$name" 5)"; done
  done | awk -v title="Server CPU per request (µs), median of $runs run(s); wrk -c$connections, pipelined $depth deep" '
    { load[NR] = $1; name[NR] = $2; cpu[NR] = $3; if ($3 > max) max = $3 }
    END {
      w = 640; h = 320; left = 140; top = 50; bar = 36; gap = 16
      printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"14\">\n", w, h
      printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      printf "<text x=\"20\" y=\"28\" font-size=\"16\">%s</text>\n", title
      for (i = 1; i <= NR; i++) {
        y = top + (i - 1) * (bar + gap)
        len = (w - left - 90) * cpu[i] / max
        color = (name[i] == "reactor") ? "#2b6cb0" : "#b7791f"
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s %s</text>\n", left - 10, y + bar * 0.65, load[i], name[i]
        printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y, len, bar, color
        printf "<text x=\"%.1f\" y=\"%d\">%.2f</text>\n", left + len + 6, y + bar * 0.65, cpu[i]
      }
      printf "</svg>\n"
    }' >"$svg"
  echo
  echo "chart written to $svg"
fi
