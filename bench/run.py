#!/usr/bin/env python3
"""Runs the muster benchmarks: every peer on every workload, interleaved, one process per
measurement, then prints a table per workload and writes the Markdown report and plots.

Order: for each workload, for each repetition, every peer once, the peer order rotated by one
at every repetition (A B C, B C A, ...). Every (workload, repetition, peer) is a fresh process
with a time limit; a peer that answers "unsupported" or "deadlock" is not asked again for that
workload. A timeout or crash is recorded, never waited for.

    python3 bench/run.py                        everything, 5 repetitions (what `make bench` runs)
    python3 bench/run.py --quick --reps 1       smoke run: smaller sizes, one repetition
    python3 bench/run.py --workloads W1,W5 --peers muster,tbb-arena --reps 3
    python3 bench/run.py --workloads P1,P2,P3 --reps 3   the process pools only
    python3 bench/run.py --from RAW.jsonl       rebuild tables/report from a recorded run

Raw results go to build/bench/results/raw-<time>.jsonl. A full run (all workloads, all peers,
not --quick) writes docs/benchmarks.md and docs/img/*.png; any other run writes its report next
to the raw file unless --report is given.
"""
import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import report  # noqa: E402  (bench/report.py)

DEFAULT_BIN = os.path.join(ROOT, "build", "bench", "bench", "muster_bench")
PYPEERS = os.path.join(HERE, "python", "pypeers.py")
# Workloads whose single repetitions spread the most on a shared machine (W5: one repetition's
# p99 ranged 15-75 us for the same pool; W9: CPU time at low load). They run `--noisy-factor`
# times the repetitions, every peer alike, so their medians compare pools, not moments.
NOISY_WORKLOADS = ("W5", "W9")

WORKLOADS = ["W1", "W2", "W3", "W4", "W4n", "W5", "W6", "W7", "W8a", "W8b", "W8io", "W9", "W10",
             "P1", "P2", "P3"]


def rel(path):
    """A path as shown to people: relative to the repository when inside it."""
    p = os.path.relpath(os.path.abspath(path), ROOT)
    return path if p.startswith("..") else p


def run_process(argv, timeout):
    """Runs argv in its own process group; returns (stdout, stderr, returncode or None on timeout)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return out, err, proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group: W10's measurement children too
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        return out, err, None


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def dpkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() or "not installed"
    except OSError:
        return "unknown (no dpkg-query)"


def machine_info(bin_argv, py_argv):
    cpuinfo = read_text("/proc/cpuinfo")
    models = [l.split(":", 1)[1].strip() for l in cpuinfo.splitlines() if l.startswith("model name")]
    mem_kb = 0
    for l in read_text("/proc/meminfo").splitlines():
        if l.startswith("MemTotal:"):
            mem_kb = int(l.split()[1])
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    info = {
        "cpu_model": models[0] if models else platform.processor() or "unknown",
        "logical_cpus": len(models) or os.cpu_count(),
        "nproc": nproc,
        "mem_gib": round(mem_kb / 1048576, 1),
        "kernel": platform.system() + " " + platform.release(),
        "loadavg_start": read_text("/proc/loadavg").split()[:3],
        "libtbb-dev": dpkg_version("libtbb-dev"),
        "libboost-dev": dpkg_version("libboost-dev"),
    }
    try:
        r = subprocess.run(bin_argv + ["--versions"], capture_output=True, text=True, check=True)
        info.update(json.loads(r.stdout))
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        info["versions_error"] = str(e)
    r = subprocess.run(py_argv[:1] + ["-c", "import platform; print(platform.python_version())"],
                       capture_output=True, text=True)
    info["python"] = r.stdout.strip() or "unknown"
    return info


def list_peers(argv):
    r = subprocess.run(argv + ["--list"], capture_output=True, text=True, check=True)
    return r.stdout.split()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma separated (default: all)")
    ap.add_argument("--peers", default="", help="comma separated peer names (default: all)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per (workload, peer); default 5")
    ap.add_argument("--noisy-factor", type=int, default=None,
                    help="W5 and W9 run this many times --reps (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smaller problem sizes (smoke run)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds per process (default 180)")
    ap.add_argument("--bin", default=DEFAULT_BIN, help="the muster_bench program")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the Python peers")
    ap.add_argument("--raw", help="where to write the raw JSON lines")
    ap.add_argument("--report", help="Markdown report to write (images go to img/ beside it)")
    ap.add_argument("--from", dest="from_raw", help="do not run; summarize this raw file")
    a = ap.parse_args()

    if a.from_raw:
        meta, records = report.load_raw(a.from_raw)
        report_path = a.report or os.path.splitext(a.from_raw)[0] + ".md"
        finish(meta, records, report_path)
        return 0

    if not os.path.exists(a.bin):
        print("muster_bench not found at %s: build it with `cmake --preset bench && "
              "cmake --build --preset bench` (or `make bench`)" % rel(a.bin), file=sys.stderr)
        return 1
    bin_argv = [a.bin]
    py_argv = [a.python, PYPEERS]
    peers = [(n, bin_argv) for n in list_peers(bin_argv)] + [(n, py_argv) for n in list_peers(py_argv)]
    all_peer_names = [n for n, _ in peers]
    if a.peers:
        keep = a.peers.split(",")
        unknown = [k for k in keep if k not in all_peer_names]
        if unknown:
            print("unknown peer(s): %s; known: %s" % (", ".join(unknown), ", ".join(all_peer_names)),
                  file=sys.stderr)
            return 2
        peers = [p for p in peers if p[0] in keep]
    workloads = a.workloads.split(",")
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        print("unknown workload(s): %s; known: %s" % (", ".join(unknown), ", ".join(WORKLOADS)),
              file=sys.stderr)
        return 2

    full = not a.quick and set(workloads) == set(WORKLOADS) and len(peers) == len(all_peer_names)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw_path = a.raw or os.path.join(ROOT, "build", "bench", "results", "raw-%s.jsonl" % stamp)
    if a.report:
        report_path = a.report
    elif full:
        report_path = os.path.join(ROOT, "docs", "benchmarks.md")
    else:
        report_path = os.path.splitext(raw_path)[0] + ".md"
    os.makedirs(os.path.dirname(os.path.abspath(raw_path)), exist_ok=True)

    meta = machine_info(bin_argv, py_argv)
    if a.noisy_factor is None:
        a.noisy_factor = 1 if a.quick else 3
    if a.noisy_factor < 1:
        print("--noisy-factor must be at least 1", file=sys.stderr)
        return 2
    meta.update({"kind": "meta", "reps": a.reps, "noisy_reps": a.reps * a.noisy_factor,
                 "noisy_workloads": [w for w in NOISY_WORKLOADS if w in workloads], "quick": a.quick, "workloads": workloads,
                 "peers": [n for n, _ in peers], "date": time.strftime("%Y-%m-%d %H:%M %Z"),
                 "timeout_s": a.timeout})
    print("peers: %s" % ", ".join(n for n, _ in peers), file=sys.stderr)
    print("raw results: %s" % rel(raw_path), file=sys.stderr)

    records = []
    t_start = time.time()
    with open(raw_path, "w") as out:
        out.write(json.dumps(meta) + "\n")
        for w in workloads:
            finished_for = set()  # peers that answered unsupported/deadlock: not asked again
            reps = a.reps * (a.noisy_factor if w in NOISY_WORKLOADS else 1)
            for rep in range(reps):
                k = rep % len(peers)
                for pos, (name, argv) in enumerate(peers[k:] + peers[:k]):
                    if name in finished_for:
                        continue
                    cmd = argv + [name, w] + (["--quick"] if a.quick else [])
                    t0 = time.time()
                    stdout, stderr, rc = run_process(cmd, a.timeout)
                    dt = time.time() - t0
                    lines = []
                    for l in stdout.splitlines():
                        if l.startswith("{"):
                            try:
                                lines.append(json.loads(l))
                            except ValueError:
                                pass
                    tail = stderr.strip()[-300:]
                    if rc is None:
                        lines.append({"peer": name, "workload": w, "status": "timeout",
                                      "detail": "killed after %.0f s" % a.timeout})
                    elif rc != 0:
                        lines.append({"peer": name, "workload": w, "status": "failed",
                                      "detail": "exit code %d: %s" % (rc, tail)})
                    elif not lines:
                        lines.append({"peer": name, "workload": w, "status": "failed",
                                      "detail": "no output: %s" % tail})
                    for d in lines:
                        d.update({"rep": rep, "order": pos, "ts": round(t0, 3), "secs": round(dt, 3)})
                        out.write(json.dumps(d) + "\n")
                        records.append(d)
                        if d.get("status") in ("unsupported", "deadlock"):
                            finished_for.add(name)
                    out.flush()
                    notes = "; ".join("%s: %s" % (d["status"], d.get("detail", ""))
                                      for d in lines if "status" in d)
                    print("%-4s rep %d  %-14s %6.1f s  %s" % (w, rep, name, dt, notes[:150]),
                          file=sys.stderr, flush=True)
        meta_end = {"kind": "meta_end", "duration_s": round(time.time() - t_start, 1),
                    "loadavg_end": read_text("/proc/loadavg").split()[:3]}
        out.write(json.dumps(meta_end) + "\n")
    meta.update(meta_end)
    finish(meta, records, report_path)
    print("raw results: %s" % rel(raw_path), file=sys.stderr)
    return 0


def finish(meta, records, report_path):
    summary = report.summarize(meta, records)
    print(report.console_tables(summary))
    img_dir = os.path.join(os.path.dirname(os.path.abspath(report_path)), "img")
    images = report.make_plots(summary, img_dir, HERE)
    md = report.markdown(summary, {k: os.path.relpath(v, os.path.dirname(os.path.abspath(report_path)))
                                   for k, v in images.items()})
    os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
    with open(report_path, "w") as f:
        f.write(md)
    print("report: %s%s" % (rel(report_path),
                            ("; plots: " + ", ".join(rel(p) for p in images.values())) if images else
                            " (no plots: matplotlib not found)"), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
