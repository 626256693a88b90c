#!/usr/bin/env bash
# Run from the repository root after `cargo build --release --examples`: bash benches/threads.sh
# Server CPU per message and throughput, echo_server --threads 1 vs 2, alternating runs.
set -u
for round in 1 2 3 4 5; do
  for t in 1 2; do
    out=$(mktemp); fifo=$(mktemp -u); mkfifo "$fifo"
    ./target/release/examples/echo_server --threads "$t" --addr 127.0.0.1:0 --stop-on-stdin-eof <"$fifo" >"$out" 2>/dev/null &
    pid=$!; exec 3>"$fifo"
    for _ in $(seq 100); do grep -q "listening on" "$out" && break; sleep 0.05; done
    addr=$(sed -n 's/^echo server listening on //p' "$out")
    before=$(awk '{print $14+$15}' /proc/$pid/stat)
    rate=$(./target/release/examples/echo_client --addr "$addr" --connections 100 --messages 2000 --size 512 --pipeline 4 | grep -oE '[0-9]+ messages/s' | cut -d' ' -f1)
    after=$(awk '{print $14+$15}' /proc/$pid/stat)
    exec 3>&-; wait $pid; rm -f "$fifo" "$out"
    # 200,000 messages; CPU ticks are 10 ms
    echo "threads=$t msgs_per_s=$rate server_cpu_us_per_msg=$(( (after-before) * 10000 / 200000 ))"
  done
done
