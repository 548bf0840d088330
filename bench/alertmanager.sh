#!/usr/bin/env bash
# Prometheus Alertmanager and the router side by side, on this machine, in one run. One
# load generator (tests/src/bin/alert-router-am-bench.rs) posts the same alerts to
# `POST /api/v2/alerts` of each; both deliver one webhook per alert to the receiver in
# the same process, which times each alert from its send to its receipt. Scenarios:
#
#   single  one alert per request, 64 keep-alive connections, closed loop
#   batch   100 alerts per request, 16 connections, closed loop
#   open    one alert per request at 1,000/s on a fixed schedule (open loop; latency from
#           the scheduled instant)
#
# Each server is started afresh for each scenario (empty storage), so its peak memory
# (VmHWM) is that scenario's. Its CPU (utime + stime, every thread, from /proc) is read
# from just before the first send to a second after the last receipt, and divided by
# the alerts delivered. A run in which an alert is not delivered, a request fails or a
# webhook is not understood stops the script: it measured something else.
#
#   bench/alertmanager.sh [seconds]        (per scenario and server; default 15)
#   SYNC=normal bench/alertmanager.sh      (the router's storage.sync; default full: an
#                                           fsync before every answer)
#   RATE=2000 bench/alertmanager.sh        (the open loop's alerts/s; default 1000)
#   ROUTER=path/to/alert-router bench/alertmanager.sh   (another build)
#
# Installs Debian's prometheus-alertmanager (apt-get, with sudo when not root) if no
# Alertmanager is on the PATH; the service the package ships is left as it is, since the
# script runs an instance of its own on free ports. The generator shares the machine's
# cores with the server it measures. Prints a Markdown table, router ÷ Alertmanager.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
rate=${RATE:-1000}

# Debian calls the program prometheus-alertmanager; upstream's tarball, alertmanager.
am=$(command -v prometheus-alertmanager || command -v alertmanager || true)
if [ -z "$am" ]; then
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus-alertmanager
  am=$(command -v prometheus-alertmanager)
fi

# One cargo invocation for all three: the same features for their shared dependencies,
# so nothing is built twice.
cargo build --release -q -p alert-router -p alert-router-sink-webhook -p alert-router-tests \
  --lib --bin alert-router --bin alert-router-am-bench
release=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
router_bin=${ROUTER:-$release/alert-router}
plugins=$(cd "$(dirname "$router_bin")" && pwd)
bench=$release/alert-router-am-bench
tick=$(getconf CLK_TCK)

work=$(mktemp -d)
server=
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Each alert its own group (group_by '...': every label) sent at once (group_wait 0s),
# only while firing. group_interval is longer than any scenario: a group speaks again
# only after it, and would then find nothing new to send.
start_alertmanager() { # port hook-port
  rm -rf "$work/alertmanager" && mkdir -p "$work/alertmanager"
  cat > "$work/alertmanager/alertmanager.yml" <<YAML
route:
  receiver: bench
  group_by: ['...']
  group_wait: 0s
  group_interval: 10m
  repeat_interval: 4h
receivers:
  - name: bench
    webhook_configs:
      - url: http://127.0.0.1:$2/alertmanager
        send_resolved: false
YAML
  "$am" --config.file="$work/alertmanager/alertmanager.yml" --storage.path="$work/alertmanager/data" \
    --web.listen-address="127.0.0.1:$1" --cluster.listen-address= --log.level=warn \
    2>"$work/alertmanager/stderr" &
  server=$!
}

# One route sending every event to the webhook sink at once (no group_by), with the
# shipped webhook template; no rate limit (none by default) and queue limits far above
# what a run leaves waiting, so nothing is refused or held back.
start_router() { # port hook-port
  rm -rf "$work/router" && mkdir -p "$work/router/rules"
  cat > "$work/router/router.yaml" <<YAML
server: {listen: 127.0.0.1:$1}
storage: {path: data, sync: ${SYNC:-full}, max_messages: 100000000, max_bytes: 64GiB}
plugins: {dirs: ["$plugins"]}
rules: rules
templates: $PWD/templates
sinks:
  webhook:
    plugin: webhook
    max_queue: 100000000
    settings: {url: "http://127.0.0.1:$2/router"}
YAML
  echo 'routes: [{name: all, to: [webhook]}]' > "$work/router/rules/all.yaml"
  ALERT_ROUTER_LOG=warn "$router_bin" --config "$work/router/router.yaml" run \
    >/dev/null 2>"$work/router/stderr" &
  server=$!
}

# One scenario against one server: start it, wait until it is ready, load it, stop it.
measure() { # server mode [generator options...]
  local name=$1 mode=$2 port hook pids
  shift 2
  port=$(free_port) hook=$(free_port)
  "start_$name" "$port" "$hook"
  for _ in $(seq 100); do curl -sf "127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "127.0.0.1:$port/-/ready" >/dev/null || { cat "$work/$name"/stderr >&2; exit 1; }
  # A plugin in a process of its own (`isolation: process`) counts too; the webhook
  # plugin sits beside the router's executable, so by default it runs in the router's.
  pids=$(echo "$server" $(pgrep -P "$server" || true) | tr ' ' ,)
  echo "== $name, $mode ${secs}s" >&2
  "$bench" --target "http://127.0.0.1:$port" --listen "127.0.0.1:$hook" --mode "$mode" \
    --seconds "$secs" --pids "$pids" --clk-tck "$tick" --label "$name" "$@" | tee -a "$work/results.jsonl" >&2
  kill "$server" && wait "$server" || true
  server=
}

# Alternate the servers within each scenario, so a change in the machine's load
# touches both alike.
for scenario in "single --connections 64" "batch --connections 16 --batch 100" "open --rate $rate"; do
  # shellcheck disable=SC2086 # the scenario's words are the generator's options
  measure alertmanager $scenario
  # shellcheck disable=SC2086
  measure router $scenario
done

python3 - "$work/results.jsonl" "$secs" "${SYNC:-full}" "$rate" <<'PY'
import json, sys
path, secs, sync, rate = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs = {(r["mode"], r["label"]): r for r in map(json.loads, open(path))}
titles = {
    "single": "one alert per request, 64 connections",
    "batch": "batches of 100, 16 connections",
    "open": f"open loop, {int(float(rate)):,} alerts/s",
}
def fig(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"
def cells(r):
    l = r["latency_ms"]
    return [f"{r['received']:,}", fig(r["accepted_per_s"]), fig(r["delivered_per_s"]),
            *(fig(l[k]) for k in ("p50", "p90", "p99", "max")),
            f"{r['cpu_us_per_alert']:.1f}", f"{r['peak_rss_kib'] / 1024:.0f}"]
def ratio(a, b):
    return f"{a / b:.2f}×" if b else "–"
def ratios(am, rt):
    l, m = am["latency_ms"], rt["latency_ms"]
    return ["", ratio(rt["accepted_per_s"], am["accepted_per_s"]),
            ratio(rt["delivered_per_s"], am["delivered_per_s"]),
            *(ratio(m[k], l[k]) for k in ("p50", "p90", "p99", "max")),
            ratio(rt["cpu_us_per_alert"], am["cpu_us_per_alert"]),
            ratio(rt["peak_rss_kib"], am["peak_rss_kib"])]
print(f"\n{secs} s per scenario; router storage.sync: {sync}; ratios are router ÷ Alertmanager\n")
print("| scenario | server | alerts delivered | accepted/s | delivered/s | p50 ms | p90 ms | p99 ms | max ms | CPU µs/alert | peak RSS MiB |")
print("|---|---|" + "---:|" * 9)
for mode, title in titles.items():
    am, rt = runs[(mode, "alertmanager")], runs[(mode, "router")]
    print("| " + " | ".join([title, "Alertmanager", *cells(am)]) + " |")
    print("| " + " | ".join(["", "router", *cells(rt)]) + " |")
    print("| " + " | ".join(["", "router ÷ AM", *ratios(am, rt)]) + " |")
PY
