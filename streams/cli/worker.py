"""``segstream worker``: the pipeline. Faust and the app are imported only when it runs,
so that every other command starts without them."""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

from streams.cli.common import (
    Commands,
    add_connection,
    add_definitions,
    add_web_token,
    connection,
    env,
    load_definitions_file,
    non_negative,
    positive,
    seconds,
    token,
)
from streams.errors import UserError

STORES = ("rocksdb", "memory")
GUARANTEES = ("at-least-once", "exactly-once")


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """An argparse type accepting one of ``choices`` (also from the environment)."""
    def kind(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(
                f"must be one of {', '.join(choices)}, not {text!r}")
        return text

    return kind


store_kind = one_of(STORES)

_INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")


def instance_id(text: str) -> str:
    """A consumer group instance id: letters, digits, '.', '_', '-' (Kafka's own rule
    for names), at most 200 characters."""
    if not _INSTANCE_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"must be 1-200 letters, digits, '.', '_' or '-', not {text!r}")
    return text

__all__ = ["add_parser", "run_worker"]


def add_parser(commands: Commands) -> None:
    worker = commands.add_parser("worker", help="run the pipeline (the main job)",
                                 description="Consume interactions, keep customer state, "
                                 "emit segment changes and micro-moment triggers.")
    add_connection(worker)
    add_definitions(worker)
    worker.add_argument("--data-dir", type=Path, default=env("DATA_DIR", "segstream-data"),
                        help="the worker's own directory: its RocksDB tables live here, so "
                        "give each worker its own (SEGSTREAM_DATA_DIR)")
    worker.add_argument("--store", type=store_kind, default=env("STORE", "rocksdb"),
                        help="rocksdb (default): the tables on disk under --data-dir, and a "
                        "restart there reads only the changelog written since; memory: a "
                        "restart reads the whole changelog (SEGSTREAM_STORE)")
    worker.add_argument("--guarantee", type=one_of(GUARANTEES),
                        default=env("GUARANTEE", "at-least-once"),
                        help="at-least-once (default): a crash may repeat outputs, with "
                        "the same ids and values; exactly-once: each batch's outputs, "
                        "changelog records and offsets commit in one Kafka transaction, "
                        "so read_committed consumers see every change_id and trigger_id "
                        "once (SEGSTREAM_GUARANTEE; needs the transactional-id ACLs)")
    worker.add_argument("--web-host", default=env("WEB_HOST", "127.0.0.1"),
                        help="address of the worker's HTTP API (SEGSTREAM_WEB_HOST)")
    worker.add_argument("--web-advertise", default=env("WEB_ADVERTISE", None),
                        metavar="HOST",
                        help="where the other workers reach this one's HTTP API, for "
                        "the profile requests they forward (SEGSTREAM_WEB_ADVERTISE; "
                        "default: --web-host, or this machine's address when that is "
                        "0.0.0.0)")
    worker.add_argument("--web-port", type=int, default=int(env("WEB_PORT", 6066)),
                        help="port of the worker's HTTP API (/health, /stats)")
    add_web_token(worker, "web-token", "every path of the HTTP API but /health then "
                  "needs 'Authorization: Bearer TOKEN'; give all workers the same one")
    add_web_token(worker, "metrics-token", "/metrics then needs this token (without it "
                  "/metrics is open, even with --web-token)")
    worker.add_argument("--web-cert", type=Path, default=env("WEB_CERT", None),
                        metavar="FILE",
                        help="serve the HTTP API over TLS with this PEM certificate (its "
                        "chain after it) (SEGSTREAM_WEB_CERT)")
    worker.add_argument("--web-key", type=Path, default=env("WEB_KEY", None),
                        metavar="FILE",
                        help="the certificate's PEM private key (SEGSTREAM_WEB_KEY; "
                        "default: in --web-cert)")
    worker.add_argument("--web-ca", type=Path, default=env("WEB_CA", None), metavar="FILE",
                        help="the CA (PEM) that signed the other workers' certificates, "
                        "trusted when a profile request is forwarded to one "
                        "(SEGSTREAM_WEB_CA; default: the system's CAs)")
    worker.add_argument("--partitions", type=int, default=int(env("PARTITIONS", 3)),
                        help="partitions of the topics it creates (default 3)")
    worker.add_argument("--replication-factor", type=positive,
                        default=int(env("REPLICATION_FACTOR", 1)),
                        help="replicas of the topics it creates (default 1; use 3 on a "
                        "real cluster)")
    worker.add_argument("--clock", choices=("live", "event"), default=env("CLOCK", "live"),
                        help="live: event time or wall clock, whichever is later; "
                        "event: event time only (deterministic replays)")
    worker.add_argument("--max-event-bytes", type=int, default=64 * 1024,
                        help="larger records go to the dead-letter topic (default 65536)")
    worker.add_argument("--linger-ms", type=int, default=int(env("LINGER_MS", 1)),
                        help="how long the producer waits to batch output and changelog "
                        "records (SEGSTREAM_LINGER_MS, default 1): more batches fewer, "
                        "larger requests at the cost of that much latency")
    worker.add_argument("--model-checkpoint-updates", type=positive, default=1000,
                        help="checkpoint a partition's models after this many updates "
                        "(default 1000)")
    worker.add_argument("--model-checkpoint-seconds", type=float, default=30.0,
                        help="... or this long after an update (default 30)")
    worker.add_argument("--no-models", dest="models", action="store_false",
                        help="run without the online models: the model features are "
                        "null (to measure their cost, or for definitions that read none)")
    worker.add_argument("--session-timeout", type=seconds,
                        default=env("SESSION_TIMEOUT", "15"),
                        help="seconds without a heartbeat before the group gives a worker's "
                        "partitions to the others (SEGSTREAM_SESSION_TIMEOUT, default 15)")
    worker.add_argument("--group-instance-id", type=instance_id,
                        default=env("GROUP_INSTANCE_ID", None), metavar="ID",
                        help="static group membership (Kafka's KIP-345): a worker that "
                        "comes back with the same ID within --session-timeout, after a "
                        "crash or a restart, gets its partitions back at once instead of "
                        "waiting for its old session to expire and a rebalance; give "
                        "each worker its own stable ID (e.g. a StatefulSet pod's name) "
                        "and keep its --web-port and --web-advertise. A worker that "
                        "stops does not leave the group: the others take its partitions "
                        "only after the session timeout (SEGSTREAM_GROUP_INSTANCE_ID; "
                        "default: none, dynamic membership)")
    worker.add_argument("--standby-replicas", type=non_negative,
                        default=env("STANDBY_REPLICAS", "1"),
                        help="other workers keep this many warm copies of each partition's "
                        "customer table, read from its changelog, so a takeover restores "
                        "only the tail (SEGSTREAM_STANDBY_REPLICAS, default 1; 0 saves "
                        "their memory and reads)")
    worker.add_argument("--allow-mixed-definitions", action="store_true",
                        default=env("ALLOW_MIXED_DEFINITIONS", "") not in ("", "0"),
                        help="join a group whose running workers evaluate another "
                        "definitions version (while rolling a new file out; otherwise "
                        "the worker stops: SEGSTREAM_ALLOW_MIXED_DEFINITIONS)")
    worker.add_argument("--loglevel", default=env("LOGLEVEL", "warning"))
    worker.set_defaults(run=run_worker)


def lock_data_dir(path: Path) -> IO[str]:
    """Hold ``path`` for this worker for as long as the returned file stays open.

    Two workers on one data directory would share RocksDB files that each opens for
    itself (Faust waits 30 s for the lock, then fails with a traceback): this says
    so at once, in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        lock = (path / "worker.lock").open("a+")
    except OSError as exc:
        raise UserError(f"cannot use --data-dir {path}: {exc.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise UserError(f"--data-dir {path} is in use by another worker (pid {holder}): "
                        "give each worker its own") from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def run_worker(args: argparse.Namespace) -> int:
    import faust

    from streams import faust_internals, web_auth
    from streams.app import create_app
    from streams.client.acls import check_access
    from streams.client.group import check_definitions
    from streams.client.topics import ensure_topics

    faust_internals.check()  # before any connection: a one-line error naming the attribute

    settings = dataclasses.replace(
        connection(args), data_dir=args.data_dir, store=args.store, web_host=args.web_host,
        web_port=args.web_port, web_advertise=args.web_advertise, partitions=args.partitions,
        clock=args.clock, replication_factor=args.replication_factor,
        max_event_bytes=args.max_event_bytes, linger_ms=args.linger_ms,
        loglevel=args.loglevel, checkpoint_updates=args.model_checkpoint_updates,
        checkpoint_seconds=args.model_checkpoint_seconds, models=args.models,
        session_timeout=args.session_timeout, standby_replicas=args.standby_replicas,
        web_token=token(args, "web-token"), metrics_token=token(args, "metrics-token"),
        web_cert=args.web_cert, web_key=args.web_key, web_ca=args.web_ca,
        guarantee=args.guarantee, group_instance_id=args.group_instance_id)
    web_auth.check(settings)  # a bad certificate in one line, before any connection
    definitions = load_definitions_file(args.definitions)
    lock = lock_data_dir(settings.data_dir)  # noqa: F841 - held until the process exits
    partitions = ensure_topics(settings)
    check_access(settings)  # a missing ACL in one line: Faust would wait for it forever
    if not args.allow_mixed_definitions:
        check_definitions(settings, definitions.version, args.definitions)
    app = create_app(settings, definitions, partitions)
    worker = faust.Worker(app, loglevel=settings.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
