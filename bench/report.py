"""Summaries of a benchmark run (bench/run.py): per-workload tables with median, min, max and the
ratio muster / peer, the targets table, the noise table, the Markdown report and the plots.

The thread-pool workloads (W1-W10) compare the peer "muster" (muster::thread_pool) with the
others; the process-pool workloads (P1-P3) compare "muster-proc" (muster::process_pool) with
Python's ProcessPoolExecutor ("py-ppe").

Every figure is a median over repetitions (one process each) unless it says min or max.
"""
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

GRAINS = [16, 64, 256, 1024, 4096, 16384, 65536]
CPP_PEERS = ["tbb-arena", "tbb-taskgroup", "asio", "std-async"]
TBB_PEERS = ["tbb-arena", "tbb-taskgroup"]
PY_PEERS = ["py-tpe", "py-ppe", "py-mp-tpool"]
PROCESS_WORKLOADS = ["P1", "P2", "P3"]
# Not peers but references: excluded from "best peer" comparisons, shown in the tables.
REFERENCE_PEERS = ["os-floor"]


def ref_peer(w):
    """The muster peer of workload w: the one the ratios and targets are about."""
    return "muster-proc" if w in PROCESS_WORKLOADS else "muster"

HI, LO = "hi", "lo"  # which direction is better for a metric

TITLES = {
    "W1": "W1 submit-with-future: 1,000,000 tasks, futures kept, 2 workers, 1 producer",
    "W2": "W2 fire-and-forget: 1,000,000 posts, then wait until idle, 2 workers",
    "W3": "W3 two producers x 500,000 posts, 2 workers",
    "W4": "W4 granularity sweep: one posted task per chunk, 2^24 doubles, 2 workers",
    "W4n": "W4n granularity sweep with the library's own parallel loop, one scheduling unit per chunk",
    "W5": "W5 wake-up latency from idle: one task per 1 ms, 2000 samples, microseconds",
    "W6": "W6 recursive fork-join: fib(25), cutoff 12, submit child + wait inside a worker",
    "W7": "W7 idle cost: CPU used by an idle 2-worker pool in 2 s",
    "W8a": "W8a submit-with-future, 100,000 tasks (Python parity)",
    "W8b": "W8b fire-and-forget, 100,000 tasks (Python parity)",
    "W8io": "W8io I/O-bound: 1000 tasks x sleep(1 ms) on 64 workers, wall ms (ideal ~16 ms)",
    "W9": "W9 low load: a 1 us task every 100 us for 0.5 s; CPU burnt beyond the useful work",
    "W10": "W10 memory per queued task: 1,000,000 trivial tasks queued behind busy workers",
    "P1": "P1 process pool round trip: one tiny task in flight per worker, 2 workers, microseconds",
    "P2": "P2 process pool throughput: map over 100,000 `square(int)` calls, 2 workers",
    "P3": "P3 process pool worker start: 4 workers, each running its first task; small parent, then a 1 GiB parent",
}

DESCRIPTIONS = {
    "W1": "One producer submits N tasks (task i returns `int(i) * 2`), keeps every future in a "
          "pre-reserved vector, then reads all results in order and checks their sum. Timed from the "
          "first submit to the last result. 10,000 warm-up tasks first.",
    "W2": "One producer posts N tasks, each a relaxed `fetch_add` on a shared counter, then waits until "
          "the pool is idle; the counter is checked. Timed from the first post to the return of the wait.",
    "W3": "Two producer threads, parked on a spin flag before timing, each post 500,000 W2 tasks to the "
          "same pool; timed from the release of the flag until both joined and the pool is idle.",
    "W4": "Task Bench-style METG: 2^24 doubles `d[i] = 1 + 0.25 i`; a chunk of G elements computes "
          "`sum += sqrt(d[i])` in a non-inlined function. T_seq is the median of 3 sequential runs in the "
          "same process. For each grain G, 2^24/G tasks are posted by one producer, the pool is waited "
          "for and the partial sums are added (timed, checked). Efficiency = T_seq / (2 T_par). METG-50 "
          "is the smallest G whose median efficiency is at least 0.5, also given as the duration of one "
          "task (G x T_seq / 2^24).",
    "W4n": "As W4, but with the library's own parallel loop, one scheduling unit per chunk: muster "
           "`parallel_for(pool, 0, chunks, body, {.grain = 1})` (P workers plus the calling thread claim "
           "chunks); oneTBB `parallel_for(blocked_range(0, chunks, 1), body, simple_partitioner())` in "
           "the task group's arena (P-1 workers plus the calling thread).",
    "W5": "The pool is idle (warmed by one task). The producer sleeps until t0 + i ms (i = 1..2000), "
          "reads `steady_clock`, posts a task that records `steady_clock::now()` when it starts; latency "
          "= start - submit. Percentiles by nearest rank.",
    "W6": "`fib(n)` for n > 12 runs `fib(n-1)` as a child task, computes `fib(n-2)` inline, then waits "
          "for the child (n <= 12 is sequential). The root is submitted and awaited with a 5 s timeout, "
          "reported as deadlock. Then 3 warm-up and 20 timed runs; median reported. muster uses the "
          "plain pattern (`submit` + `result()` inside a worker: its waits run other tasks); oneTBB uses "
          "a `task_group` (cooperative wait); asio and std::async use `submit` + `get()`.",
    "W7": "A 2-worker pool runs 100 tiny tasks, then the main thread sleeps 2 s; CPU time of the "
          "process (getrusage, user + system) during the sleep, minus the main thread's own.",
    "W8a": "W1 with N = 100,000, so that the Python pools can take part.",
    "W8b": "W2 with N = 100,000. Python pools have no wait-until-idle: `shutdown(wait=True)` (or "
           "`close()` + `join()`) is inside the timed region.",
    "W8io": "A pool of 64 workers; 1000 tasks each sleeping 1 ms are posted, then waited for; wall "
            "time. One untimed identical batch first, so that lazily started threads exist. "
            "std::async is one thread per task (1000 threads).",
    "W9": "A 2-worker pool; the producer posts a task that spins for 1 us every 100 us (absolute "
          "deadlines) for 0.5 s, then waits until idle. Reported: CPU of the process (getrusage) minus "
          "the producer thread's (RUSAGE_THREAD) minus the tasks' own 1 us spins, as milliseconds and "
          "as % of one core over the run's wall time. This is the cost of spinning and waking at low load.",
    "W10": "In a fresh child process per measurement: every pool thread that takes posted tasks is "
           "occupied by a task waiting on a latch, then 1,000,000 trivial tasks without captures are "
           "queued (post, or submit with every future kept in a vector faulted in beforehand); the growth "
           "of the resident set (/proc/self/statm) divided by the number of tasks. The latch is then "
           "released and the pool drained. Includes each adapter's own wrapper (the outstanding-task "
           "counter's capture for tbb-arena and asio posts; `std::promise` state for oneTBB submits).",
    "P1": "A pool of 2 worker processes, started and warmed (200 round trips per client). Two client "
          "threads, one per worker, each submit one task `square(i)`, wait for its result and repeat, "
          "2000 times each; a sample is the time from the submit call to the result in the client. "
          "muster: `pool.submit<&square>(i).result()`; Python: `executor.submit(square, i).result()` "
          "from two `threading.Thread`s. Percentiles over both clients' samples, by nearest rank.",
    "P2": "A pool of 2 worker processes, warmed by an untimed map of 1000 inputs. Timed: a map of "
          "`square` over 0 .. 99,999 whose results are summed (and checked), first with chunks of 1 "
          "input (`{.chunksize = 1}`; `ProcessPoolExecutor.map`'s default), then chunked: muster with "
          "its automatic chunk size (ceil(n / (4 x workers)) capped at 1024, here 1024), Python with "
          "`chunksize=1024`, the same size.",
    "P3": "Timed from just before the pool's constructor (muster: `{.max_workers = 4, .lazy = false}`, "
          "workers spawned at once; Python: `ProcessPoolExecutor(4)`, whose workers start at the first "
          "submit) until each of 4 workers has started its first task: 4 tasks are submitted, each "
          "records `CLOCK_MONOTONIC` when it starts (comparable across processes) and then holds its "
          "worker 100 ms so that no worker takes two. Reported: the last start / 4 (ms per worker) and "
          "the first start, each the median of 5 pools in the process. Then the parent allocates "
          "and writes 1 GiB and the same is measured again. An untimed 1-worker pool runs first. muster's default "
          "start method: each pool `posix_spawn`s one fork server (no page-table copy of the parent), "
          "which forks the workers, so the timed figure includes that server's start; Python 3.11's "
          "default start method on Linux is `fork` of the parent, measured as is.",
}

# Per workload: the primary metric (shown as median, min, max), its direction, the other metrics
# (shown as median (min - max)), and the metrics given a muster / peer ratio column.
SIMPLE = {
    "W1": (("tasks_per_s", "tasks/s", HI), [("ns_per_task", "ns/task")], [("tasks_per_s", HI)]),
    "W2": (("tasks_per_s", "tasks/s", HI), [("ns_per_task", "ns/task")], [("tasks_per_s", HI)]),
    "W3": (("tasks_per_s", "tasks/s", HI), [("ns_per_task", "ns/task")], [("tasks_per_s", HI)]),
    "W5": (("p50_us", "p50 us", LO), [("p90_us", "p90 us"), ("p99_us", "p99 us"), ("max_us", "max us")],
           [("p50_us", LO), ("p99_us", LO), ("max_us", LO)]),
    "W6": (("ms_per_fib", "ms per fib(25)", LO), [("seq_ms", "sequential fib(25) ms")],
           [("ms_per_fib", LO)]),
    "W7": (("cpu_pct_of_core", "% of a core", LO), [("cpu_ms", "CPU ms in 2 s")], [("cpu_ms", LO)]),
    "W8a": (("tasks_per_s", "tasks/s", HI), [("ns_per_task", "ns/task")], [("tasks_per_s", HI)]),
    "W8b": (("tasks_per_s", "tasks/s", HI), [("ns_per_task", "ns/task")], [("tasks_per_s", HI)]),
    "W8io": (("wall_ms", "wall ms", LO), [], [("wall_ms", LO)]),
    "W9": (("overhead_pct_of_core", "overhead, % of a core", LO),
           [("overhead_cpu_ms", "overhead CPU ms"), ("pool_cpu_ms", "pool CPU ms"), ("useful_ms", "useful ms")],
           [("overhead_cpu_ms", LO)]),
    "W10": (("bytes_per_post", "bytes per post", LO), [("bytes_per_submit", "bytes per submit")],
            [("bytes_per_post", LO), ("bytes_per_submit", LO)]),
    "P1": (("p50_us", "p50 us", LO), [("p90_us", "p90 us"), ("p99_us", "p99 us"),
                                       ("round_trips_per_s", "round trips/s")],
           [("p50_us", LO), ("p99_us", LO)]),
    "P2": (("tasks_per_s_chunked", "tasks/s, chunked", HI),
           [("tasks_per_s_chunk1", "tasks/s, chunksize 1"), ("chunksize", "chunked: chunksize")],
           [("tasks_per_s_chunked", HI), ("tasks_per_s_chunk1", HI)]),
    "P3": (("ms_per_worker", "ms per worker", LO),
           [("ms_per_worker_1g", "ms per worker, 1 GiB parent"), ("first_ms", "first worker ms"),
            ("first_ms_1g", "first worker ms, 1 GiB parent")],
           [("ms_per_worker", LO), ("ms_per_worker_1g", LO)]),
}
ORDER = ["W1", "W2", "W3", "W4", "W4n", "W5", "W6", "W7", "W8a", "W8b", "W8io", "W9", "W10",
         "P1", "P2", "P3"]
NOISE_METRIC = {"W4": "eff_G4096", "W4n": "eff_G4096"}


# ---- loading and summarizing ---------------------------------------------------------------------

def load_raw(path):
    meta, records = {}, []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if d.get("kind") in ("meta", "meta_end"):
                meta.update(d)
            else:
                records.append(d)
    return meta, records


class Summary:
    def __init__(self, meta, records):
        self.meta = meta
        self.vals = collections.defaultdict(list)    # (w, peer, metric) -> values, one per rep
        self.status = collections.defaultdict(list)  # (w, peer) -> [(status, detail)]
        self.peers = []
        for d in records:
            p = d["peer"]
            if p not in self.peers:
                self.peers.append(p)
            if "status" in d:
                self.status[(d["workload"], p)].append((d["status"], d.get("detail", "")))
            else:
                self.vals[(d["workload"], p, d["metric"])].append(d["value"])
        for p in ("muster-proc", "muster"):  # muster first, then the order of the run
            if p in self.peers:
                self.peers.remove(p)
                self.peers.insert(0, p)
        self.reps = collections.Counter()
        for (w, p, _m), v in self.vals.items():
            self.reps[(w, p)] = max(self.reps[(w, p)], len(v))

    def has(self, w, p):
        return self.reps[(w, p)] > 0

    def values(self, w, p, m):
        return self.vals.get((w, p, m), [])

    def med(self, w, p, m):
        v = self.values(w, p, m)
        return statistics.median(v) if v else None

    def peers_for(self, w):
        out = []
        for p in self.peers:
            st = self.status.get((w, p), [])
            if self.has(w, p) or any(s != "unsupported" for s, _ in st):
                out.append(p)
        return out

    def unsupported(self, w):
        out = collections.OrderedDict()
        for p in self.peers:
            st = self.status.get((w, p), [])
            if st and not self.has(w, p) and all(s == "unsupported" for s, _ in st):
                out.setdefault(st[0][1], []).append(p)
        return out

    def problems(self, w, p):
        st = [(s, d) for s, d in self.status.get((w, p), []) if s != "unsupported"]
        if not st:
            return None
        kinds = collections.Counter(s for s, _ in st)
        return "%s: %s" % (", ".join("%s x%d" % kv for kv in kinds.items()), st[0][1])

    def metg(self, w, p):
        """(grain, microseconds per task) of METG-50, or None if no grain reaches 0.5."""
        for g in GRAINS:
            m = self.med(w, p, "eff_G%d" % g)
            if m is not None and m >= 0.5:
                nspe = self.med(w, p, "ns_per_elem")
                return g, (g * nspe / 1e3 if nspe else None)
        return None


def summarize(meta, records):
    return Summary(meta, records)


# ---- formatting ----------------------------------------------------------------------------------

def noisy_reps_note(m):
    """The extra repetitions of the noisiest workloads, as run.py recorded them (older raw files
    have none)."""
    noisy = m.get("noisy_workloads") or []
    if not noisy or m.get("noisy_reps", m.get("reps")) == m.get("reps"):
        return ""
    return " (%s: %s, the workloads whose single repetitions spread the most)" % (
        " and ".join(noisy), m["noisy_reps"])


def fmt(x):
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1e6:
        return "%.2f M" % (x / 1e6)
    if a >= 1e4:
        return "%.0f k" % (x / 1e3)
    if a >= 100:
        return "%.0f" % x
    if a >= 10:
        return "%.1f" % x
    if a >= 1:
        return "%.2f" % x
    if a < 5e-4:
        return "0"
    return "%.3g" % x


def cell(vals):
    if not vals:
        return "-"
    return "%s (%s - %s)" % (fmt(statistics.median(vals)), fmt(min(vals)), fmt(max(vals)))


def ratio_text(r):
    if r is None:
        return "-"
    return "%.2f" % r if r < 100 else "%.0f" % r


def ratio(s, w, p, m):
    mu, pe = s.med(w, ref_peer(w), m), s.med(w, p, m)
    if mu is None or pe is None or abs(pe) < 5e-3:
        return None
    return mu / pe


def direction_note(d):
    return "> 1: muster better" if d == HI else "< 1: muster better"


# ---- tables --------------------------------------------------------------------------------------

def simple_table(s, w):
    (pm, plabel, pdir), others, ratios = SIMPLE[w]
    head = ["peer", "reps", plabel + " median", "min", "max"]
    head += [lbl + " median (min - max)" for _m, lbl in others]
    head += ["muster / peer, %s (%s)" % (m.replace("_", " "), direction_note(d)) for m, d in ratios]
    if w == "W6":
        head.insert(2, "wait used")
    rows = []
    notes = []
    for p in s.peers_for(w):
        if s.has(w, p):
            v = s.values(w, p, pm)
            row = [p, str(s.reps[(w, p)]), fmt(statistics.median(v)) if v else "-",
                   fmt(min(v)) if v else "-", fmt(max(v)) if v else "-"]
            row += [cell(s.values(w, p, m)) for m, _l in others]
            row += ["-" if p == ref_peer(w) else ratio_text(ratio(s, w, p, m)) for m, _d in ratios]
            if w == "W6":
                coop = s.med(w, p, "cooperative")
                row.insert(2, "task_group (cooperative)" if coop else
                           ("submit + result() (helping wait)" if p == "muster" else "submit + get()"))
            rows.append(row)
        prob = s.problems(w, p)
        if prob:
            notes.append("%s: %s" % (p, prob))
            if not s.has(w, p):
                row = [p, "0", "**%s**" % prob.split(":")[0]] + [""] * (len(head) - 3)
                rows.append(row)
        n = s.med(w, p, "n_tasks")
        n_full = max((s.med(w, q, "n_tasks") or 0) for q in s.peers_for(w))
        if n is not None and n < n_full:
            notes.append("%s: N capped at %s tasks (thread per task; the others run %s)" % (p, fmt(n), fmt(n_full)))
        sm = s.med(w, p, "start_method")
        if w == "P3" and sm is not None:
            notes.append("%s: workers started with %s" % (
                p, "`fork` (Python's default start method on Linux up to 3.13)" if sm else
                "a start method other than `fork`"))
        rss = s.med(w, p, "parent_rss_mib")
        if w == "P3" and rss is not None:
            notes.append("%s: parent resident set during the 1 GiB measurement: %s MiB" % (p, fmt(rss)))
    return head, rows, notes


def grain_tables(s, w):
    head = ["peer", "reps", "T_seq ms"] + ["G=%d" % g for g in GRAINS] + ["METG-50", "muster / peer METG-50 (< 1: muster better)"]
    rows, notes = [], []
    mu_metg = s.metg(w, "muster")
    for p in s.peers_for(w):
        if s.has(w, p):
            row = [p, str(s.reps[(w, p)]), fmt(s.med(w, p, "tseq_ms"))]
            row += [cell(s.values(w, p, "eff_G%d" % g)) for g in GRAINS]
            mg = s.metg(w, p)
            row.append("not reached" if mg is None else "G=%d (%.2f us)" % (mg[0], mg[1] or 0))
            if p == "muster":
                row.append("-")
            elif mg is None:
                row.append("muster reaches it, peer does not" if mu_metg else "-")
            elif mu_metg is None:
                row.append("peer reaches it, muster does not")
            else:
                row.append(ratio_text(mu_metg[0] / mg[0]))
            rows.append(row)
            mg_min = s.med(w, p, "min_grain")
            if mg_min:
                notes.append("%s: grains below %d not run (thread per task)" % (p, mg_min))
        prob = s.problems(w, p)
        if prob:
            notes.append("%s: %s" % (p, prob))
    thead = ["peer"] + ["G=%d" % g for g in GRAINS]
    trows = [[p] + [cell(s.values(w, p, "tpar_ms_G%d" % g)) for g in GRAINS] for p in s.peers_for(w) if s.has(w, p)]
    return (head, rows, notes), (thead, trows)


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def console_tables(s):
    out = []
    for w in ORDER:
        if not s.peers_for(w):
            continue
        out.append("\n## " + TITLES[w])
        tables, notes = workload_tables(s, w)
        for caption, table in tables:
            if caption:
                out.append(caption)
            out.append(table)
        out += ["  note: " + n for n in notes]
        for reason, ps in s.unsupported(w).items():
            out.append("  not run: %s (%s)" % (", ".join(ps), reason))
    warn = capacity_warning(s)
    if warn:
        out.append("\n" + warn.replace("**", ""))
    tt = targets(s)
    if tt:
        out.append("\n## Targets")
        out.append(md_table(["workload", "target", "measured (medians)", "result"],
                            [[t["w"], t["target"], t["measured"], t["result"]] for t in tt]))
    return "\n".join(out)


# ---- targets -------------------------------------------------------------------------------------

def rx(r, threshold):
    """A ratio for the targets table: three decimals when it is within 2% of its threshold."""
    return ("%.3f" if abs(r / threshold - 1) < 0.02 else "%.2f") % r


def workload_tables(s, w):
    """The tables of workload w as [(caption or None, Markdown table)], and its notes."""
    if w in ("W4", "W4n"):
        (head, rows, notes), (thead, trows) = grain_tables(s, w)
        return [("Efficiency T_seq / (2 T_par), median (min - max)", md_table(head, rows)),
                ("T_par in ms, median (min - max)", md_table(thead, trows))], notes
    head, rows, notes = simple_table(s, w)
    return [(None, md_table(head, rows))], notes


def best(s, w, m, peers, d):
    cands = [(s.med(w, p, m), p) for p in peers if s.med(w, p, m) is not None]
    if not cands:
        return None, None
    return (max if d == HI else min)(cands)


def targets(s):
    out = []
    busy = capacity_warning(s) is not None

    def add(w, target, measured, ok):
        result = "n/a" if ok is None else ("met" if ok else "**missed**")
        if busy and w in ("W4", "W4n", "W5", "P1", "P3") and ok is not None:
            # Parallel efficiency and wake-up latency need free cores: see the warning.
            result = "inconclusive (machine busy; as measured: %s)" % ("met" if ok else "missed")
            ok = None
        out.append({"w": w, "target": target, "measured": measured, "result": result, "ok": ok})

    def mu(w, m):
        return s.med(w, "muster", m)

    # W1
    if s.peers_for("W1"):
        v, (b, bp) = mu("W1", "tasks_per_s"), best(s, "W1", "tasks_per_s", CPP_PEERS, HI)
        if v and b:
            add("W1", "tasks/s >= 2.0x best C++ peer",
                "muster %s/s vs %s %s/s: %sx" % (fmt(v), bp, fmt(b), rx(v / b, 2.0)), v / b >= 2.0)
    for w, peer, need in (("W2", "tbb-arena", 1.0), ("W2", "asio", 2.0), ("W3", "tbb-arena", 1.0)):
        v, pv = mu(w, "tasks_per_s"), s.med(w, peer, "tasks_per_s")
        if v and pv:
            add(w, "tasks/s >= %.1fx %s" % (need, peer),
                "muster %s/s vs %s/s: %sx" % (fmt(v), fmt(pv), rx(v / pv, need)), v / pv >= need)
    # W4: METG-50 grain <= best peer's
    if s.has("W4", "muster"):
        mg = s.metg("W4", "muster")
        peer_metgs = [(s.metg("W4", p), p) for p in s.peers_for("W4") if p != "muster" and s.has("W4", p)]
        reached = [(m[0], p) for m, p in peer_metgs if m]
        if reached:
            bg, bp = min(reached)
            ok = mg is not None and mg[0] <= bg
            add("W4", "METG-50 grain <= best peer's",
                "muster %s vs best %s G=%d" % ("G=%d (%.2f us)" % mg if mg else "not reached", bp, bg), ok)
        elif peer_metgs:
            add("W4", "METG-50 grain <= best peer's",
                "muster %s; no peer reaches 0.5" % ("G=%d" % mg[0] if mg else "not reached"), mg is not None or None)
    if s.has("W4n", "muster") and s.has("W4n", "tbb-taskgroup"):
        mg, tg = s.metg("W4n", "muster"), s.metg("W4n", "tbb-taskgroup")
        e_mu = s.med("W4n", "muster", "eff_G256")
        e_tb = s.med("W4n", "tbb-taskgroup", "eff_G256")
        ok = (mg is not None) and (tg is None or mg[0] <= tg[0])
        add("W4n", "METG-50 grain <= tbb::parallel_for's",
            "muster %s vs tbb %s (efficiency at G=256: %s vs %s)" % (
                "G=%d" % mg[0] if mg else "not reached", "G=%d" % tg[0] if tg else "not reached",
                fmt(e_mu), fmt(e_tb)), ok)
    # W5
    if s.has("W5", "muster"):
        others = [p for p in s.peers_for("W5") if p != "muster" and p not in REFERENCE_PEERS]
        for m, factor in (("p50_us", 1.0), ("p99_us", 1.0), ("max_us", 0.5)):
            v, (b, bp) = mu("W5", m), best(s, "W5", m, others, LO)
            floor = s.med("W5", "os-floor", m)
            if v is not None and b:
                add("W5", "%s <= %sbest peer's" % (m.split("_")[0], "" if factor == 1 else "%.1fx " % factor),
                    "muster %s us vs %s %s us: %sx%s" % (
                        fmt(v), bp, fmt(b), rx(v / b, factor),
                        "; OS floor (one futex wake, no pool) %s us" % fmt(floor) if floor is not None else ""),
                    v <= factor * b)
    # W6
    if s.peers_for("W6") and "muster" in s.peers_for("W6"):
        dead = any(st == "deadlock" for st, _ in s.status.get(("W6", "muster"), []))
        v, (b, bp) = mu("W6", "ms_per_fib"), best(s, "W6", "ms_per_fib", TBB_PEERS, LO)
        if dead or v is None:
            add("W6", "no deadlock; time <= 1.2x oneTBB", "muster: %s" % (s.problems("W6", "muster") or "no result"), False)
        elif b:
            add("W6", "no deadlock; time <= 1.2x oneTBB",
                "no deadlock; muster %s ms vs %s %s ms: %sx" % (fmt(v), bp, fmt(b), rx(v / b, 1.2)), v <= 1.2 * b)
    # W7
    v = mu("W7", "cpu_pct_of_core")
    if v is not None:
        add("W7", "idle CPU <= 0.1% of a core", "muster %.3f%% (%s ms in 2 s)" % (v, fmt(mu("W7", "cpu_ms"))), v <= 0.1)
    # W8
    for w in ("W8a", "W8b"):
        v, pv = mu(w, "tasks_per_s"), s.med(w, "py-tpe", "tasks_per_s")
        if v and pv:
            add(w, "tasks/s >= 50x ThreadPoolExecutor", "muster %s/s vs py-tpe %s/s: %.0fx" % (fmt(v), fmt(pv), v / pv),
                v / pv >= 50)
    if s.has("W8io", "muster"):
        others = [p for p in s.peers_for("W8io") if p != "muster"]
        v, (b, bp) = mu("W8io", "wall_ms"), best(s, "W8io", "wall_ms", others, LO)
        if v and b:
            add("W8io", "wall <= 1.05x best peer", "muster %s ms vs %s %s ms: %sx" % (fmt(v), bp, fmt(b), rx(v / b, 1.05)),
                v <= 1.05 * b)
    # W9
    v = mu("W9", "overhead_cpu_ms")
    if v is not None:
        for peer, f in (("tbb-arena", 0.3), ("asio", 1.5)):
            pv = s.med("W9", peer, "overhead_cpu_ms")
            if pv:
                floor = s.med("W9", "os-floor", "overhead_cpu_ms")
                add("W9", "CPU overhead <= %.1fx %s's" % (f, peer),
                    "muster %s ms vs %s ms: %sx%s" % (
                        fmt(v), fmt(pv), rx(v / pv, f),
                        "; OS floor (one futex wait and wake per task, no pool) %s ms" % fmt(floor)
                        if floor is not None else ""), v <= f * pv)
    # W10
    for m, lbl in (("bytes_per_post", "post"), ("bytes_per_submit", "submit, future kept")):
        v = mu("W10", m)
        if v is not None:
            add("W10", "<= 96 bytes per queued task beyond captures (%s)" % lbl,
                "muster %.1f bytes (task without captures)" % v, v <= 96)
    # P1-P3: muster::process_pool ("muster-proc") against ProcessPoolExecutor ("py-ppe")
    def proc(w, m):
        return s.med(w, "muster-proc", m)

    v, pv = proc("P1", "p50_us"), s.med("P1", "py-ppe", "p50_us")
    if v and pv:
        add("P1", "round trip p50 <= 0.5x ProcessPoolExecutor",
            "muster %s us vs py-ppe %s us: %sx" % (fmt(v), fmt(pv), rx(v / pv, 0.5)), v <= 0.5 * pv)
    v, pv = proc("P2", "tasks_per_s_chunked"), s.med("P2", "py-ppe", "tasks_per_s_chunk1")
    if v and pv:
        add("P2", "automatic-chunk map tasks/s >= 10x ProcessPoolExecutor.map (its default chunksize 1)",
            "muster %s/s vs py-ppe %s/s: %.0fx (muster with chunksize 1: %s/s; py-ppe with the same "
            "chunks: %s/s)" % (fmt(v), fmt(pv), v / pv, fmt(proc("P2", "tasks_per_s_chunk1")),
                               fmt(s.med("P2", "py-ppe", "tasks_per_s_chunked"))), v / pv >= 10)
    small, large = proc("P3", "ms_per_worker"), proc("P3", "ms_per_worker_1g")
    py_small, py_large = s.med("P3", "py-ppe", "ms_per_worker"), s.med("P3", "py-ppe", "ms_per_worker_1g")
    floor = proc("P3", "exec_floor_ms")
    floor_note = ("; OS floor: spawning this program until it exits, no pool, %s ms" % fmt(floor)
                  if floor is not None and floor > 0 else "")
    if small is not None:
        add("P3", "<= 1 ms per worker started", "muster %s ms (first worker %s ms)%s%s" % (
            fmt(small), fmt(proc("P3", "first_ms")),
            "; py-ppe %s ms" % fmt(py_small) if py_small is not None else "", floor_note), small <= 1.0)
    if large is not None:
        add("P3", "<= 1 ms per worker with a 1 GiB parent", "muster %s ms (first worker %s ms)%s" % (
            fmt(large), fmt(proc("P3", "first_ms_1g")),
            "; py-ppe %s ms" % fmt(py_large) if py_large is not None else ""), large <= 1.0)
    if small and large:
        py = " (py-ppe: %.2fx)" % (py_large / py_small) if py_small and py_large else ""
        add("P3", "start time independent of parent memory: 1 GiB / small <= 1.25",
            "muster %s ms vs %s ms: %sx%s" % (fmt(large), fmt(small), rx(large / small, 1.25), py),
            large <= 1.25 * small)
    return out


# ---- noise ---------------------------------------------------------------------------------------

def noise_rows(s):
    rows = []
    for w in ORDER:
        if w in SIMPLE:
            m = SIMPLE[w][0][0]
        elif w in NOISE_METRIC:
            m = NOISE_METRIC[w]
        else:
            continue
        # An idle pool's CPU is near zero: its spread is given in milliseconds, not relative.
        absolute = w == "W7"
        if absolute:
            m = "cpu_ms"
        spreads = []
        for p in s.peers_for(w):
            v = s.values(w, p, m)
            if len(v) < 2:
                continue
            if absolute:
                spreads.append((max(v) - min(v), p))
            elif statistics.median(v) != 0:
                spreads.append(((max(v) - min(v)) / abs(statistics.median(v)) * 100, p))
        if not spreads:
            continue
        unit = " ms" if absolute else "%"
        worst = max(spreads)
        mu = [x for x, p in spreads if p == ref_peer(w)]
        rows.append([w, m + (" (absolute)" if absolute else ""),
                     "%.2g%s" % (statistics.median(x for x, _ in spreads), unit) if absolute else
                     "%.0f%%" % statistics.median(x for x, _ in spreads),
                     ("%.2g%s (%s)" if absolute else "%.0f%% (%s)") % (worst[0], unit, worst[1]) if absolute
                     else "%.0f%% (%s)" % worst,
                     (("%.2g%s" % (mu[0], unit)) if absolute else "%.0f%%" % mu[0]) if mu else "-"])
    return rows


# ---- plots ---------------------------------------------------------------------------------------

def _has_matplotlib(python):
    try:
        return subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode == 0
    except OSError:
        return False


def find_plot_python():
    """An interpreter that can import matplotlib: this one, else the first python3 on PATH."""
    if _has_matplotlib(sys.executable):
        return sys.executable
    seen = set()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        cand = os.path.join(d, "python3")
        real = os.path.realpath(cand)
        if os.access(cand, os.X_OK) and real not in seen:
            seen.add(real)
            if _has_matplotlib(cand):
                return cand
    return None


def plot_data(s):
    def mmm(w, p, m):
        v = s.values(w, p, m)
        return [statistics.median(v), min(v), max(v)] if v else None

    data = {"grains": GRAINS, "W4": {}, "W4n": {}, "W5": {}, "throughput": {}, "ns_per_elem": None}
    nspe = [s.med(w, p, "ns_per_elem") for w in ("W4", "W4n") for p in s.peers_for(w) if s.has(w, p)]
    nspe = [x for x in nspe if x]
    data["ns_per_elem"] = statistics.median(nspe) if nspe else None
    for w in ("W4", "W4n"):
        for p in s.peers_for(w):
            if s.has(w, p):
                data[w][p] = {str(g): mmm(w, p, "eff_G%d" % g) for g in GRAINS}
    for p in s.peers_for("W5"):
        if s.has("W5", p):
            data["W5"][p] = {m: mmm("W5", p, m) for m in ("p50_us", "p90_us", "p99_us", "max_us")}
    for w in ("W1", "W2", "W3", "W8a", "W8b"):
        data["throughput"][w] = {p: mmm(w, p, "tasks_per_s") for p in s.peers_for(w) if s.has(w, p)}
    return data


def make_plots(s, img_dir, bench_dir):
    python = find_plot_python()
    if python is None:
        return {}
    os.makedirs(img_dir, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plot_data(s), f)
        data_path = f.name
    try:
        r = subprocess.run([python, os.path.join(bench_dir, "plot.py"), data_path, img_dir],
                           capture_output=True, text=True)
    finally:
        os.unlink(data_path)
    if r.returncode != 0:
        print("plotting failed: %s" % r.stderr.strip()[-500:], file=sys.stderr)
        return {}
    images = {}
    for line in r.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            images[k] = v
    return images


# ---- sanity ----------------------------------------------------------------------------------------

def capacity_warning(s):
    """A warning when the run could not use both cores: at the largest W4 grain every pool should
    be close to efficiency 1; a median near 0.5 means another load held one core."""
    effs = [s.med(w, p, "eff_G65536") for w in ("W4", "W4n") for p in s.peers_for(w) if s.has(w, p)]
    effs = [e for e in effs if e is not None]
    if not effs or statistics.median(effs) >= 0.7:
        return None
    return ("**Warning: this run did not get two free cores.** At the largest W4 grain (G = 65536, "
            "tasks of ~100 us) the median efficiency over all peers was %.2f, where an unloaded machine "
            "gives close to 1; the load average reached %s. Other jobs shared the machine, so the "
            "parallel figures (W4, W4n, and the tails of W5) measure that load as much as the pools: "
            "compare peers only against each other, and rerun on a quiet machine before drawing "
            "conclusions from them." % (statistics.median(effs), max(
                [float(x) for x in s.meta.get("loadavg_start", []) + s.meta.get("loadavg_end", [])] or [0])))


# ---- the Markdown report ---------------------------------------------------------------------------

def markdown(s, images):
    m = s.meta
    out = ["# Benchmarks: muster against oneTBB, Boost.Asio, std::async and Python's pools", ""]
    out.append("Generated by `make bench` (`python3 bench/run.py`; see `bench/README.md`). Every "
               "measurement is a fresh process; for each workload, each repetition runs every peer once, "
               "in an order rotated by one at every repetition, so all figures come from one interleaved "
               "run on the same machine. Cells are the median over repetitions with (min - max). "
               "\"muster / peer\" is the ratio of medians; each column says which direction favours muster.")
    out.append("")
    if m.get("quick"):
        out.append("**This is a `--quick` smoke run with reduced problem sizes; do not quote its figures.**\n")
    out.append("## Setup\n")
    setup = [
        ("Machine", "%s, %s logical CPUs, `nproc` = %s, %s GiB RAM, %s" % (
            m.get("cpu_model", "?"), m.get("logical_cpus", "?"), m.get("nproc", "?"), m.get("mem_gib", "?"),
            m.get("kernel", "?"))),
        ("Load average at start / end", "%s / %s (the machine is shared; other jobs may run)" % (
            " ".join(m.get("loadavg_start", [])), " ".join(m.get("loadavg_end", [])))),
        ("Compiler", m.get("compiler", "?")),
        ("Flags", "`%s` (CMake preset `bench`, Release), muster built with the same flags" % m.get("flags", "?")),
        ("oneTBB", "%s; Debian package libtbb-dev %s" % (m.get("tbb", "?"), m.get("libtbb-dev", "?"))),
        ("Boost.Asio", "Boost %s (header-only); Debian package libboost-dev %s" % (m.get("boost", "?"), m.get("libboost-dev", "?"))),
        ("Python", "CPython %s" % m.get("python", "?")),
        ("Repetitions", "%s per (workload, peer)%s, one process each; per-process limit %s s" % (
            m.get("reps", "?"), noisy_reps_note(m), fmt(m.get("timeout_s")))),
        ("Workers", "2 (P = 2) unless the workload says otherwise"),
        ("Date, duration", "%s; the whole run took %.1f min" % (
            m.get("date", "?"), (m.get("duration_s") or 0) / 60)),
    ]
    out.append(md_table(["item", "value"], [[a, b] for a, b in setup]))
    out.append("")
    warn = capacity_warning(s)
    if warn:
        out.append(warn + "\n")

    tt = targets(s)
    if tt:
        met = sum(1 for t in tt if t["ok"])
        decided = sum(1 for t in tt if t["ok"] is not None)
        out.append("## Targets\n")
        out.append("%d of %d met%s. Ratios are of medians; for throughput higher is better, for time, "
                   "latency, CPU and memory lower is better.\n" % (
                       met, decided, "" if decided == len(tt) else
                       " (%d more inconclusive on this run)" % (len(tt) - decided)))
        out.append(md_table(["workload", "target", "measured (medians)", "result"],
                            [[t["w"], t["target"], t["measured"], t["result"]] for t in tt]))
        out.append("")
        out.append("Why the targets that are missed on the reference machine are missed, with the "
                   "measurements (including the `os-floor` references): "
                   "[performance-notes.md](performance-notes.md).\n")

    out.append("## Results\n")
    for w in ORDER:
        if not s.peers_for(w):
            continue
        out.append("### " + TITLES[w] + "\n")
        out.append(DESCRIPTIONS[w] + "\n")
        tables, notes = workload_tables(s, w)
        for i, (caption, table) in enumerate(tables):
            if caption:
                out.append(("\n" if i else "") + caption + ":\n")
            out.append(table)
        out.append("")
        for n in notes:
            out.append("- " + n)
        for reason, ps in s.unsupported(w).items():
            out.append("- Not run: %s (%s)." % (", ".join(ps), reason))
        if notes or s.unsupported(w):
            out.append("")
        if w == "W4n" and "w4" in images:
            out.append("![W4 and W4n efficiency against grain size](%s)\n" % images["w4"])
        if w == "W5" and "w5" in images:
            out.append("![W5 wake-up latency percentiles](%s)\n" % images["w5"])
        if w == "W8b" and "throughput" in images:
            out.append("![Throughput, W1 W2 W3 W8a W8b](%s)\n" % images["throughput"])

    nr = noise_rows(s)
    if nr:
        out.append("## Noise between repetitions\n")
        out.append("Spread = (max - min) / median of the headline metric over the repetitions of each peer "
                   "(W4/W4n: efficiency at G = 4096).\n")
        out.append(md_table(["workload", "metric", "median spread over peers", "largest spread (peer)", "muster's spread"], nr))
        out.append("")

    out.append("## Peers\n")
    out.append(md_table(["peer", "construction", "submit (future)", "post", "wait until idle"], [
        ["muster", "`muster::thread_pool pool({.max_workers = P})`", "`pool.submit(f)` -> `muster::future`",
         "`pool.post(f)`", "`pool.wait_idle()`"],
        ["tbb-arena", "`tbb::task_arena(P, 0)` (P TBB workers, producer outside), "
         "`global_control(max_allowed_parallelism, P + 1)`", "`arena.enqueue` + `std::promise`",
         "`arena.enqueue(f)`", "outstanding-task counter"],
        ["tbb-taskgroup", "`tbb::task_arena(P, 1)` + `tbb::task_group` (P-1 TBB workers plus the caller)",
         "`tg.run` + `std::promise`", "`tg.run(f)` inside `arena.execute`", "`tg.wait()` in the arena"],
        ["asio", "`boost::asio::thread_pool(P)`", "`post(pool, use_future(f))`", "`post(pool, f)`",
         "outstanding-task counter"],
        ["std-async", "none: a thread per task", "`std::async(std::launch::async, f)`",
         "`std::thread(f).detach()`", "outstanding-task counter"],
        ["os-floor", "not a pool, a reference for W5 and W9: one thread in `futex(FUTEX_WAIT)`", "-",
         "store the callable, set the word, `futex(FUTEX_WAKE)`", "spin until the word is 0"],
        ["py-tpe", "`ThreadPoolExecutor(P)`", "`submit`", "`submit`, future dropped", "`shutdown(wait=True)`"],
        ["py-ppe", "`ProcessPoolExecutor(P)`", "`submit`", "`submit`, future dropped (counter in a "
         "`multiprocessing.Value`)", "`shutdown(wait=True)`"],
        ["py-mp-tpool", "`multiprocessing.pool.ThreadPool(P)`", "`apply_async`", "`apply_async`, result dropped",
         "`close()` + `join()`"],
    ]))
    out.append("")
    out.append("Process-pool workloads (P1-P3), same registered or module-level function on both sides:\n")
    out.append(md_table(["peer", "construction", "P1 round trip", "P2 map", "P3 start"], [
        ["muster-proc", "`muster::process_pool pool({.max_workers = P, .lazy = false})`; workers are forked "
         "by the pool's fork server, the benchmark program re-executed (`posix_spawn`) once per pool; "
         "its `main` calls `muster::init` first",
         "`pool.submit<&square>(i).result()`", "`pool.map<&square>(iota(0, n), {.chunksize = 1})`, then "
         "`pool.map<&square>(iota(0, n))` (automatic chunks)", "constructor to each worker's first task"],
        ["py-ppe", "`ProcessPoolExecutor(P)`, the platform's default start method",
         "`executor.submit(square, i).result()`", "`executor.map(square, range(n))`, then with "
         "`chunksize=1024`", "constructor to each worker's first task"],
    ]))
    out.append("")
    out.append("The outstanding-task counter costs the peers that need it one extra atomic read-modify-write "
               "per task. The thread-per-task rows (std-async) run at most 100,000 tasks per batch and W4 "
               "from G = 1024 up; with every future kept, libstdc++ runs out of threads after about 32,000 "
               "outstanding `std::async` calls, which is reported as failed, not worked around. The Python "
               "peers run W8a, W8b and W8io; py-ppe also runs the process-pool workloads P1-P3, the "
               "only ones muster-proc runs. os-floor runs W5 and W9 only: the wake-up of one sleeping "
               "thread by one system call, with nothing else, is what the kernel and the hypervisor cost "
               "here; no pool can do better, so it shows which part of a figure is the operating system's "
               "(on a shared virtual machine, the W5 maximum is mostly that).")
    out.append("")
    out.append("## Reproducing\n")
    out.append("`make bench` builds the `bench` preset and runs everything (%s repetitions%s). One workload "
               "or peer: `python3 bench/run.py --workloads W5 --peers muster,asio --reps 3`. One process: "
               "`build/bench/bench/muster_bench muster W1`. See `bench/README.md`." % (m.get("reps", 5), noisy_reps_note(m)))
    out.append("")
    return "\n".join(out)
