#!/usr/bin/env bash
# Memory with a long queue: a release router whose only sink's upstream is down (a
# webhook to a closed port) takes N events in NDJSON batches; they wait in the outbox on
# disk. Prints the router's RSS before and after, and the outbox's size.
#
#   bench/queued_memory.sh [events]      (default 50000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50000}
cargo build --release -q -p alert-router -p alert-router-sink-webhook

work=$(mktemp -d)
trap 'kill $router 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/rules" "$work/templates/webhook"
cat > "$work/router.yaml" <<YAML
server: {listen: 127.0.0.1:19471}
plugins: {dirs: ["$PWD/target/release"]}
rules: rules
templates: templates
sinks:
  down:
    plugin: webhook
    retry: {max_attempts: 1000000, initial_backoff: 1s, max_backoff: 1s}
    settings: {url: "http://127.0.0.1:9/closed", timeout: 1s}
YAML
echo 'routes: [{name: all, to: [down]}]' > "$work/rules/all.yaml"
echo 'event: "{{ event }}"' > "$work/templates/webhook/default.yaml"
ALERT_ROUTER_LOG=error ./target/release/alert-router --config "$work/router.yaml" run >/dev/null 2>"$work/stderr" &
router=$!
for _ in $(seq 100); do curl -sf localhost:19471/healthz >/dev/null && break; sleep 0.1; done

rss0=$(ps -o rss= -p $router)
python3 - "$n" <<'PY'
import json, sys, urllib.request
n = int(sys.argv[1])
event = {"type": "trade_closed", "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500,
         "exit_price": 2600, "quantity": 2, "pnl": 200, "pnl_pct": 4, "strategy": "RSI_MACD"}
for start in range(0, n, 1000):
    body = "\n".join(json.dumps(dict(event, id=f"q{i}")) for i in range(start, min(n, start + 1000)))
    req = urllib.request.Request("http://127.0.0.1:19471/v1/events", body.encode(),
                                 {"Content-Type": "application/x-ndjson"})
    urllib.request.urlopen(req).read()
PY
rss=$(ps -o rss= -p $router)
queued=$(curl -s localhost:19471/v1/status | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["outbox"]["queued"], s["outbox"]["queued_bytes"])')
echo "== $queued (messages, bytes) waiting; router RSS $((rss0 / 1024)) MiB idle, $((rss / 1024)) MiB now; outbox.db $(du -m "$work/data/outbox.db" | cut -f1) MiB"
