"""Which partition a keyed record goes to: Kafka's default partitioner, without Kafka.

The Java client, kafka-python and Faust send a record with a key to partition
``(murmur2(key) & 0x7fffffff) % partitions``: MurmurHash2 (32 bits, seed
``0x9747b28c``) over the key's bytes. The offline replay runs each customer on the
partition the worker would read it from, and the broker replay names that partition
itself, so both use :func:`partition_for`; a test checks :func:`murmur2` against
kafka-python's on many keys.

>>> murmur2(b"")
275646681
>>> [partition_for(key, 3) for key in (b"c-1", b"c-2", b"ana")]
[2, 1, 1]
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = ["murmur2", "partition_for", "partitioner"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as an unsigned 32-bit number, as Kafka computes it."""
    length = len(data)
    h = _SEED ^ length
    body = length & ~3
    for (k,) in _WORDS.iter_unpack(data[:body]):  # little-endian 4-byte words
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    if body < length:  # the last 1 to 3 bytes, as one little-endian number
        h = ((h ^ int.from_bytes(data[body:], "little")) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of ``partitions`` a record keyed ``key`` goes to."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partitioner(partitions: int) -> Callable[[bytes], int]:
    """:func:`partition_for` among ``partitions``, remembering each key's answer."""
    cache: dict[bytes, int] = {}

    def partition(key: bytes) -> int:
        found = cache.get(key)
        if found is None:
            found = cache[key] = partition_for(key, partitions)
        return found

    return partition
