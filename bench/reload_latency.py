#!/usr/bin/env python3
"""Time from a rule file write to the new config in force, on a running release router.

    cargo build --release -p alert-router -p alert-router-sink-console
    python3 bench/reload_latency.py [rounds]

Each round rewrites the rule file (routing to one console sink, then the other) and polls
/v1/status every millisecond until `config.last_reload` reports a successful reload newer
than the write. Prints p50, p90 and max over the rounds.
"""
import json, os, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "alert-router")
PORT = 19471


def status():
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/v1/status", timeout=2) as r:
        return json.load(r)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    work = tempfile.mkdtemp()
    os.makedirs(f"{work}/rules"); os.makedirs(f"{work}/templates/console")
    with open(f"{work}/router.yaml", "w") as f:
        f.write(f"""server: {{listen: 127.0.0.1:{PORT}}}
plugins: {{dirs: ["{ROOT}/target/release"]}}
rules: rules
templates: templates
sinks:
  a: {{plugin: console, settings: {{path: "{work}/a.txt"}}}}
  b: {{plugin: console, settings: {{path: "{work}/b.txt"}}}}
""")
    rule = f"{work}/rules/main.yaml"
    with open(rule, "w") as f:
        f.write("routes: [{name: main, to: [a]}]\n")
    with open(f"{work}/templates/console/default.yaml", "w") as f:
        f.write('text: "{{ event.type }}"\n')
    env = dict(os.environ, ALERT_ROUTER_LOG="warn")
    router = subprocess.Popen([BIN, "--config", f"{work}/router.yaml", "run"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                status(); break
            except OSError:
                time.sleep(0.05)
        samples = []
        for i in range(rounds):
            before = status()["config"]["reloads"]["succeeded"]
            sink = "b" if i % 2 == 0 else "a"
            t0 = time.monotonic()
            with open(rule, "w") as f:
                f.write(f"routes: [{{name: main, to: [{sink}]}}]\n")
            while True:
                s = status()["config"]
                if s["reloads"]["succeeded"] > before and s["last_reload"]["ok"]:
                    break
                if time.monotonic() - t0 > 5:
                    raise SystemExit("no reload within 5 s")
                time.sleep(0.001)
            samples.append((time.monotonic() - t0) * 1000)
            time.sleep(0.3)  # let the watcher go quiet between rounds
        samples.sort()
        pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
        print(f"reload latency over {rounds} writes: p50 {pick(0.5):.0f} ms, p90 {pick(0.9):.0f} ms, max {samples[-1]:.0f} ms")
    finally:
        router.terminate(); router.wait()


if __name__ == "__main__":
    main()
