"""Full garbage-collection pauses as a worker's state grows, with and without freezes.

    .venv/bin/python bench/gc_pauses.py [CUSTOMERS]   # default 60000

Runs the processor (default definitions, models on) over two synthetic events per new
customer, twice in child processes: plainly, and with the worker's
:class:`streams.heap.HeapSettler`. Prints the number of full collections, the longest
pause and the total time in full collections for each run.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
import warnings
from typing import Any


def run(customers: int, settle: bool) -> str:
    from run import SYNTHETIC_T0, synthetic_event  # bench/run.py: the same event mix

    from segments import Engine, Gate, MemoryStore, Processor, Source, load_default
    from streams.heap import HeapSettler

    warnings.simplefilter("ignore")  # SciPy's quadrature warnings, not ours to show
    pauses: list[float] = []
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(timed)
    settler = HeapSettler(slow_ms=20.0, schedule=lambda freeze: freeze())
    if settle:
        settler.install()
        settler.settle()
    processor = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False)
    for i in range(customers * 2):
        processor.process(synthetic_event(i, customers), Source("bench", 0, i),
                          SYNTHETIC_T0 + i * 1000)
    label = "with freezes" if settle else "plain"
    return (f"{label:<13} {customers:,} customers: {len(pauses)} full collections, "
            f"longest {max(pauses, default=0):.0f} ms, in all {sum(pauses):,.0f} ms"
            + (f", {settler.freezes} freezes" if settle else ""))


def main() -> None:
    if len(sys.argv) == 3:  # a child: one run, fresh heap
        print(run(int(sys.argv[1]), sys.argv[2] == "settle"), flush=True)
        return
    customers = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    for mode in ("plain", "settle"):
        subprocess.run([sys.executable, __file__, str(customers), mode], check=True)


if __name__ == "__main__":
    main()
