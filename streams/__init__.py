"""The Kafka/Faust adapter: wiring only. The behaviour lives in :mod:`segments`."""
