#!/usr/bin/env python3
"""A minimal client for the task server, Python standard library only. Copy it freely.

As a library:
    with Client("127.0.0.1", 9000) as c:
        print(c.run("hash", {"text": "Hola Mundo"}))             # one task, waits
        replies = c.run_many([("reverse", {"text": t}) for t in texts])  # pipelined

As a command (prints each reply as one JSON line; exit 1 if any task failed):
    python3 client.py --port 9000 hash "Hola Mundo"
    python3 client.py --port 9000 fibonacci 20
    python3 client.py --port 9000 --count 1000 reverse "hola mundo"
    python3 client.py --port 9000 sleep '{"ms": 50}'

Wire format (docs/protocol.md): JSON objects; we send one compact object per line,
and read objects back to back whatever the whitespace. Many tasks may be in flight
on one connection; replies come in completion order, carrying their task_id.
"""
import argparse
import codecs
import json
import re
import socket
import sys
import threading
import time
import uuid


_SPACE = re.compile(r"[ \t\r\n]*")   # JSON whitespace
_JSON = json.JSONDecoder()


class Client:
    """One connection to the server. Not thread-safe: use one Client per thread."""

    def __init__(self, host="127.0.0.1", port=9000, timeout=60.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text, self._pos = "", 0   # received text, parsed up to _pos
        self._early = {}         # replies that arrived while waiting for others

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def _abort(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def _task(task_type, task_data, options):
        task_id = uuid.uuid4().hex   # task ids are server-wide: make them unique
        msg = {"type": "TASK", "task_id": task_id, "task_type": task_type,
               "task_data": task_data, **options}
        return task_id, (json.dumps(msg, separators=(",", ":")) + "\n").encode()

    def submit(self, task_type, task_data, **options):
        """Sends one TASK without waiting; returns its task_id. `options` may hold
        priority, timeout_ms or max_retries."""
        task_id, data = self._task(task_type, task_data, options)
        self.sock.sendall(data)
        return task_id

    def next_reply(self):
        """The next message from the server (RESULT, or ERROR). Objects may come back
        to back, with or without newlines, split across reads in any way."""
        while True:
            pos = _SPACE.match(self._text, self._pos).end()
            try:
                reply, self._pos = _JSON.raw_decode(self._text, pos)
            except ValueError:
                if self._text.find("\n", pos) >= 0:   # a whole line that is not JSON
                    raise
            else:
                if not isinstance(reply, dict):
                    raise ValueError(f"server sent a non-object: {reply!r}")
                return reply
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self._text = self._text[self._pos:] + self._utf8.decode(chunk)
            self._pos = 0

    def wait_all(self, task_ids):
        """Reads until every task in `task_ids` has its reply; {task_id: reply}."""
        wanted = set(task_ids)
        replies = {t: self._early.pop(t) for t in wanted if t in self._early}
        while len(replies) < len(wanted):
            reply = self.next_reply()
            task_id = reply.get("task_id")
            if task_id in wanted:
                replies[task_id] = reply
            elif task_id is not None:
                self._early[task_id] = reply        # another caller's: keep it
            else:
                raise RuntimeError(f"server error: {reply}")
        return replies

    def run(self, task_type, task_data, **options):
        """Submits one task and waits for its reply."""
        task_id = self.submit(task_type, task_data, **options)
        return self.wait_all([task_id])[task_id]

    def run_many(self, tasks, **options):
        """Pipelines [(task_type, task_data), ...]; returns the replies in that order.
        A thread sends while this one reads: writing everything before reading
        would stall once the replies fill the socket buffers."""
        encoded = [self._task(t, d, options) for t, d in tasks]
        ids = [task_id for task_id, _ in encoded]
        failure = []

        def send_all():
            try:
                self.sock.sendall(b"".join(data for _, data in encoded))
            except OSError as exc:
                failure.append(exc)
                self._abort()                          # wakes the reader up

        sender = threading.Thread(target=send_all)
        sender.start()
        try:
            replies = self.wait_all(ids)
        except BaseException:
            self._abort()                              # wakes the sender up
            raise
        finally:
            sender.join()
        if failure:
            raise failure[0]
        return [replies[task_id] for task_id in ids]


def task_data_from_arg(task_type, arg):
    """'{"json": ...}' as given; a number for fibonacci/compute/sleep; else {"text": arg}."""
    if arg.lstrip().startswith("{"):
        return json.loads(arg)
    key = {"fibonacci": "n", "compute": "iterations", "sleep": "ms"}.get(task_type)
    return {key: int(arg)} if key else {"text": arg}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Send tasks to the server, print replies.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--count", type=int, default=1, help="pipeline N copies on one connection")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per socket operation")
    parser.add_argument("task_type", help="hash, fibonacci, reverse, compute, sleep, ...")
    parser.add_argument("data", help='text, a number, or a JSON object such as \'{"text":"hi"}\'')
    args = parser.parse_args(argv)

    data = task_data_from_arg(args.task_type, args.data)
    try:
        with Client(args.host, args.port, args.timeout) as client:
            start = time.perf_counter()
            replies = client.run_many([(args.task_type, data)] * args.count)
            elapsed = time.perf_counter() - start
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for reply in replies:
        print(json.dumps(reply, ensure_ascii=False))
    failed = sum(r.get("status") != "success" for r in replies)
    if args.count > 1:
        print(f"{args.count} tasks in {elapsed:.3f}s ({args.count / elapsed:.0f} tasks/s), "
              f"{failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
