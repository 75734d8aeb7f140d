"""Shared harness for the end-to-end tests: real processes on ephemeral ports.

Rules every test gets for free by using it:
  * servers listen on port 0; the real port is read from the server's own log line,
    so tests never race for a port or collide with each other;
  * every wait has a deadline and fails with the output collected so far; nothing
    sleeps to synchronise (polling STATS in `wait_until` waits on an event with a
    deadline);
  * every process and connection the harness creates is stopped when the test that
    created it ends (`E2ETestCase`), when the class ends (`setUpClass` scope), and at
    interpreter exit or SIGTERM, even when a test fails.

Environment:
  SD_BIN       folder with servidor, worker, cliente (default: ../../build/bin)
  SD_EXAMPLES  folder with the examples (default: ../../examples)
  SD_E2E_LOGS  if set, every process's whole output is printed when it is stopped

Python 3 standard library only.
"""

import atexit
import codecs
import hashlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SD_BIN = os.path.abspath(os.environ.get("SD_BIN") or os.path.join(HERE, "..", "..", "build", "bin"))
SD_EXAMPLES = os.path.abspath(
    os.environ.get("SD_EXAMPLES") or os.path.join(HERE, "..", "..", "examples"))

SERVER_READY = r"\[INFO\] Servidor iniciado en 127\.0\.0\.1:(\d+)"
WORKER_READY = r"\[WORKER\] Registrado con ID: (worker_\d+)"

DEFAULT_TIMEOUT = 10.0
_SPACE = re.compile(r"[ \t\r\n]*")   # JSON whitespace between messages


def binary(name):
    """Absolute path of a project binary (servidor, worker, cliente) in SD_BIN."""
    path = os.path.join(SD_BIN, name)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{name} not found or not executable at {path} (set SD_BIN)")
    return path


def example(*parts):
    """Absolute path of a file under SD_EXAMPLES, e.g. example("python", "client.py")."""
    path = os.path.join(SD_EXAMPLES, *parts)
    if not os.path.exists(path):
        raise AssertionError(f"example not found at {path} (set SD_EXAMPLES)")
    return path


# --------------------------------------------------------------------------- cleanup
# Every Proc and Conn is registered here with a serial number, so that a scope
# (one test, one test class, the whole run) can stop exactly what it started.

_registry_lock = threading.RLock()   # re-entrant: the SIGTERM handler may run under it
_live = {}                           # serial -> Proc | Conn
_serials = itertools.count(1)


def _register(obj):
    with _registry_lock:
        serial = next(_serials)
        _live[serial] = obj
        return serial


def _unregister(serial):
    with _registry_lock:
        _live.pop(serial, None)


def mark():
    """A marker for `cleanup_since`: everything created after this call is newer."""
    with _registry_lock:
        return next(_serials)


def cleanup_since(marker=0):
    """Closes connections and kills processes created since `marker` (newest first)."""
    with _registry_lock:
        doomed = sorted((s for s in _live if s >= marker), reverse=True)
        objs = [_live[s] for s in doomed]
    # Connections first, so that a server's log shows clients leaving before it dies.
    for obj in sorted(objs, key=lambda o: not isinstance(o, Conn)):
        try:
            obj.close() if isinstance(obj, Conn) else obj.kill()
            if isinstance(obj, Proc) and os.environ.get("SD_E2E_LOGS"):
                print(obj.output(last=10**9), file=sys.stderr)
        except Exception as exc:  # cleanup must go on whatever happens
            print(f"harness: cleanup of {obj!r} failed: {exc}", file=sys.stderr)


def cleanup_all():
    cleanup_since(0)


atexit.register(cleanup_all)


def _on_sigterm(signum, frame):
    cleanup_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


# A killed test run (ctest timeout, CI cancel) must not leave servers behind. Only
# take SIGTERM over if nobody else did, and only from the main thread.
if (threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
    signal.signal(signal.SIGTERM, _on_sigterm)


class E2ETestCase(unittest.TestCase):
    """Stops what each test started in its cleanup, and what setUpClass started
    at class cleanup, whether the test passes or fails."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.addClassCleanup(cleanup_since, mark())

    def setUp(self):
        super().setUp()
        self.addCleanup(cleanup_since, mark())


# --------------------------------------------------------------------------- processes

class Proc:
    """A child process whose stdout and stderr are merged and collected line by line.

    A background thread reads the pipe into `lines()` and signals a condition
    variable, so `wait_for_line` wakes up as soon as the line arrives. Used as a
    context manager (or through the cleanup scopes) it is killed on exit.
    """

    def __init__(self, argv, env=None, name=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.name = name or os.path.basename(self.argv[0])
        full_env = dict(os.environ)
        full_env.setdefault("PYTHONUNBUFFERED", "1")   # Python children: lines as printed
        if env:
            full_env.update(env)
        self._lines = []
        self._eof = False
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=full_env, cwd=cwd)
        self.pid = self.popen.pid
        self._serial = _register(self)
        self._reader = threading.Thread(target=self._read, name=f"read-{self.name}-{self.pid}",
                                        daemon=True)
        self._reader.start()

    def __repr__(self):
        return f"Proc({self.name}, pid={self.pid})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

    def _read(self):
        pipe = self.popen.stdout
        try:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def lines(self):
        """A copy of every output line so far."""
        with self._cond:
            return list(self._lines)

    def output(self, last=200):
        """The last `last` lines as one string, for failure messages."""
        lines = self.lines()
        head = f"--- output of {self!r} ({len(lines)} lines"
        if len(lines) > last:
            head += f", last {last} shown"
            lines = lines[-last:]
        return head + ") ---\n" + "\n".join(lines) + "\n--- end ---"

    def wait_for_line(self, regex, timeout=DEFAULT_TIMEOUT, start=0):
        """The `re.Match` of the first output line (from index `start`) matching
        `regex` (re.search). Fails early if the process closes its output first."""
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self._lines):
                    found = pattern.search(self._lines[index])
                    if found:
                        return found
                    index += 1
                if self._eof:
                    reason = "closed its output"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    reason = f"timed out after {timeout}s"
                    break
                self._cond.wait(remaining)
        if reason == "closed its output":
            try:
                reason = f"exited with {self.popen.wait(1)}"
            except subprocess.TimeoutExpired:
                pass
        raise AssertionError(
            f"{self!r}: no line matching {regex!r}: {reason}\n{self.output()}")

    def send_signal(self, sig):
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def alive(self):
        return self.popen.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise AssertionError(
                f"{self!r} exited unexpectedly with {self.popen.returncode}\n{self.output()}")

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        """The exit code (negative: killed by that signal); AssertionError on timeout."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self!r} still running after {timeout}s\n{self.output()}") from None
        self._reader.join(timeout=5)   # the pipe's last lines
        return code

    def kill(self):
        """SIGKILL if still running, reap, and stop reading. Idempotent."""
        if self.popen.poll() is None:
            try:
                self.popen.kill()
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._reader.join(timeout=5)
        if self.popen.stdout and not self._reader.is_alive():
            self.popen.stdout.close()
        _unregister(self._serial)

    close = kill


def server_args(*extra_args):
    """`extra_args` plus `--store memory` unless they choose a store (--store or
    --data-dir): a plain servidor keeps SQLite under ./sd-data, which tests must not
    leave behind in their working directory."""
    args = [str(a) for a in extra_args]
    if not any(a in ("--store", "--data-dir") or a.startswith(("--store=", "--data-dir="))
               for a in args):
        args += ["--store", "memory"]
    return args


def start_server(*extra_args, env=None, timeout=DEFAULT_TIMEOUT):
    """Starts `servidor --host 127.0.0.1 --port 0 *extra_args`; returns (Proc, port).

    Without --store/--data-dir in `extra_args` the server gets `--store memory`
    (see server_args). `env` entries are added to (not substituted for) the inherited
    environment."""
    proc = Proc([binary("servidor"), "--host", "127.0.0.1", "--port", "0", *server_args(*extra_args)],
                env=env, name="servidor")
    port = int(proc.wait_for_line(SERVER_READY, timeout).group(1))
    return proc, port


def start_worker(port, *extra_args, threads=4, env=None, program=None,
                 timeout=DEFAULT_TIMEOUT):
    """Starts a worker connected to 127.0.0.1:`port` and waits for its registration.

    By default the C++ `worker`; `program` (an argv prefix, e.g. [sys.executable,
    example("python", "worker.py")]) runs another implementation of the same CLI.
    The returned Proc has `.worker_id` ("worker_N")."""
    argv = list(program) if program else [binary("worker")]
    name = os.path.basename(argv[-1])
    proc = Proc([*argv, "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads),
                 *extra_args], env=env, name=name)
    proc.worker_id = proc.wait_for_line(WORKER_READY, timeout).group(1)
    return proc


def run(argv, timeout=30, env=None, input=None):
    """Runs a short-lived command to completion; returns CompletedProcess with text
    stdout/stderr. AssertionError (with its output) if it outlives `timeout`."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              timeout=timeout, env=full_env, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{argv} still running after {timeout}s\n"
                             f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None


# --------------------------------------------------------------------------- connections

class ConnectionClosed(AssertionError):
    """The peer closed the connection while a message was expected."""


class Conn:
    """A TCP client speaking the protocol: compact JSON + "\\n" out, and in, JSON
    objects back to back with or without whitespace between them.

    Messages read past by `recv_until` are kept and returned, in order, by later
    `recv` calls, so looking for one reply never loses another.
    """

    def __init__(self, port, timeout=DEFAULT_TIMEOUT, host="127.0.0.1", sock=None):
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        if self.sock.family in (socket.AF_INET, socket.AF_INET6):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._json = json.JSONDecoder()
        self._text = ""        # decoded text; parsed up to self._pos
        self._pos = 0
        self._stash = []       # parsed, skipped by recv_until
        self._eof = False
        self._serial = _register(self)

    @classmethod
    def connect(cls, port, timeout=DEFAULT_TIMEOUT, host="127.0.0.1"):
        return cls(port, timeout, host)

    @classmethod
    def from_socket(cls, sock):
        """Wraps an accepted socket, for tests that play the server's side."""
        return cls(None, sock=sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, obj):
        self.send_raw((json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
                      .encode("utf-8"))

    def send_many(self, objs):
        """Pipelining: many messages in one write."""
        self.send_raw("".join(json.dumps(o, separators=(",", ":"), ensure_ascii=False) + "\n"
                              for o in objs).encode("utf-8"))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _parse_one(self):
        """The next complete object in the buffer, or None if more bytes are needed."""
        pos = _SPACE.match(self._text, self._pos).end()
        if pos == len(self._text):
            self._text, self._pos = "", 0
            return None
        try:
            obj, end = self._json.raw_decode(self._text, pos)
        except json.JSONDecodeError as exc:
            # Senders end every message with "\n" and compact JSON has no raw
            # newline, so a failure with a newline already buffered is bad data,
            # not a message still in transit. Skip that line, then fail.
            newline = self._text.find("\n", pos)
            if newline < 0:
                self._text, self._pos = self._text[pos:], 0
                return None
            self._pos = newline + 1
            raise AssertionError(f"peer sent invalid JSON ({exc}): "
                                 f"{self._text[pos:newline][:500]!r}") from None
        self._pos = end
        if not isinstance(obj, dict):
            raise AssertionError(f"peer sent a JSON {type(obj).__name__}, not an object: {obj!r}")
        return obj

    def _read_more(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:   # a peer closing with unread input sends RST
            chunk = b""
        self._text = self._text[self._pos:]
        self._pos = 0
        if not chunk:
            self._eof = True
            self._text += self._decoder.decode(b"", final=True)
            return
        self._text += self._decoder.decode(chunk)

    def _next(self, deadline):
        while True:
            obj = self._parse_one()
            if obj is not None:
                return obj
            if self._eof:
                raise ConnectionClosed(
                    f"connection closed by peer (unparsed: {self._text[self._pos:][:200]!r})")
            try:
                self._read_more(deadline)
            except socket.timeout:
                raise AssertionError(
                    f"no complete message before the deadline "
                    f"(buffered: {self._text[self._pos:][:200]!r})"
                ) from None

    def recv(self, timeout=DEFAULT_TIMEOUT):
        """The next JSON object. AssertionError on timeout, ConnectionClosed on EOF."""
        if self._stash:
            return self._stash.pop(0)
        return self._next(time.monotonic() + timeout)

    def recv_until(self, pred, timeout=DEFAULT_TIMEOUT):
        """The first message for which pred(msg) is true; the others are kept for recv."""
        for i, msg in enumerate(self._stash):
            if pred(msg):
                return self._stash.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._next(deadline)
            if pred(msg):
                return msg
            self._stash.append(msg)

    def recv_n(self, n, timeout=DEFAULT_TIMEOUT):
        """The next n messages, within one overall deadline."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            out.append(self._stash.pop(0) if self._stash else self._next(deadline))
        return out

    def request(self, obj, timeout=DEFAULT_TIMEOUT):
        """send + recv."""
        self.send(obj)
        return self.recv(timeout)

    def stats(self, timeout=DEFAULT_TIMEOUT):
        """The server's STATS reply (other messages arriving meanwhile are kept)."""
        self.send({"type": "STATS"})
        return self.recv_until(lambda m: m.get("type") == "STATS", timeout)

    def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """Waits until the peer closes; returns the messages received before that."""
        deadline = time.monotonic() + timeout
        got = list(self._stash)
        self._stash.clear()
        while True:
            try:
                got.append(self._next(deadline))
            except ConnectionClosed:
                return got

    def close(self):
        try:
            self.sock.close()
        finally:
            _unregister(self._serial)


def connect(port, timeout=DEFAULT_TIMEOUT, host="127.0.0.1"):
    return Conn(port, timeout, host)


def stats_worker_count(stats):
    """Number of workers in a STATS reply, whether `workers` is a list or a number."""
    workers = stats.get("workers")
    return len(workers) if isinstance(workers, list) else int(workers or 0)


# --------------------------------------------------------------------------- waiting

def wait_until(fn, timeout=DEFAULT_TIMEOUT, interval=0.05, message=None):
    """Polls fn() until it returns something truthy, and returns that; AssertionError
    (with the last value or exception) when the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - reported if the deadline passes
            last = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{message or 'condition'} not met within {timeout}s; "
                                 f"last value: {last!r}")
        time.sleep(min(interval, remaining))


# --------------------------------------------------------------------------- expected results

def _fibonacci(n):
    seq, a, b = [], 0, 1
    for _ in range(n):
        seq.append(a)
        a, b = b, a + b
    return seq


def _compute(iterations, seed):
    digest = seed.encode("utf-8")
    for _ in range(iterations):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def expected_result(task_type, task_data):
    """The exact `result` object of a successful built-in task (PROTOCOL.md's table)."""
    if task_type == "hash":
        return {"hash": hashlib.sha256(task_data["text"].encode("utf-8")).hexdigest()}
    if task_type == "reverse":
        return {"reversed": task_data["text"][::-1]}
    if task_type == "fibonacci":
        return {"sequence": _fibonacci(task_data.get("n", 10))}
    if task_type == "compute":
        n = task_data["iterations"]
        return {"digest": _compute(n, task_data.get("seed", "")), "iterations": n}
    if task_type == "sleep":
        return {"slept_ms": task_data["ms"]}
    raise ValueError(f"no expected result for task type {task_type!r}")
