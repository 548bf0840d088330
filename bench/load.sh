#!/usr/bin/env bash
# End-to-end load: HTTP ingest into a release router whose console sink appends to a
# file. Measures single-event requests (64 keep-alive connections) and NDJSON batches
# with wrk, then checks that every accepted event reached the file.
#
#   bench/load.sh [seconds]        (needs wrk: apt-get install wrk)
#   SYNC=normal bench/load.sh       (storage.sync; default full: fsync before every 202)
#   ISOLATION=process bench/load.sh (the console plugin in a process of its own; default
#                                    in-process, as a plugin beside the executable is)
#   ROUTER=path/to/alert-router bench/load.sh   (another build, e.g. an older commit's)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p alert-router -p alert-router-sink-console
bin=${ROUTER:-./target/release/alert-router}
plugins=$(cd "$(dirname "$bin")" && pwd)

work=$(mktemp -d)
trap 'kill $router 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/rules" "$work/templates/console"
cat > "$work/router.yaml" <<YAML
server: {listen: 127.0.0.1:19470}
storage: {path: data, sync: ${SYNC:-full}}
plugins: {dirs: ["$plugins"]}
rules: rules
templates: templates
sinks:
  console:
    plugin: console
    max_queue: 10000000
    settings: {path: "$work/out.txt", format: text}
YAML
# Only when asked: a build from before `isolation` existed refuses the key.
[ -n "${ISOLATION:-}" ] && sed -i "s/^    max_queue: .*/&\n    isolation: $ISOLATION/" "$work/router.yaml"
echo 'routes: [{name: all, to: [console]}]' > "$work/rules/all.yaml"
echo 'text: "{{ event.type }} {{ event.symbol }} {{ event.pnl | money }}"' > "$work/templates/console/default.yaml"
ALERT_ROUTER_LOG=warn "$bin" --config "$work/router.yaml" run >/dev/null 2>"$work/stderr" &
router=$!
for _ in $(seq 100); do curl -sf localhost:19470/healthz >/dev/null && break; sleep 0.1; done

event='{"type":"trade_closed","symbol":"ETH/USDT","side":"SELL","entry_price":2500,"exit_price":2600,"quantity":2,"pnl":200,"pnl_pct":4}'
cat > "$work/single.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$event'
LUA
batch=$(for _ in $(seq 100); do echo "$event"; done)
cat > "$work/batch.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.body = [[
$batch
]]
LUA

# The router's CPU time per accepted event over a scenario (user + system, all threads),
# once what wrk sent has settled.
tick=$(getconf CLK_TCK)
# With ISOLATION=process the plugin's own process counts too.
cpu_ticks() { for p in $router $(pgrep -P "$router"); do cat "/proc/$p/stat"; done | awk '{t += $14 + $15} END {print t}'; }
accepted() { curl -s localhost:19470/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"]["accepted"])'; }
measure() {
  local name=$1 conns=$2 script=$3 c0 a0 c1 a1
  c0=$(cpu_ticks); a0=$(accepted)
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/$script" http://127.0.0.1:19470/v1/events | tee "$work/$name.txt"
  sleep 1
  c1=$(cpu_ticks); a1=$(accepted)
  python3 -c "print(f'router CPU per accepted event: {($c1 - $c0) / $tick / max($a1 - $a0, 1) * 1e6:.1f} us ({$a1 - $a0} events)')"
}

echo "== single-event requests, 64 connections, ${secs}s"
measure single 64 single.lua
echo "== NDJSON batches of 100 events, 16 connections, ${secs}s"
measure batch 16 batch.lua

# Requests wrk gave up on at the deadline may still be finishing: wait until the counts
# stop moving and every accepted event is delivered.
counts() { curl -s localhost:19470/v1/status | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["events"]["accepted"], s["sinks"]["console"]["sent"])'; }
for _ in $(seq 600); do
  read -r accepted sent < <(counts)
  [ "$sent" -ge "$accepted" ] && sleep 0.5 && read -r a2 s2 < <(counts) && [ "$a2" = "$accepted" ] && [ "$s2" = "$sent" ] && break
  sleep 0.1
done
lines=$(grep -c '^trade_closed' "$work/out.txt" || true)
echo "== accepted $accepted events; delivered $sent; lines in the file: $lines"
echo "== router RSS: $(ps -o rss= -p $router) KiB"
children=$(pgrep -P "$router" || true)
[ -n "$children" ] && echo "== plugin processes' RSS: $(ps -o rss= -p "$(echo $children | tr ' ' ,)" | awk '{t += $1} END {print t}') KiB"
