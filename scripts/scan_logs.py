#!/usr/bin/env python3
"""Scans the component's log (every line the test suites made it write) for what must
never be logged: the SCIM keys and vault secrets the suites use, bearer tokens, email
addresses. Also checks that each request line is one JSON object with its fields.
Usage: scan_logs.py LOG [SECRET...]; exit status 1 on any finding."""
import json
import re
import sys

FIELDS = {"time", "org", "method", "route", "status", "ms", "kv", "vaultCalls", "requestId"}
# The keys every suite gives organizations (tests/common/orgs.rs), the fake vault's
# organization secret, bearer headers, tokens, and any address.
PATTERNS = [
    re.compile(r"key-of-"),
    re.compile(r"fake-vault-api-key"),
    re.compile(r"vault-test-key"),
    re.compile(r"[Bb]earer "),
    re.compile(r"\b[0-9a-f]{48}\b"),
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+"),
]


def main() -> int:
    path, secrets = sys.argv[1], [s for s in sys.argv[2:] if s]
    findings, requests, calls = [], 0, 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            for p in PATTERNS:
                if p.search(line):
                    findings.append(f"{path}:{n}: matches {p.pattern!r}: {line[:200]}")
            for s in secrets:
                if s in line:
                    findings.append(f"{path}:{n}: contains a secret the suites used")
            if line.startswith("{"):
                try:
                    v = json.loads(line)
                except ValueError:
                    findings.append(f"{path}:{n}: not one JSON object: {line[:200]}")
                    continue
                if "route" in v:
                    requests += 1
                    missing = FIELDS - v.keys()
                    if missing:
                        findings.append(f"{path}:{n}: request line without {sorted(missing)}")
                elif "vault" in v:
                    calls += 1
    print(f"scan_logs: {requests} request lines, {calls} vault call lines, {len(findings)} findings")
    for f in findings[:50]:
        print(f)
    return 1 if findings or requests == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
