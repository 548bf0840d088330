#!/usr/bin/env bash
# Repeats after crashes: a release router whose console sink appends to a file takes
# NDJSON batches of 10,000 events (each with its own id) while it is killed with SIGKILL
# and restarted, KILLS times; then it delivers what waits, and the script counts the ids
# the file holds more than once.
#
#   bench/crash_repeats.sh [kills]      (default 5)
#   ROUTER=path/to/alert-router bench/crash_repeats.sh   (another build, e.g. an older commit's)
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-5}
cargo build --release -q -p alert-router -p alert-router-sink-console
bin=${ROUTER:-./target/release/alert-router}
plugins=$(cd "$(dirname "$bin")" && pwd)
work=$(mktemp -d)
trap 'kill -9 $router 2>/dev/null || true; kill $producer 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/rules" "$work/templates/console"
cat > "$work/router.yaml" <<YAML
server: {listen: 127.0.0.1:19471}
storage: {path: data}
plugins: {dirs: ["$plugins"]}
rules: rules
templates: templates
sinks:
  console:
    plugin: console
    max_queue: 10000000
    settings: {path: "$work/out.jsonl", format: json}
YAML
echo 'routes: [{name: all, to: [console]}]' > "$work/rules/all.yaml"
echo 'id: "{{ event.id }}"' > "$work/templates/console/default.yaml"
start() {
  ALERT_ROUTER_LOG=warn "$bin" --config "$work/router.yaml" run >/dev/null 2>>"$work/stderr" &
  router=$!
  for _ in $(seq 100); do curl -sf localhost:19471/healthz >/dev/null && return; sleep 0.1; done
  echo "the router did not start" >&2; cat "$work/stderr" >&2; exit 1
}
# Posts batches of 10,000 until killed, numbering events on from $1.
cat > "$work/produce.py" <<'PY'
import sys, urllib.request
n = int(sys.argv[1])
while True:
    body = "".join('{"type":"job","id":"e%d"}\n' % i for i in range(n, n + 10000)).encode()
    try:
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:19471/v1/events", body, {"Content-Type": "application/x-ndjson"}), timeout=30).read()
    except Exception:
        pass
    n += 10000
PY
start
for k in $(seq "$kills"); do
  python3 "$work/produce.py" "$((k * 100000000))" & producer=$!
  sleep 2
  kill -9 "$router"; wait "$router" 2>/dev/null || true
  kill "$producer"; wait "$producer" 2>/dev/null || true
  start
done
for _ in $(seq 600); do
  q=$(curl -s localhost:19471/v1/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["outbox"]["queued"])')
  [ "$q" = 0 ] && break; sleep 0.2
done
python3 - "$work/out.jsonl" "$kills" <<'PY'
import collections, json, sys
ids = [json.loads(l)["payload"]["id"] for l in open(sys.argv[1])]
counts = collections.Counter(ids)
repeats = sum(c - 1 for c in counts.values())
print(f"{len(counts)} distinct events delivered, {repeats} repeats over {sys.argv[2]} kill -9s")
PY
