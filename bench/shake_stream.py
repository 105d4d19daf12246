"""Deterministic bytes for generated benchmark inputs: the same on every host and Python version."""

import hashlib


class Stream:
    """SHAKE-256(seed, domain, block number), 1 MiB per block."""

    def __init__(self, seed, domain):
        self.prefix = seed + b"\0" + domain.encode() + b"\0"
        self.block = 0
        self.buffer = b""
        self.position = 0

    def take(self, n):
        if self.position + n > len(self.buffer):
            self.buffer = self.buffer[self.position:] + hashlib.shake_256(
                self.prefix + str(self.block).encode()).digest(1 << 20)
            self.block += 1
            self.position = 0
        chunk = self.buffer[self.position:self.position + n]
        self.position += n
        return chunk

    def uniform(self):
        return int.from_bytes(self.take(8), "little") / 2.0**64
