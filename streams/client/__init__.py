"""The tools that talk to a broker (kafka-python) or to a worker (HTTP), never through
Faust: topic admin, the broker replay, ``tail``, the worker's web API client
(``profile``, ``models``, ``clusters``) and the demo.

Nothing here imports Faust, mode or aiokafka (``tests/test_boundaries.py`` checks it),
so these commands start quickly and work next to any worker.
"""
