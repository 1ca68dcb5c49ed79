"""The Kafka/Faust adapter: wiring only. The behaviour lives in :mod:`segments`.

The modules here are the worker (``app``, ``tables``, ``codecs``, ``checkpoints``,
``heap``, ``web``, ``metrics``, ``settings``); beside them, ``cli/`` is the command
line, ``tools/`` what needs no broker and ``client/`` what talks to a broker or a
worker without Faust.
"""
