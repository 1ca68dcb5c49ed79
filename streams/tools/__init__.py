"""The tools that need no broker: offline replay, the lift report, the simulator, the
importers, and what they share (the event-log reader, Kafka's partitioner).

Nothing here imports Kafka or Faust (``tests/test_boundaries.py`` checks it): each
tool runs on files, in this process, and is usable without the adapter.
"""
