"""The workers' log reader never stops on a line longer than its buffer."""

import asyncio
import json

from tests.support.workers import lines


async def read_all(data: bytes, limit: int) -> list[bytes]:
    stream = asyncio.StreamReader(limit=limit)
    stream.feed_data(data)
    stream.feed_eof()
    return [line async for line in lines(stream, keep=16)]


async def test_a_huge_line_is_cut_and_the_lines_after_it_still_come() -> None:
    after = json.dumps({"message": "connected to the MQTT broker", "pid": 7}).encode()
    data = b"first\n" + b"x" * 300_000 + b"\n" + after + b"\nlast without newline"
    found = await read_all(data, limit=1024)
    assert found == [b"first\n", b"x" * 16 + b" [cut]\n", after + b"\n", b"last without newline"]


async def test_lines_within_the_buffer_come_whole() -> None:
    data = b"".join(f"line {n}\n".encode() for n in range(1000))
    found = await read_all(data, limit=64)
    assert found == [f"line {n}\n".encode() for n in range(1000)]
