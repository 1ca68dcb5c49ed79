"""Worker settings: one frozen object, from flags or ``SEGSTREAM_*`` variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Settings"]


@dataclass(frozen=True, kw_only=True)
class Settings:
    bootstrap: str = "localhost:9092"
    topic_prefix: str = ""
    data_dir: Path = Path("segstream-data")
    # where the customer and model tables live: RocksDB files under data_dir (a restart
    # on the same disk reads only the changelog's tail) or memory (it reads it all)
    store: Literal["rocksdb", "memory"] = "rocksdb"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    partitions: int = 3
    replication_factor: int = 1
    clock: Literal["live", "event"] = "live"
    max_event_bytes: int = 64 * 1024
    max_future_ms: int = 24 * 3_600_000
    dedupe_window_ms: int = 24 * 3_600_000
    tick_seconds: float = 0.2
    linger_ms: int = 1
    session_timeout: float = 15.0  # seconds without a heartbeat before a rebalance
    standby_replicas: int = 1  # warm copies of each table partition on other workers
    # a partition's models are checkpointed after this many updates, or this long
    checkpoint_updates: int = 1000
    checkpoint_seconds: float = 30.0
    models: bool = True  # the online models (segments.models); off: their features are null
    loglevel: str = "warning"

    @property
    def app_id(self) -> str:
        return f"{self.topic_prefix}segstream"

    def topic(self, name: str) -> str:
        """The deployed name of a contract topic."""
        return f"{self.topic_prefix}{name}"

    @property
    def changelog_topic(self) -> str:
        return f"{self.app_id}-customers-changelog"
