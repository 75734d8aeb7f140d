#!/usr/bin/env python3
"""The scale curve (`make scale`): throughput as workers and client connections grow.

    scripts/scale.py [--bin build/bin] [--store memory] [--tasks 100000] [--reps 5]
                     [--workers 1,2,4,8,16,32,48] [--conns 1,10,50,100,200] [--deep-load 3200]
                     [--wide-inflight 256] [--sweeps workers,conns,conns-deep,conns-wide] [--no-floor]

Sweep 1: one servidor; workers (--threads 4 each) are added one by one up to each
count of --workers, and at each point sd-bench sends --tasks `reverse` tasks over one
connection with 256 in flight. Sweep 2 ("conns"): a fresh servidor with 3 workers;
sd-bench spreads about 256 tasks in flight over each count of --conns connections (at
least one per connection), so the offered load stays the same while each connection
carries less of it: at 200 connections each has one or two tasks out, and every task
costs its own read and write on both sides. Sweep 3 ("conns-deep"): the same server and
the same idea with --deep-load tasks in flight in all (3200: 16 per connection at 200),
so that each connection still pipelines (each run sends 20 x that many tasks, or
--tasks if more). Sweep 4 ("conns-wide"): the same server, and each connection is a client
like W1's, with --wide-inflight tasks (256) in flight of its own, so that the offered load
grows with the connections (51,200 tasks in flight at 200): this is the sweep that adds
clients, where the two before it divide one client's load among more connections (each
run sends 10 x the tasks in flight, or --tasks if more). Every result is checked by
sd-bench.

This VM's speed drifts by 20-30% within minutes (and a pass can run at half speed), so
the points are not measured one after the other, each --reps times in a row: the script
makes --reps passes, and each pass measures every point once (fresh servers and workers
for each pass), so that a slow minute lowers one run of every point rather than all runs
of one. Each point is given as the median of its --reps runs and as the best of them.

The verdict is read from the curve's shape, pass by pass: in each pass every point is
divided by the median of that pass's points, and a point's shape is the median of those
shares over the passes. A pass that ran at half speed then weighs no more than one at
full speed, and one run that was lucky does not set the best point. The sweep "does not
collapse" when its worst shape is at least 0.80 of its best. The same share is also
printed from the medians and from the best runs, for reference; the best run is a poor
estimate here, because runs can also come out fast: in six passes of one sweep that ran
at one speed, 10 x 256 gave 367-405k in four and 501k and 505k in two.

The floor: in each pass, the connection sweeps are run once more against sd-floor
(bench/sd_floor.cpp), a one-thread program that answers each TASK itself with the
project's decoder, task code and encoder: no workers, no dispatch, no store. It pays
only what any server here must pay per task to take a frame in and put a reply out over
loopback TCP, so it bounds every point from above, and its own share (worst point over
best) says how far the machine alone makes a sweep fall. With 256 tasks in flight spread
over 200 connections each batch of replies is one or two tasks, and a send and a recv
on each side per batch cost more CPU than everything else: the floor falls there too.
--no-floor skips it.

Readiness is read from the programs themselves (the server's startup line, each
worker's registration line), with deadlines; nothing sleeps to synchronise. Every process
started is stopped by its PID at the end. Exit status 0 when every run passed.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SERVER_READY = re.compile(r"Servidor iniciado en 127\.0\.0\.1:(\d+)")
WORKER_READY = re.compile(r"Registrado con ID: (worker_\d+)")
FLOOR_READY = re.compile(r"sd-floor listening on 127\.0\.0\.1:(\d+)")


class Proc:
    """A child whose merged output is collected by a thread (so it never blocks)."""

    def __init__(self, argv, log_path):
        self.log = open(log_path, "w")
        self.lines = []
        self.cond = threading.Condition()
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.popen.stdout:
            self.log.write(line)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, regex, timeout):
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    m = regex.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.popen.poll() is not None:
                    raise RuntimeError(f"{self.popen.args[0]}: no line matching {regex.pattern!r}")
                self.cond.wait(left)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.reader.join(10)  # it writes the last lines to the log; then the log may close
        self.log.close()


def run_bench(args, port, conns, inflight, tasks=None):
    tasks = tasks or args.tasks
    cmd = [os.path.join(args.bin, "sd-bench"), "--host", "127.0.0.1", "--port", str(port),
           "--type", "reverse", "--conns", str(conns), "--inflight", str(inflight),
           "--tasks", str(tasks), "--warmup", str(min(10000, tasks // 10)),
           "--timeout", "120s", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        raise RuntimeError(f"sd-bench failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(args, port, table, sweep, key, conns, inflight, tasks=None):
    """One counted run of a point, after one that is not counted: a fresh server or worker
    pays its first page faults and table growth there (the first run on a fresh server
    measured ~175k/s, the next ones ~205k/s), and the point is about steady state."""
    run_bench(args, port, conns, inflight, (tasks or args.tasks) // 5)
    r = run_bench(args, port, conns, inflight, tasks)
    table[sweep].setdefault(key, []).append((r["throughput"], r["latency_us"]["p99"]))
    return r["throughput"]


def curve_shape(rates):
    """{point: [rate in pass 1, pass 2, ...]} -> {point: shape}: in each pass, every point
    as a share of the median of that pass's points; a point's shape is the median of its
    shares over the passes (only passes that measured every point count)."""
    passes = min((len(r) for r in rates.values()), default=0)
    if passes == 0:
        return {}
    shares = {key: [] for key in rates}
    for k in range(passes):
        middle = statistics.median(r[k] for r in rates.values())
        for key, r in rates.items():
            shares[key].append(r[k] / middle)
    return {key: statistics.median(s) for key, s in shares.items()}


def start_server(args, logs, tag):
    argv = [os.path.join(args.bin, "servidor"), "--host", "127.0.0.1", "--port", "0",
            "--store", args.store if args.store != "sqlite" else f"sqlite:{logs}/{tag}.db",
            "--max-connections", "2000"]
    srv = Proc(argv, os.path.join(logs, f"{tag}-servidor.log"))
    return srv, int(srv.wait_for(SERVER_READY, 15).group(1))


def start_worker(args, port, logs, name):
    return Proc([os.path.join(args.bin, "worker"), "--host", "127.0.0.1", "--port", str(port),
                 "--threads", "4"], os.path.join(logs, f"{name}.log"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--store", default=os.environ.get("SD_STORE", "memory"),
                    help="the servers' --store (memory; 'sqlite' means a file in the logs folder)")
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workers", default="1,2,4,8,16,32,48")
    ap.add_argument("--conns", default="1,10,50,100,200")
    ap.add_argument("--deep-load", type=int, default=3200,
                    help="tasks in flight in all, spread over the connections, in the third sweep (0: skip it)")
    ap.add_argument("--wide-inflight", type=int, default=256,
                    help="tasks in flight per connection in the fourth sweep (0: skip it)")
    ap.add_argument("--sweeps", default="workers,conns,conns-deep,conns-wide",
                    help="which sweeps to run (their floors run with them unless --no-floor)")
    ap.add_argument("--no-floor", action="store_true", help="do not run the connection sweeps against sd-floor")
    ap.add_argument("--json", help="also write the points to this file")
    args = ap.parse_args()
    worker_counts = [int(x) for x in args.workers.split(",")]
    conn_counts = [int(x) for x in args.conns.split(",")]
    logs = tempfile.mkdtemp(prefix="sd-scale.")
    # sweep -> point -> [(rate, p99)], one entry per pass
    conn_sweeps = ("conns", "conns-deep", "conns-wide")
    runs = {"workers": {}, **{s: {} for s in conn_sweeps}, **{"floor-" + s: {} for s in conn_sweeps}}
    chosen = set(args.sweeps.split(","))
    if not chosen <= {"workers", *conn_sweeps}:
        ap.error(f"--sweeps: unknown {', '.join(sorted(chosen - {'workers', *conn_sweeps}))}")
    shapes = {"workers": {w: (1, 256) for w in worker_counts} if "workers" in chosen else {},
              "conns": {c: (c, max(1, -(-256 // c))) for c in conn_counts} if "conns" in chosen else {},
              "conns-deep": {c: (c, max(1, -(-args.deep_load // c))) for c in conn_counts}
              if args.deep_load > 0 and "conns-deep" in chosen else {},
              "conns-wide": {c: (c, args.wide_inflight) for c in conn_counts}
              if args.wide_inflight > 0 and "conns-wide" in chosen else {}}
    for sweep in conn_sweeps:
        shapes["floor-" + sweep] = shapes[sweep]
    deep_tasks = max(args.tasks, 20 * args.deep_load)  # 20 windows: filling and draining stay small

    def tasks_for(sweep, conns, inflight):
        if sweep.endswith("conns-deep"):
            return deep_tasks
        if sweep.endswith("conns-wide"):
            return max(args.tasks, 10 * conns * inflight)
        return None

    tags = {"conns": "c", "conns-deep": "d", "conns-wide": "x"}
    ok = True
    procs = []
    try:
        for rep in range(1, args.reps + 1):
            line = [f"pass {rep}/{args.reps}:"]
            if shapes["workers"]:
                srv, port = start_server(args, logs, f"workers-{rep}")
                procs = [srv]
                for target in shapes["workers"]:
                    while len(procs) - 1 < target:
                        procs.append(start_worker(args, port, logs, f"w{len(procs)}-{rep}"))
                    for w in procs[1:]:
                        w.wait_for(WORKER_READY, 60)
                    rate = measure(args, port, runs, "workers", target, 1, 256)
                    line.append(f"w{target}={rate / 1000:.0f}k")
                for p in reversed(procs):
                    p.stop()

            if any(shapes[sweep] for sweep in conn_sweeps):
                srv, port = start_server(args, logs, f"conns-{rep}")
                procs = [srv] + [start_worker(args, port, logs, f"c-w{i + 1}-{rep}") for i in range(3)]
                for w in procs[1:]:
                    w.wait_for(WORKER_READY, 60)
                for sweep in conn_sweeps:
                    for conns, (c, inflight) in shapes[sweep].items():
                        rate = measure(args, port, runs, sweep, conns, c, inflight, tasks_for(sweep, c, inflight))
                        line.append(f"{tags[sweep]}{conns}={rate / 1000:.0f}k")
                for p in reversed(procs):
                    p.stop()
                procs = []
            if not args.no_floor and any(shapes[sweep] for sweep in conn_sweeps):
                floor = Proc([os.path.join(args.bin, "sd-floor"), "--host", "127.0.0.1", "--port", "0"],
                             os.path.join(logs, f"floor-{rep}.log"))
                procs = [floor]
                port = int(floor.wait_for(FLOOR_READY, 15).group(1))
                for sweep in conn_sweeps:
                    for conns, (c, inflight) in shapes[sweep].items():
                        rate = measure(args, port, runs, "floor-" + sweep, conns, c, inflight,
                                       tasks_for(sweep, c, inflight))
                        line.append(f"f{tags[sweep]}{conns}={rate / 1000:.0f}k")
                floor.stop()
                procs = []
            print(" ".join(line), flush=True)
    except Exception as exc:  # reported, then the processes are stopped
        print(f"scale.py: {exc} (logs in {logs})", file=sys.stderr)
        ok = False
    finally:
        for p in reversed(procs):
            p.stop()

    table = {sweep: [] for sweep in runs}
    for sweep, points in runs.items():
        for key, got in points.items():
            conns, inflight = shapes[sweep][key]
            rate = statistics.median(r for r, _ in got)
            top = max(r for r, _ in got)
            p99 = statistics.median(p for _, p in got)
            entry = {"rate": rate, "best_rate": top, "p99_us": p99, "runs": [r for r, _ in got]}
            rates = f"{rate:10.0f} tasks/s (best {top:7.0f})  p99 {p99:8.0f} us"
            if sweep == "workers":
                entry = {"workers": key, **entry}
                print(f"workers={key:3d}  conns=1 x 256    {rates}")
            elif sweep.startswith("floor-"):
                entry = {"conns": key, "inflight_per_conn": inflight, **entry}
                print(f"sd-floor     conns={conns:3d} x {inflight:4d} {rates}  ({sweep})")
            else:
                entry = {"conns": key, "inflight_per_conn": inflight, **entry}
                print(f"workers=  3  conns={conns:3d} x {inflight:4d} {rates}  ({sweep})")
            table[sweep].append(entry)

    for sweep, points in runs.items():
        shape = curve_shape({key: [rate for rate, _ in got] for key, got in points.items()})
        for entry, key in zip(table[sweep], points):
            entry["shape"] = shape[key]

    for sweep in runs:
        pts = table[sweep]
        if pts:
            by_point = "  ".join(f"{p.get('conns', p.get('workers'))}: {p['shape']:.2f}" for p in pts)
            best = max(p["shape"] for p in pts)
            worst = min(p["shape"] for p in pts)
            verdict = "no collapse" if worst >= 0.8 * best else "COLLAPSE: below 0.80"
            if sweep.startswith("floor-"):
                verdict = "what the machine allows"
            print(f"{sweep} sweep, shape (each point over its pass's median, median over passes): {by_point}")
            print(f"{sweep} sweep: worst shape {worst:.2f} / best {best:.2f} = {worst / best:.3f} ({verdict})")
        for field, label in (("rate", "median of passes"), ("best_rate", "best of passes")):
            if not pts:
                continue
            best = max(p[field] for p in pts)
            worst = min(p[field] for p in pts)
            print(f"{sweep} sweep, {label}: best point {best:.0f}, worst {worst:.0f} tasks/s = "
                  f"{worst / best:.2f} of the best (for reference)")
    for sweep in conn_sweeps:
        ours = {p["conns"]: p["best_rate"] for p in table[sweep]}
        floor = {p["conns"]: p["best_rate"] for p in table["floor-" + sweep]}
        if ours and floor:
            shares = "  ".join(f"{c}: {ours[c] / floor[c]:.2f}" for c in ours if c in floor)
            print(f"{sweep}: servidor's best pass as a share of sd-floor's, by connections: {shares}")
    print(f"({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: --store {args.store}, "
          f"{args.tasks} reverse tasks per run, {args.reps} passes, {os.cpu_count()} CPUs)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
