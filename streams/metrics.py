"""Prometheus metrics of the worker, at ``GET /metrics`` on its web port.

Counters and gauges are read from the processor's accounting when Prometheus scrapes
(a custom collector), so the event path pays nothing for them; only the processing
latency is observed per event, into a histogram.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from segments.processor import PartitionStats, Processor

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4"  # aiohttp adds the charset itself


class _ProcessorCollector(Collector):
    def __init__(self, processor: Processor, lag: Callable[[], dict[int, int]]) -> None:
        self.processor = processor
        self.lag = lag

    def collect(self) -> Iterator[Any]:
        stats: dict[int, PartitionStats] = dict(self.processor.stats)

        def per_partition(name: str, doc: str, read: Callable[[PartitionStats], int]) -> Any:
            family = CounterMetricFamily(name, doc, labels=["partition"])
            for partition, s in sorted(stats.items()):
                family.add_metric([str(partition)], read(s))
            return family

        yield per_partition("segstream_events_consumed", "Records read from interactions",
                            lambda s: s.consumed)
        yield per_partition("segstream_events_applied", "Events applied to customer state",
                            lambda s: s.applied)
        yield per_partition("segstream_events_duplicate", "Repeated event ids dropped",
                            lambda s: s.duplicates)
        yield per_partition("segstream_time_transitions", "Changes caused by the clock",
                            lambda s: s.time_transitions)
        yield per_partition("segstream_time_errors", "Customers whose time step failed "
                            "(a bug: the log has the traceback)", lambda s: s.time_errors)
        dead = CounterMetricFamily("segstream_events_dead_lettered",
                                   "Records sent to the dead-letter topic",
                                   labels=["reason"])
        changes = CounterMetricFamily("segstream_segment_changes",
                                      "Segment entries and exits", labels=["segment", "change"])
        triggers = CounterMetricFamily("segstream_triggers",
                                       "Micro-moment triggers by outcome (sent or the "
                                       "suppression reason)", labels=["moment", "outcome"])
        members = GaugeMetricFamily("segstream_segment_members",
                                    "Customers currently in each segment", labels=["segment"])
        totals: dict[str, dict[Any, int]] = {"dead": {}, "changes": {}, "triggers": {},
                                             "members": {}}
        for s in stats.values():
            for key, n in s.dead_lettered.items():
                totals["dead"][key] = totals["dead"].get(key, 0) + n
            for key, n in s.segment_changes.items():
                totals["changes"][key] = totals["changes"].get(key, 0) + n
            for key, n in s.triggers.items():
                totals["triggers"][key] = totals["triggers"].get(key, 0) + n
            for key, n in s.members.items():
                totals["members"][key] = totals["members"].get(key, 0) + n
        for reason, n in sorted(totals["dead"].items()):
            dead.add_metric([reason], n)
        for (segment, change), n in sorted(totals["changes"].items()):
            changes.add_metric([segment, change], n)
        for (moment, outcome), n in sorted(totals["triggers"].items()):
            triggers.add_metric([moment, outcome], n)
        for segment, n in sorted(totals["members"].items()):
            members.add_metric([segment], n)
        yield from (dead, changes, triggers, members)
        lag = GaugeMetricFamily("segstream_consumer_lag",
                                "Records of interactions not yet processed",
                                labels=["partition"])
        for partition, behind in sorted(self.lag().items()):
            lag.add_metric([str(partition)], behind)
        yield lag
        yield from self._models()

    def _models(self) -> Iterator[Any]:
        labels = CounterMetricFamily("segstream_model_labels",
                                     "Delayed labels learned by each online classifier",
                                     labels=["partition", "model"])
        auc = GaugeMetricFamily("segstream_model_roc_auc",
                                "Progressive ROC AUC of each classifier (rolling window)",
                                labels=["partition", "model"])
        loss = GaugeMetricFamily("segstream_model_log_loss",
                                 "Progressive log loss of each classifier",
                                 labels=["partition", "model"])
        refits = CounterMetricFamily("segstream_model_btyd_refits",
                                     "BG/NBD + Gamma-Gamma refits applied",
                                     labels=["partition"])
        for partition, models in self.processor.models_by_partition().items():
            document = models.metrics()
            for model in ("propensity", "churn"):
                values = document[model]
                key = [str(partition), model]
                labels.add_metric(key, values["labels"])
                if values["roc_auc"] is not None:
                    auc.add_metric(key, values["roc_auc"])
                if values["log_loss"] is not None:
                    loss.add_metric(key, values["log_loss"])
            refits.add_metric([str(partition)], document["btyd"]["refits"])
        yield from (labels, auc, loss, refits)


class Metrics:
    """The worker's registry: the collector plus the latency histogram."""

    def __init__(self, processor: Processor, lag: Callable[[], dict[int, int]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_ProcessorCollector(processor, lag))
        self.latency = Histogram(
            "segstream_processing_seconds", "Time to process one record, decode to outputs",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                     0.25, 1.0), registry=self.registry)
        self.clock = time.perf_counter

    def render(self) -> bytes:
        return generate_latest(self.registry)
