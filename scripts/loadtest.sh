#!/usr/bin/env bash
# Load test of `sentibench serve`: for each run directory given, start the server on a free
# loopback port, drive it with cmd/loadgen at several concurrency levels, stop it (SIGTERM,
# graceful), and print the tables.
#
#   scripts/loadtest.sh RUN_DIR...
#   CLIENTS=1,16,64 DURATION=10s REVIEWS="short imdb" scripts/loadtest.sh runs/cnn-1 runs/lstm-1
#
# On a machine with more cores, SERVER_CPUS=0,1 LOADGEN_CPUS=2,3 pin the server and the load
# generator (taskset) so that the server gets exactly two cores of its own. SERVE_ARGS adds
# flags to the server (e.g. SERVE_ARGS="--threads 1").
# Train runs to measure with, e.g.: bin/sentibench train --model cnn --data sample --epochs 1 --run /tmp/serve-cnn
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 RUN_DIR..." >&2; exit 2; }
CLIENTS=${CLIENTS:-1,16,64}
DURATION=${DURATION:-10s}
REVIEWS=${REVIEWS:-short imdb}
TEXTS=${TEXTS:-1}

go build -o bin/sentibench ./cmd/sentibench
go build -o bin/loadgen ./cmd/loadgen
pin() { # pin CPUS CMD...: run CMD on those CPUs when CPUS is set
  local cpus=$1; shift
  if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18089)

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for run in "$@"; do
  log=$(mktemp)
  server_cmd=(bin/sentibench serve --run "$run" --addr "127.0.0.1:$port" ${SERVE_ARGS:-})
  if [ -n "${SERVER_CPUS:-}" ]; then server_cmd=(taskset -c "$SERVER_CPUS" "${server_cmd[@]}"); fi
  "${server_cmd[@]}" 2>"$log" & # taskset execs the server: $! is the server's pid
  server=$!
  trap 'kill -TERM $server 2>/dev/null || true' EXIT
  for reviews in $REVIEWS; do
    echo
    echo "### $run ($reviews reviews)"
    pin "${LOADGEN_CPUS:-}" bin/loadgen -url "http://127.0.0.1:$port" -c "$CLIENTS" -duration "$DURATION" \
      -reviews "$reviews" -texts "$TEXTS" 2>/dev/null
  done
  echo
  echo "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$server/status 2>/dev/null || echo unknown)"
  kill -TERM "$server"
  wait "$server" || { echo "the server exited with status $?:" >&2; cat "$log" >&2; exit 1; }
  trap - EXIT
  rm -f "$log"
done
