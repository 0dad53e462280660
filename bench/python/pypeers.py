#!/usr/bin/env python3
"""Python's pools as benchmark peers, with the command line and JSON-lines output of
muster_bench:

    pypeers.py --list                    the peers, one per line
    pypeers.py PEER WORKLOAD [--quick]   one measurement, JSON lines on stdout

Peers (2 workers unless the workload says otherwise):
    py-tpe        concurrent.futures.ThreadPoolExecutor
    py-ppe        concurrent.futures.ProcessPoolExecutor (the platform's default start method)
    py-mp-tpool   multiprocessing.pool.ThreadPool

Workloads (the others answer "unsupported"):
    W8a   submit-with-future, N = 100,000: task i returns i * 2, every future is kept, then all
          results are read in order and summed (checked against N(N-1)).
    W8b   fire-and-forget, N = 100,000: each task increments a counter; Python pools have no
          "wait until idle", so the pool is shut down (shutdown(wait=True), or close() + join())
          inside the timed region; the counter is checked.
    W8io  1000 tasks each sleeping 1 ms on a pool of 64 workers, posted then waited for; one
          untimed identical batch first so that lazily started workers exist; wall time.
"""
import itertools
import json
import multiprocessing
import multiprocessing.pool
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures

PEER = "?"


def emit(workload, metric, value, unit):
    print(json.dumps({"peer": PEER, "workload": workload, "metric": metric,
                      "value": float("%.6g" % value), "unit": unit}), flush=True)


def emit_status(workload, status, detail):
    print(json.dumps({"peer": PEER, "workload": workload, "status": status, "detail": detail}),
          flush=True)


# Task bodies live at module level so that ProcessPoolExecutor can pickle them.
def times_two(i):
    return i * 2


_thread_counter = itertools.count()  # next() on a count is atomic under the GIL
_process_counter = None  # a multiprocessing.Value, inherited by the worker processes


def count_in_thread():
    next(_thread_counter)


def _set_process_counter(value):
    global _process_counter
    _process_counter = value


def count_in_process():
    with _process_counter.get_lock():
        _process_counter.value += 1


def sleep_1ms():
    time.sleep(0.001)


class Executor:
    """concurrent.futures executors: submit() -> Future, result(), shutdown(wait=True)."""

    def __init__(self, cls, workers, **kw):
        self.ex = cls(max_workers=workers, **kw)

    def submit(self, fn, *args):
        return self.ex.submit(fn, *args)

    def post(self, fn, *args):
        self.ex.submit(fn, *args)

    @staticmethod
    def result(fut):
        return fut.result()

    @staticmethod
    def wait_all(futs):
        wait_futures(futs)

    def close(self):
        self.ex.shutdown(wait=True)


class MpThreadPool:
    """multiprocessing.pool.ThreadPool: apply_async() -> AsyncResult, get(), close() + join()."""

    def __init__(self, workers, **kw):
        self.pool = multiprocessing.pool.ThreadPool(processes=workers)

    def submit(self, fn, *args):
        return self.pool.apply_async(fn, args)

    def post(self, fn, *args):
        self.pool.apply_async(fn, args)

    @staticmethod
    def result(res):
        return res.get()

    @staticmethod
    def wait_all(results):
        for r in results:
            r.wait()

    def close(self):
        self.pool.close()
        self.pool.join()


def make(peer, workers, counter=None):
    if peer == "py-tpe":
        return Executor(ThreadPoolExecutor, workers)
    if peer == "py-ppe":
        if counter is not None:
            return Executor(ProcessPoolExecutor, workers, initializer=_set_process_counter,
                            initargs=(counter,))
        return Executor(ProcessPoolExecutor, workers)
    return MpThreadPool(workers)


PEERS = ["py-tpe", "py-ppe", "py-mp-tpool"]


def submit_with_future(peer, n):
    pool = make(peer, 2)
    for f in [pool.submit(times_two, i) for i in range(1000)]:  # starts the workers
        pool.result(f)
    t0 = time.perf_counter()
    futs = [pool.submit(times_two, i) for i in range(n)]
    total = 0
    for f in futs:
        total += pool.result(f)
    dt = time.perf_counter() - t0
    pool.close()
    if total != n * (n - 1):
        emit_status("W8a", "check_failed", "sum of results is wrong")
        return
    emit("W8a", "tasks_per_s", n / dt, "1/s")
    emit("W8a", "ns_per_task", dt * 1e9 / n, "ns")
    emit("W8a", "n_tasks", n, "tasks")


def fire_and_forget(peer, n):
    global _thread_counter
    if peer == "py-ppe":
        shared = multiprocessing.Value("q", 0)
        pool = make(peer, 2, counter=shared)
        body = count_in_process
    else:
        shared = None
        pool = make(peer, 2)
        body = count_in_thread
    for f in [pool.submit(body) for _ in range(1000)]:  # starts the workers
        pool.result(f)
    if shared is not None:
        shared.value = 0
    else:
        _thread_counter = itertools.count()
    t0 = time.perf_counter()
    for _ in range(n):
        pool.post(body)
    pool.close()
    dt = time.perf_counter() - t0
    got = shared.value if shared is not None else next(_thread_counter)
    if got != n:
        emit_status("W8b", "check_failed", "counter %d != %d" % (got, n))
        return
    emit("W8b", "tasks_per_s", n / dt, "1/s")
    emit("W8b", "ns_per_task", dt * 1e9 / n, "ns")
    emit("W8b", "n_tasks", n, "tasks")


def io_bound(peer):
    pool = make(peer, 64)
    pool.wait_all([pool.submit(sleep_1ms) for _ in range(1000)])  # starts all 64 workers
    t0 = time.perf_counter()
    pool.wait_all([pool.submit(sleep_1ms) for _ in range(1000)])
    dt = time.perf_counter() - t0
    pool.close()
    emit("W8io", "wall_ms", dt * 1e3, "ms")


def main(argv):
    global PEER
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(PEERS))
        return 0
    quick = len(argv) == 4 and argv[3] == "--quick"
    if len(argv) not in (3, 4) or argv[1] not in PEERS or (len(argv) == 4 and not quick):
        print("usage: pypeers.py PEER WORKLOAD [--quick] | --list", file=sys.stderr)
        return 2
    PEER, workload = argv[1], argv[2]
    n = 20_000 if quick else 100_000
    if workload == "W8a":
        submit_with_future(PEER, n)
    elif workload == "W8b":
        fire_and_forget(PEER, n)
    elif workload == "W8io":
        io_bound(PEER)
    else:
        emit_status(workload, "unsupported", "Python peers run W8a, W8b and W8io only")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
