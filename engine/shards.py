"""Shards: how several workers split the scopes between them without waiting on each other.

Every scope (a scope field and its value) falls in one of :data:`SHARDS` shards by a stable
hash. The queue holds one row per record and shard it touches, so a worker that owns a range
of shards takes only its rows and judges only its scopes; the shard locks
(:func:`engine.storage.state_table.lock_shards`) keep two workers out of one shard should
their ranges ever overlap (a worker started by hand, a restart with another count).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rules.models import Catalog

SHARDS = 16
"""Shards of the scope space, and so the most workers that can share it."""


def shard(field: str, value: str) -> int:
    """The shard of the scope ``field`` = ``value``: the same in every process and release."""
    digest = hashlib.blake2b(f"{field}\x00{value}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % SHARDS


def shards_of(catalog: Catalog, pairs: Iterable[tuple[str, str]]) -> set[int]:
    """The shards of (promise id, scope value) ``pairs``; a promise not in ``catalog`` is
    judged by no worker, so its pairs have none."""
    promises = catalog.promises
    return {shard(promises[pid].scope, value) for pid, value in pairs if pid in promises}


@dataclass(frozen=True)
class Share:
    """One worker's share of the shards: the ``index``-th (from 1) of ``count`` equal ranges."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= SHARDS:
            raise ValueError(f"{self}: N, the number of workers, must be 1 to {SHARDS}")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"{self}: K, this worker's place, must be 1 to N ({self.count})")

    @classmethod
    def parse(cls, text: str) -> Share:
        """``"2/3"``: the second of three workers."""
        if not (found := re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)):
            raise ValueError(f"{text!r} is not K/N, e.g. 2/3")
        return cls(int(found[1]), int(found[2]))

    @property
    def shards(self) -> range:
        return range((self.index - 1) * SHARDS // self.count, self.index * SHARDS // self.count)

    @property
    def leads(self) -> bool:
        """Whether this worker also does the work of no scope in particular (objective
        alerts, retention, scopes released from quarantine): the first of the workers."""
        return self.index == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


EVERY = Share()
