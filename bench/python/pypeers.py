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

Process-pool workloads (py-ppe only; the same as muster-proc's in bench/src/process_workloads.hpp):
    P1    round-trip latency: 2 workers, 2 client threads, each submits one square(i), waits
          for its result and repeats (200 warm-up, then 2000 timed round trips per thread).
    P2    throughput on tiny tasks: executor.map(square, range(100,000)) with chunksize 1 (its
          default), then with the chunk size muster's map picks for that input (1024); results
          summed and checked. One executor, warmed by an untimed map.
    P3    worker start: an executor of 4 workers is created and given 4 tasks that record
          time.monotonic_ns() when they start and hold their worker 100 ms; from just before
          the constructor to the last task's start, divided by 4; the median of 5 executors.
          Then again with 1 GiB allocated and written in the parent. The start method is the platform's default
          (fork on Linux with Python 3.11; forkserver from 3.14).
"""
import itertools
import json
import multiprocessing
import multiprocessing.pool
import os
import sys
import threading
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


def square(x):
    return x * x


def stamp_and_hold(hold_ms):
    """(pid, CLOCK_MONOTONIC ns) when the task starts; then holds the worker hold_ms."""
    now = time.monotonic_ns()
    time.sleep(hold_ms / 1000)
    return os.getpid(), now


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


# ---- process-pool workloads (py-ppe) -------------------------------------------------------------

def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def round_trip(quick, workers=2):
    n = 300 if quick else 2000
    warm = 50 if quick else 200
    ex = ProcessPoolExecutor(max_workers=workers)
    samples = [[] for _ in range(workers)]
    ready = threading.Barrier(workers + 1)

    def client(out):
        for i in range(warm):
            ex.submit(square, i).result()
        ready.wait()
        for i in range(n):
            t0 = time.perf_counter()
            r = ex.submit(square, i).result()
            out.append((time.perf_counter() - t0) * 1e6 if r == i * i else -1.0)

    threads = [threading.Thread(target=client, args=(samples[k],)) for k in range(workers)]
    for t in threads:
        t.start()
    ready.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    ex.shutdown(wait=True)
    us = sorted(x for v in samples for x in v)
    if not us or us[0] < 0:
        emit_status("P1", "check_failed", "a result is wrong")
        return

    def rank(q):
        return us[min(len(us) - 1, int(q * (len(us) - 1) + 0.5))]

    emit("P1", "p50_us", rank(0.50), "us")
    emit("P1", "p90_us", rank(0.90), "us")
    emit("P1", "p99_us", rank(0.99), "us")
    emit("P1", "round_trips_per_s", len(us) / dt, "1/s")


def map_throughput(quick, workers=2):
    n = 20_000 if quick else 100_000
    chunk = min(1024, -(-n // (4 * workers)))  # what muster's map picks for this input
    expect = sum(i * i for i in range(n))
    ex = ProcessPoolExecutor(max_workers=workers)
    sum(ex.map(square, range(1000)))  # starts the workers
    times = []
    for chunksize in (1, chunk):
        t0 = time.perf_counter()
        got = sum(ex.map(square, range(n), chunksize=chunksize))
        times.append(time.perf_counter() - t0)
        if got != expect:
            emit_status("P2", "check_failed", "sum of results is wrong")
            ex.shutdown(wait=True)
            return
    ex.shutdown(wait=True)
    emit("P2", "tasks_per_s_chunk1", n / times[0], "1/s")
    emit("P2", "tasks_per_s_chunked", n / times[1], "1/s")
    emit("P2", "chunksize", chunk, "inputs")
    emit("P2", "n_tasks", n, "tasks")


def start_workers(workers, hold_ms):
    """(first, last) ms from just before the constructor to each worker's first task starting;
    None if a worker ran two tasks (it started more than hold_ms after another)."""
    t0 = time.monotonic_ns()
    ex = ProcessPoolExecutor(max_workers=workers)
    futs = [ex.submit(stamp_and_hold, hold_ms) for _ in range(workers)]
    res = [f.result() for f in futs]
    ex.shutdown(wait=True)
    if len({pid for pid, _ in res}) != workers:
        return None
    ms = [(t - t0) / 1e6 for _, t in res]
    return min(ms), max(ms)


def start_time(quick, workers=4, hold_ms=100):
    rounds = 1 if quick else 5

    def median_of_rounds():  # the median of `rounds` executors, for each parent size
        runs = [start_workers(workers, hold_ms) for _ in range(rounds)]
        if any(r is None for r in runs):
            return None
        return (sorted(r[0] for r in runs)[rounds // 2], sorted(r[1] for r in runs)[rounds // 2])

    start_workers(1, 1)  # untimed: the interpreter and modules are loaded
    small = median_of_rounds()
    big = bytearray(b"\x01") * (1 << 30)  # memset: every page written
    rss = resident_bytes()
    large = median_of_rounds()
    del big
    if small is None or large is None:
        emit_status("P3", "check_failed", "a worker ran two tasks: it started more than the hold time late")
        return
    emit("P3", "ms_per_worker", small[1] / workers, "ms")
    emit("P3", "ms_per_worker_1g", large[1] / workers, "ms")
    emit("P3", "first_ms", small[0], "ms")
    emit("P3", "first_ms_1g", large[0], "ms")
    emit("P3", "all_ms", small[1], "ms")
    emit("P3", "all_ms_1g", large[1], "ms")
    emit("P3", "parent_rss_mib", rss / (1 << 20), "MiB")
    emit("P3", "workers", workers, "workers")
    emit("P3", "rounds", rounds, "pools per parent size")
    emit("P3", "start_method", 1 if multiprocessing.get_start_method() == "fork" else 0, "fork")


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
    elif workload in ("P1", "P2", "P3") and PEER == "py-ppe":
        {"P1": round_trip, "P2": map_throughput, "P3": start_time}[workload](quick)
    elif workload in ("P1", "P2", "P3"):
        emit_status(workload, "unsupported", "process-pool workloads: py-ppe only")
    else:
        emit_status(workload, "unsupported", "Python peers run W8a, W8b, W8io and (py-ppe) P1-P3 only")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
