#!/usr/bin/env python3
"""The cost of durability (`make durability-cost`, issue 5): `cliente batch` throughput
with the SQLite store against the memory store, side by side.

    scripts/durability_cost.py [--bin build/bin] [--pairs 10] [--tasks 20000]

Each run: a fresh servidor (`--store memory`, or `--store sqlite:` in a fresh temporary
folder), 3 workers with `--threads 4`, then
`cliente --json batch --count N --type reverse`, whose every result is checked. The stores
alternate run by run, so that a machine whose speed drifts treats both alike. Prints each
run, then both medians and their ratio (the issue asks for at least 0.70).

Readiness is read from the programs' own lines, with deadlines; nothing sleeps to
synchronise. Exit status 0 when every run passed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale import SERVER_READY, WORKER_READY, Proc  # noqa: E402


def run_once(bin_dir, store, tasks, workdir):
    """One fresh system, one batch; returns tasks/s."""
    store_arg = "memory" if store == "memory" else "sqlite:" + os.path.join(workdir, "sd.db")
    procs = []
    try:
        server = Proc([os.path.join(bin_dir, "servidor"), "--host", "127.0.0.1", "--port", "0",
                       "--store", store_arg], os.path.join(workdir, "servidor.log"))
        procs.append(server)
        port = server.wait_for(SERVER_READY, 30).group(1)
        for i in range(3):
            w = Proc([os.path.join(bin_dir, "worker"), "--host", "127.0.0.1", "--port", port,
                      "--threads", "4"], os.path.join(workdir, f"worker{i}.log"))
            procs.append(w)
            w.wait_for(WORKER_READY, 30)
        out = subprocess.run([os.path.join(bin_dir, "cliente"), "--host", "127.0.0.1", "--port", port,
                              "--json", "batch", "--count", str(tasks), "--type", "reverse"],
                             capture_output=True, text=True, timeout=600, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"cliente exited {out.returncode}: {out.stderr.strip()[:300]}")
        result = json.loads(out.stdout)
        if result.get("completed") != tasks or result.get("failed") or result.get("lost"):
            raise RuntimeError(f"not every task succeeded: {out.stdout.strip()[:300]}")
        return float(result["throughput"])
    finally:
        for p in reversed(procs):
            p.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=20000)
    args = ap.parse_args()

    rates = {"memory": [], "sqlite": []}
    for i in range(args.pairs):
        for store in ("memory", "sqlite"):
            with tempfile.TemporaryDirectory(prefix="sd-durability-cost-") as workdir:
                rate = run_once(args.bin, store, args.tasks, workdir)
            rates[store].append(rate)
            print(f"pair {i + 1:2d} {store:6s} {rate:10.0f} tasks/s", flush=True)
    memory, sqlite = statistics.median(rates["memory"]), statistics.median(rates["sqlite"])
    print(f"median  memory {memory:10.0f} tasks/s")
    print(f"median  sqlite {sqlite:10.0f} tasks/s")
    print(f"sqlite / memory = {sqlite / memory:.3f} (issue 5 asks for at least 0.70)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
