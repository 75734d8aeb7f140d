#!/usr/bin/env python3
"""A worker written in Python (standard library only) with its own task type.

It registers for `word_count` only, so the server sends it nothing else:
    {"text": "hola mundo"} -> {"words": 2}

    python3 worker.py --host 127.0.0.1 --port 9000 --threads 4

Copy it and add your own task types to TASKS. Wire format (docs/protocol.md): JSON
objects; we send one compact object per line and read them back to back.
  server -> worker  {"type":"REGISTERED","worker_id":"worker_3"}
                    {"type":"TASK","task_id":"..","task_type":"..","task_data":{..},"attempt":1}
                    {"type":"PING"}
  worker -> server  {"type":"WORKER_REGISTER","threads":4,"task_types":[..],"name":".."}
                    {"type":"RESULT","task_id":"..","attempt":1,"status":"success",
                     "result":{..},"worker_id":"worker_3","processing_time":0.0001}
                    {"type":"PONG"}
Other messages (such as CANCEL) are ignored: a task runs to the end, and the server
drops a result it no longer wants. On SIGINT/SIGTERM it stops taking tasks,
finishes and reports the ones it holds, then exits 0 (tasks the server sent after
that are requeued by the server when the connection closes).
"""
import argparse
import codecs
import json
import re
import select
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


class TaskError(Exception):
    """A task failure reported to the client as {"code": ..., "message": ...}."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def word_count(data):
    text = data.get("text")
    if not isinstance(text, str):
        raise TaskError("invalid_task_data", "'text' must be a string")
    return {"words": len(text.split())}


TASKS = {"word_count": word_count}   # task_type -> function(task_data) -> result


_SPACE = re.compile(r"[ \t\r\n]*")   # JSON whitespace
_JSON = json.JSONDecoder()


class Worker:
    def __init__(self, host, port, threads, name):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads)
        self.send_lock = threading.Lock()   # pool threads and the reader all send
        self.worker_id = None
        print(f"[WORKER] Conectado al servidor {host}:{port}", flush=True)
        self.send({"type": "WORKER_REGISTER", "threads": threads,
                   "task_types": sorted(TASKS), "name": name})

    def send(self, msg):
        data = (json.dumps(msg, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        with self.send_lock:
            self.sock.sendall(data)

    def run_task(self, task):
        """Runs on a pool thread; always answers, whatever the task does."""
        start = time.perf_counter()
        reply = {"type": "RESULT", "task_id": task.get("task_id")}
        if "attempt" in task:
            reply["attempt"] = task["attempt"]
        try:
            fn = TASKS.get(task.get("task_type"))
            if fn is None:
                raise TaskError("unknown_task_type", f"unknown task type {task.get('task_type')!r}")
            data = task.get("task_data")
            if not isinstance(data, dict):
                raise TaskError("invalid_task_data", "'task_data' must be an object")
            reply.update(status="success", result=fn(data))
        except TaskError as exc:
            reply.update(status="error", error={"code": exc.code, "message": str(exc)})
        except Exception as exc:  # a bug in a task must not kill the worker
            reply.update(status="error", error={"code": "internal", "message": repr(exc)})
        reply["worker_id"] = self.worker_id
        reply["processing_time"] = time.perf_counter() - start
        try:
            self.send(reply)
        except OSError as exc:
            print(f"[WORKER] no se pudo enviar {reply['task_id']}: {exc}", file=sys.stderr)

    def handle(self, msg):
        kind = msg.get("type")
        if kind == "TASK":
            self.pool.submit(self.run_task, msg)
        elif kind == "PING":
            self.send({"type": "PONG"})
        elif kind == "REGISTERED":
            self.worker_id = msg.get("worker_id")
            print(f"[WORKER] Registrado con ID: {self.worker_id}", flush=True)
            print(f"[WORKER] Pool de hilos: {self.threads} hilos", flush=True)
        elif kind == "ERROR":
            print(f"[WORKER] error del servidor: {msg}", file=sys.stderr, flush=True)

    def serve(self, wakeup):
        """Reads until the server closes (returns 1) or a signal arrives (returns 0)."""
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = ""
        while True:
            ready, _, _ = select.select([self.sock, wakeup], [], [])
            if wakeup in ready:
                return 0
            chunk = self.sock.recv(65536)
            if not chunk:
                print("[WORKER] el servidor cerró la conexión", file=sys.stderr, flush=True)
                return 1
            text += utf8.decode(chunk)
            # Objects back to back, with or without newlines, split anywhere.
            pos = 0
            while True:
                pos = _SPACE.match(text, pos).end()
                try:
                    msg, pos = _JSON.raw_decode(text, pos)
                except ValueError:
                    newline = text.find("\n", pos)
                    if newline < 0:
                        break                    # incomplete: wait for more bytes
                    print(f"[WORKER] línea inválida ignorada: {text[pos:newline][:200]!r}",
                          file=sys.stderr, flush=True)
                    pos = newline + 1
                    continue
                if isinstance(msg, dict):
                    self.handle(msg)
            text = text[pos:]

    def shutdown(self):
        self.pool.shutdown(wait=True)   # finish and report what we hold
        self.sock.close()


def main():
    parser = argparse.ArgumentParser(description="Python worker for the task server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--name", default="py-worker")
    args = parser.parse_args()

    # Signals only wake the reader up (through this socket); the pool is drained
    # in order afterwards instead of being interrupted at a random point.
    wakeup_r, wakeup_w = socket.socketpair()
    wakeup_w.setblocking(False)
    signal.set_wakeup_fd(wakeup_w.fileno(), warn_on_full_buffer=False)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)

    try:
        worker = Worker(args.host, args.port, args.threads, args.name)
    except OSError as exc:
        print(f"[WORKER] no se pudo conectar a {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        code = worker.serve(wakeup_r)
    except OSError as exc:
        print(f"[WORKER] conexión perdida: {exc}", file=sys.stderr)
        code = 1
    if code == 0:
        print("[WORKER] señal recibida: terminando las tareas en curso", flush=True)
    worker.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
