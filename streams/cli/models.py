"""``segstream models`` and ``segstream clusters``: the workers' online models
(:mod:`streams.client.models_view`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from streams.cli.common import Commands, add_worker_access, worker_access
from streams.client.models_view import (
    clusters_tables,
    collect,
    format_clusters,
    format_models,
    models_tables,
)
from streams.client.worker_api import default_worker
from streams.terminal import show

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["add_arguments", "add_parsers", "run_clusters", "run_models"]


def add_parsers(commands: Commands) -> None:
    models = commands.add_parser(
        "models", help="the online models: versions, progressive ROC AUC, BG/NBD fits",
        description="Ask the workers' web API (GET /models) for each partition's models.")
    add_arguments(models)
    models.set_defaults(run=run_models)
    clusters = commands.add_parser(
        "clusters", help="the discovered microsegments, described for a marketer",
        description="Ask the workers' web API (GET /clusters): each cluster's archetype, "
        "centre in plain feature values, size and top categories.")
    add_arguments(clusters)
    clusters.set_defaults(run=run_clusters)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--worker", action="append", default=None, metavar="URL",
                        help="a worker's web address; repeat for several workers "
                        "(default SEGSTREAM_WORKER_URL or http://127.0.0.1:6066)")
    add_worker_access(parser)
    parser.add_argument("--format", choices=("table", "json"), default=None,
                        help="table for people (default on a terminal), json for programs")


def _run(args: argparse.Namespace, path: str, fmt_table: Callable[[dict[str, Any]], str],
         rich_table: Callable[[dict[str, Any]], RenderableType], out: IO[str] | None) -> int:
    out = out or sys.stdout
    document = collect(args.worker or [default_worker()], path, worker_access(args))
    fmt = args.format or ("table" if out.isatty() else "json")
    if fmt == "json":
        print(json.dumps(document, indent=2), file=out)
    else:
        show(out, lambda: fmt_table(document), lambda: rich_table(document))
    return 0


def run_models(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    return _run(args, "/models", format_models, models_tables, out)


def run_clusters(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    return _run(args, "/clusters", format_clusters, clusters_tables, out)
