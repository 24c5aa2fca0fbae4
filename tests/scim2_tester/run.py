"""Runs scim2-tester's full check suite against a served scim-edge organization.

usage: run.py <base url> <bearer key>

Prints every result that is an ERROR or CRITICAL (with its reason), a count per status,
and a closing line "scim2-tester: N passed, N failed"; exits 1 when any check failed.
"""

import sys
from collections import Counter

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

FAILED = {Status.ERROR, Status.CRITICAL}


def main() -> int:
    base, key = sys.argv[1], sys.argv[2]
    http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    results = check_server(SyncSCIMClient(http))
    counts = Counter(r.status.name for r in results)
    for r in results:
        if r.status in FAILED:
            print(f"{r.status.name}: [{r.resource_type or '-'}] {r.title}: {r.reason}")
    print("statuses: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    failed = sum(1 for r in results if r.status in FAILED)
    ran = sum(1 for r in results if r.status != Status.SKIPPED)
    print(f"scim2-tester: {ran - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
