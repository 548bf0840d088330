#!/usr/bin/env python3
"""Posts a few trading events to alert-router, standard library only.

    python3 examples/producer.py [--url http://127.0.0.1:9470] [--token TOKEN]

Each event gets its own id before the first attempt; a connection error or a 5xx
(503 honouring Retry-After) is retried with the same id, so the router delivers it once.
A 400 or 401 is printed and not retried: the same request would be refused again.
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

RETRIES = 4


def post_event(url, event, token=None, retries=RETRIES):
    """POSTs one event; returns the router's answer ({"accepted": 1, "ids": [...]})."""
    event = dict(event)
    event.setdefault("id", str(uuid.uuid4()))  # fixed before the first attempt
    body = json.dumps(event).encode()
    for attempt in range(retries + 1):
        req = urllib.request.Request(url.rstrip("/") + "/v1/events", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        wait = min(0.2 * 2 ** attempt, 5.0)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            answer = e.read().decode(errors="replace")
            if e.code < 500:
                raise RuntimeError(f"refused ({e.code}): {answer}") from None
            wait = float(e.headers.get("Retry-After") or wait)
            reason = f"{e.code}: {answer}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            reason = str(getattr(e, "reason", e))
        if attempt == retries:
            raise RuntimeError(f"router unavailable after {retries + 1} attempts: {reason}")
        print(f"  attempt {attempt + 1} failed ({reason}); retrying in {wait:.1f}s", file=sys.stderr)
        time.sleep(wait)


EVENTS = [
    {"type": "trade_opened", "symbol": "BTC/USDT", "side": "BUY", "entry_price": 45000,
     "quantity": 0.5, "strategy": "RSI_MACD", "stop_loss": 44000, "take_profit": 47000},
    {"type": "trade_closed", "symbol": "ETH/USDT", "side": "SELL", "entry_price": 2500,
     "exit_price": 2600, "quantity": 2.0, "pnl": 200, "pnl_pct": 4.0, "reason": "Take Profit",
     "duration": "3 hours"},
    {"type": "portfolio_update", "total_value": 51250.5, "cash": 28750.5, "positions": [
        {"symbol": "BTC/USDT", "side": "LONG", "quantity": 0.5, "entry_price": 45000,
         "current_price": 45000, "value": 22500}]},
    {"type": "error", "severity": "warning", "error_type": "HighLatency",
     "message": "Exchange API latency above 2s", "component": "market_data"},
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("ALERT_ROUTER_URL", "http://127.0.0.1:9470"))
    ap.add_argument("--token", default=os.environ.get("ALERT_ROUTER_TOKEN"))
    args = ap.parse_args()
    failed = 0
    for event in EVENTS:
        try:
            print(event["type"], "->", json.dumps(post_event(args.url, event, args.token)))
        except RuntimeError as e:
            print(event["type"], "->", e, file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
