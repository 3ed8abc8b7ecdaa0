"""A deterministic synthetic interaction history that exercises every sample promise.

``python bench/synthetic.py --records 5000 > history.jsonl`` writes one; the benchmark and
``make run`` use it. The same seed always gives the same records.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2024, 1, 8, 8, 0, tzinfo=UTC)
TEAMS = ["claims", "contact-centre", "agency", "policy-admin", "travel-desk"]
ITEMS = ["policy_number", "address", "date_of_birth", "claim_photos", "bank_details"]


class _Story:
    """Emits the records of one customer's case, spread over a few days."""

    def __init__(self, rnd: random.Random, n: int, t: datetime, customers: int) -> None:
        self.rnd, self.n, self.t = rnd, n, t
        self.customer = f"C-{rnd.randrange(customers):07d}"
        self.case = f"K-{n:08d}"
        self.count = 0

    def rec(
        self, after_minutes: float, type_: str, channel: str, direction: str, **extra: Any
    ) -> dict[str, Any]:
        self.t += timedelta(minutes=after_minutes)
        self.count += 1
        record = {
            "id": f"{self.case}-{self.count:03d}",
            "occurred_at": self.t.isoformat(),
            "customer_id": self.customer,
            "case_id": self.case,
            "channel": channel,
            "direction": direction,
            "type": type_,
            "team": self.rnd.choice(TEAMS),
            **extra,
        }
        return record

    def records(self) -> Iterator[dict[str, Any]]:
        rnd, rec = self.rnd, self.rec
        story = rnd.random()
        if story < 0.35:  # an email thread, sometimes paused, sometimes late, sometimes spam
            yield rec(0, "message", "email", "inbound")
            if rnd.random() < 0.05:
                yield rec(
                    rnd.uniform(5, 600), "closed", "web", "internal", attributes={"reason": "spam"}
                )
                return
            if rnd.random() < 0.15:
                yield rec(
                    rnd.uniform(30, 240),
                    "status",
                    "web",
                    "internal",
                    attributes={"status": "waiting_on_customer"},
                )
                yield rec(rnd.uniform(60, 3000), "message", "email", "inbound")
            yield rec(rnd.lognormvariate(6, 1.1), "message", "email", "outbound")
        elif story < 0.55:  # Ask Once: information given, sometimes asked for again
            item = rnd.choice(ITEMS)
            yield rec(
                0,
                "info_provided",
                rnd.choice(["phone", "web", "chat"]),
                "inbound",
                attributes={"item": item},
            )
            again = item if rnd.random() < 0.1 else rnd.choice([i for i in ITEMS if i != item])
            yield rec(
                rnd.uniform(60, 20_000),
                "info_requested",
                rnd.choice(["email", "phone", "sms"]),
                "outbound",
                attributes={"item": again},
            )
        elif story < 0.70:  # a case passed between teams
            for _ in range(rnd.choice([1, 1, 2, 2, 3, 4])):
                yield rec(rnd.uniform(30, 5000), "handoff", "other", "internal")
            yield rec(rnd.uniform(30, 600), "resolved", "other", "internal")
        elif story < 0.82:  # a survey; detractors should get a follow-up
            nps = rnd.randrange(11)
            yield rec(0, "survey_response", "web", "inbound", attributes={"nps": nps})
            if rnd.random() < 0.7:
                yield rec(rnd.uniform(60, 4000), "call", "phone", "outbound")
        elif story < 0.92:  # a promised callback
            yield rec(0, "callback_promised", "phone", "outbound")
            if rnd.random() < 0.1:
                yield rec(rnd.uniform(10, 100), "callback_cancelled", "phone", "internal")
            else:
                yield rec(rnd.lognormvariate(4.3, 0.8), "call", "phone", "outbound")
        elif story < 0.96:  # the travel guarantee
            yield rec(0, "problem_reported", rnd.choice(["app", "phone"]), "inbound")
            if rnd.random() < 0.08:
                yield rec(rnd.uniform(10, 200), "booking_cancelled", "app", "inbound")
            else:
                yield rec(rnd.lognormvariate(5.0, 0.7), "resolved", "app", "internal")
        else:  # a complaint, resolved within about three business days (complaint-3bd)
            yield rec(0, "complaint", rnd.choice(["email", "phone", "branch"]), "inbound")
            yield rec(rnd.lognormvariate(8.2, 0.6), "complaint_resolved", "email", "outbound")


def history(records: int, seed: int = 7) -> list[dict[str, Any]]:
    """``records`` records in event-time order (occurred_at, then id)."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    n = 0
    # New cases arrive roughly every 30 seconds; each story is a few records long.
    while len(out) < records:
        start = START + timedelta(seconds=30 * n + rnd.uniform(0, 30))
        out.extend(_Story(rnd, n, start, customers=max(records // 3, 10)).records())
        n += 1
    del out[records:]
    out.sort(key=lambda r: (r["occurred_at"], r["id"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for record in history(args.records, args.seed):
        sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
