"""Worker settings: one frozen object, from flags or ``SEGSTREAM_*`` variables."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from streams.kafka_config import KafkaConfig, Secret

__all__ = ["Settings"]


@dataclass(frozen=True, kw_only=True)
class Settings:
    bootstrap: str = "localhost:9092"
    # how to connect and authenticate (--kafka-config): PLAINTEXT unless a file says
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    topic_prefix: str = ""
    data_dir: Path = Path("segstream-data")
    # where the customer and model tables live: RocksDB files under data_dir (a restart
    # on the same disk reads only the changelog's tail) or memory (it reads it all)
    store: Literal["rocksdb", "memory"] = "rocksdb"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # where the other workers reach this one's HTTP API (profile requests are forwarded
    # to the key's owner); None: web_host, or this machine's address when that is a
    # wildcard (see web_url)
    web_advertise: str | None = None
    # who may read the HTTP API (streams/web_auth.py): a bearer token for every path
    # but /health, one of its own for /metrics (None: open); TLS from a PEM certificate
    # and key; the CA trusted when a profile request is forwarded to another worker
    web_token: Secret | None = field(default=None, repr=False)
    metrics_token: Secret | None = field(default=None, repr=False)
    web_cert: Path | None = None
    web_key: Path | None = None
    web_ca: Path | None = None
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
    # static group membership (KIP-345): a worker back with the same id within the
    # session timeout gets its partitions at once; None: dynamic membership
    group_instance_id: str | None = None
    # a partition's models are checkpointed after this many updates, or this long
    checkpoint_updates: int = 1000
    checkpoint_seconds: float = 30.0
    # at-least-once: outputs, then changelog, then offsets (a crash repeats outputs);
    # exactly-once: each batch's outputs, changelog records and offsets in one Kafka
    # transaction (streams/transactions.py)
    guarantee: Literal["at-least-once", "exactly-once"] = "at-least-once"
    models: bool = True  # the online models (segments.models); off: their features are null
    loglevel: str = "warning"

    @property
    def app_id(self) -> str:
        return f"{self.topic_prefix}segstream"

    @property
    def web_url(self) -> str:
        """The URL other workers forward requests to.

        A worker bound to every interface (``0.0.0.0``, as in a container) would
        otherwise advertise ``http://0.0.0.0:6066``, which each peer takes for itself.

        >>> Settings(web_host="127.0.0.1", web_port=7000).web_url
        'http://127.0.0.1:7000'
        >>> Settings(web_host="0.0.0.0", web_advertise="worker-2").web_url
        'http://worker-2:6066'
        >>> Settings(web_host="0.0.0.0").web_url != "http://0.0.0.0:6066"
        True
        >>> Settings(web_host="localhost", web_cert=Path("api.pem")).web_url
        'https://localhost:6066'
        """
        host = self.web_advertise or self.web_host
        if host in _WILDCARDS:
            try:  # in a container, its own address on the compose network
                host = socket.gethostbyname(socket.gethostname())
            except OSError:
                host = socket.gethostname()
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        scheme = "http" if self.web_cert is None else "https"
        return f"{scheme}://{host}:{self.web_port}"

    def topic(self, name: str) -> str:
        """The deployed name of a contract topic."""
        return f"{self.topic_prefix}{name}"

    @property
    def changelog_topic(self) -> str:
        return f"{self.app_id}-customers-changelog"


_WILDCARDS = ("", "0.0.0.0", "::")
