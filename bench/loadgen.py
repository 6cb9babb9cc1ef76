"""A multi-process Python gRPC load generator (grpc.aio, pre-serialized requests).

Each process opens its own channel and runs ``concurrency`` coroutines that send the
given requests round-robin, closed-loop or paced to a total rate; latencies of every call
and the number of items acknowledged come back to the parent.
"""

import asyncio
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import numpy as np


@dataclass
class LoadResult:
    """What a load run did."""

    calls: int
    errors: int
    items: int
    seconds: float
    latencies_s: np.ndarray

    @property
    def rps(self) -> float:
        """Successful calls per second."""
        return (self.calls - self.errors) / self.seconds if self.seconds else 0.0

    @property
    def items_per_s(self) -> float:
        """Items (acknowledged reports) per second."""
        return self.items / self.seconds if self.seconds else 0.0

    def summary(self) -> dict:
        """Rates and latency percentiles (ms)."""
        lat = self.latencies_s * 1000
        pct = (lambda q: round(float(np.percentile(lat, q)), 3)) if lat.size else (lambda q: None)
        return {"calls": self.calls, "errors": self.errors, "items": self.items,
                "seconds": round(self.seconds, 2), "rps": round(self.rps, 1),
                "items_per_s": round(self.items_per_s, 1),
                "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": pct(100)}


def accepted_items(reply: bytes) -> int:
    """``accepted`` of a serialized ReportStepsBatchResponse."""
    from stepboard.v1 import ingest_pb2
    return ingest_pb2.ReportStepsBatchResponse.FromString(reply).accepted


def one_item(_reply: bytes) -> int:
    """Any successful unary call counts one item."""
    return 1


async def _drive(addr, method, requests, concurrency, duration_s, rate, count_items, timeout_s):
    latencies: list[float] = []
    state = {"calls": 0, "errors": 0, "items": 0}
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(addr, options=options) as channel:
        call = channel.unary_unary(method)
        end = time.monotonic() + duration_s
        interval = concurrency / rate if rate else 0.0

        async def worker(offset: int) -> None:
            i = offset
            next_at = time.monotonic() + (interval * offset / concurrency if rate else 0)
            while time.monotonic() < end:
                if rate:
                    pause = next_at - time.monotonic()
                    if pause > 0:
                        await asyncio.sleep(pause)
                    next_at += interval
                started = time.monotonic()
                try:
                    reply = await call(requests[i % len(requests)], timeout=timeout_s)
                    state["items"] += count_items(reply)
                    latencies.append(time.monotonic() - started)
                except grpc.RpcError:
                    state["errors"] += 1
                state["calls"] += 1
                i += concurrency

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return state, latencies


def _process(args, queue) -> None:
    state, latencies = asyncio.run(_drive(*args))
    queue.put((state, np.array(latencies)))


def run_load(
    addr: str, method: str, requests: list[bytes], *, processes: int, concurrency: int,
    duration_s: float, rate: float = 0.0, count_items: Callable[[bytes], int] = one_item,
    timeout_s: float = 10.0,
) -> LoadResult:
    """Runs the load; ``rate`` (calls/s over all processes, 0 = as fast as possible)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    per_rate = rate / processes if rate else 0.0
    workers = [
        ctx.Process(target=_process, args=((addr, method, requests[k::processes] or requests,
                                            concurrency, duration_s, per_rate, count_items,
                                            timeout_s), queue))
        for k in range(processes)
    ]
    started = time.monotonic()
    for w in workers:
        w.start()
    results = [queue.get(timeout=duration_s + 120) for _ in workers]
    for w in workers:
        w.join()
    seconds = min(time.monotonic() - started, duration_s + 0.5)
    return LoadResult(
        calls=sum(s["calls"] for s, _ in results), errors=sum(s["errors"] for s, _ in results),
        items=sum(s["items"] for s, _ in results), seconds=max(duration_s, 1e-9)
        if seconds >= duration_s else seconds,
        latencies_s=np.concatenate([lat for _, lat in results]) if results else np.array([]),
    )
