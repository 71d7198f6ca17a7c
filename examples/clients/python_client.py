#!/usr/bin/env python3
"""Predict SocSci210 rows and chat with `gotrain serve`, with the Python standard library only.

    gotrain serve --base MODEL [--adapter NAME=DIR] &
    python3 python_client.py [rows.jsonl]

Environment: GOTRAIN_URL (default http://127.0.0.1:8080), GOTRAIN_MODEL (default: the first model the
server lists), GOTRAIN_API_KEY (if the server was started with --api-key).
"""
import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("GOTRAIN_URL", "http://127.0.0.1:8080").rstrip("/")
KEY = os.environ.get("GOTRAIN_API_KEY", "")


def call(method, path, body=None):
    """Send a request; return the decoded JSON answer or exit with the server's error message."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if KEY:
        req.add_header("Authorization", "Bearer " + KEY)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        err = json.load(e).get("error", {})
        sys.exit(f"{method} {path}: HTTP {e.code} {err.get('code')}: {err.get('message')}")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "rows.jsonl")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    model = os.environ.get("GOTRAIN_MODEL") or call("GET", "/v1/models")["data"][0]["id"]

    # the engine's own endpoint: every input field back, plus options, probs, prediction, method
    out = call("POST", "/v1/predict", {"model": model, "rows": rows})
    for row in out["rows"]:
        dist = ", ".join(f"{o}: {p:.3f}" for o, p in zip(row.get("options", []), row.get("probs", [])))
        print(f"{row.get('sample_id', '?')}\tprediction {row.get('prediction')}\t{dist}")

    # the OpenAI endpoint
    chat = call("POST", "/v1/chat/completions", {
        "model": model,
        "messages": [{"role": "user", "content": "In one word: is a $15 parking fee a lot?"}],
        "max_tokens": 8, "temperature": 0,
    })
    print("chat:", json.dumps(chat["choices"][0]["message"]["content"], ensure_ascii=False))


if __name__ == "__main__":
    main()
