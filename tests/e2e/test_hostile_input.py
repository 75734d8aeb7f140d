"""No input, however malformed, large or slow, crashes the server or disturbs others.

Each scenario checks the exact error code, whether the connection is kept or closed as
PROTOCOL.md says, and that a well-behaved client running hash tasks on its own
connection meanwhile keeps its normal latency (its round trips are measured during the
abuse; their p99 must stay under P99_BOUND).

Run from tests/e2e:  SD_BIN=... python3 -m unittest -v test_hostile_input
"""
import os
import math
import resource
import socket
import threading
import time

import harness

MAX_MESSAGE_BYTES = 1024 * 1024
# Seconds. A round trip is normally well under 5 ms; the bound only has to catch a server
# whose loop stalls, on a 2-core machine that may be running other tests at once.
# Sanitizer builds run several times slower: make asan/tsan set SD_TEST_SLOWDOWN.
SLOWDOWN = float(os.environ.get("SD_TEST_SLOWDOWN", "1"))
P99_BOUND = 0.5 * SLOWDOWN
IDLE_CONNECTIONS = 10_000


def hash_task(task_id, text=None):
    return {"type": "TASK", "task_id": task_id, "task_type": "hash",
            "task_data": {"text": text if text is not None else task_id}}


class GoodClient(threading.Thread):
    """A well-behaved client on its own connection, measuring its round trips.

    mode "hash": TASK hash -> RESULT (needs a worker); mode "ping": PING -> PONG."""

    _serial = 0

    def __init__(self, port, mode="hash"):
        super().__init__(daemon=True, name="good-client")
        GoodClient._serial += 1
        self.tag = f"good{GoodClient._serial}"
        self.mode = mode
        self.conn = harness.connect(port, timeout=5)
        self.latencies = []
        self.error = None
        self._halt = threading.Event()

    def run(self):
        i = 0
        try:
            while not self._halt.is_set():
                started = time.monotonic()
                if self.mode == "hash":
                    text = f"{self.tag}-{i}"
                    reply = self.conn.request(hash_task(text), timeout=5)
                    if (reply.get("type"), reply.get("task_id"), reply.get("status")) != (
                            "RESULT", text, "success") or reply.get("result") != \
                            harness.expected_result("hash", {"text": text}):
                        raise AssertionError(f"bad reply to the good client: {reply}")
                else:
                    reply = self.conn.request({"type": "PING"}, timeout=5)
                    if reply.get("type") != "PONG":
                        raise AssertionError(f"bad reply to the good client: {reply}")
                self.latencies.append(time.monotonic() - started)
                i += 1
                self._halt.wait(0.005)   # pacing: about 150 round trips a second
        except Exception as exc:   # reported by finish()
            self.error = exc

    def started_ok(self):
        """Starts the thread and waits for its first round trip, so that the abuse that
        follows is measured from its beginning."""
        self.start()
        harness.wait_until(lambda: self.latencies or self.error or not self.is_alive(),
                           message="the good client's first round trip")
        self.warm_up = self.latencies.pop(0) if self.latencies else None   # before the abuse
        return self

    def finish(self, test, min_round_trips=5, p99_bound=P99_BOUND):
        """Lets it make a few more round trips (the abuse is over: it must still be
        served), stops it, and checks its latency. Idempotent."""
        if self._halt.is_set():
            return None
        wanted = max(min_round_trips, len(self.latencies) + 3)
        try:
            harness.wait_until(lambda: len(self.latencies) >= wanted or self.error
                               or not self.is_alive(),
                               message=f"{wanted} round trips of the good client")
        finally:
            self._halt.set()
            self.join(10)
        test.assertFalse(self.is_alive(), "the good client is stuck")
        test.assertIsNone(self.error, f"the good client failed: {self.error!r}")
        n = len(self.latencies)
        test.assertGreaterEqual(n, min_round_trips, f"the good client made only {n} round trips")
        ordered = sorted(self.latencies)
        p99 = ordered[max(0, math.ceil(0.99 * n) - 1)]
        test.assertLess(p99, p99_bound, f"good client p99 {p99 * 1000:.1f} ms over {n} round trips "
                                        f"(max {ordered[-1] * 1000:.1f} ms)")
        return p99


class HostileCase(harness.E2ETestCase):
    """One server (1 MiB messages) and one worker shared by the class."""

    server_args = ("--max-message-bytes", str(MAX_MESSAGE_BYTES),
                   "--max-connections", str(IDLE_CONNECTIONS + 100))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server, cls.port = harness.start_server(*cls.server_args)
        cls.worker = harness.start_worker(cls.port, threads=2)

    def setUp(self):
        super().setUp()
        self.server.assert_alive()
        self.good = GoodClient(self.port).started_ok()

    def tearDown(self):
        # The abuse is over: the good client kept its latency, everyone is still up.
        self.good.finish(self, p99_bound=getattr(self, "p99_bound", P99_BOUND))
        self.server.assert_alive()
        self.worker.assert_alive()
        super().tearDown()

    def expect_error(self, conn, code, task_id=None):
        msg = conn.recv()
        self.assertEqual(msg.get("type"), "ERROR", msg)
        self.assertEqual(msg.get("code"), code, msg)
        if task_id is not None:
            self.assertEqual(msg.get("task_id"), task_id, msg)
        return msg

    def assert_still_served(self, conn, tag):
        """The connection still works: a valid TASK sent on it gets its RESULT."""
        reply = conn.request(hash_task(tag))
        self.assertEqual((reply.get("type"), reply.get("task_id"), reply.get("status")),
                         ("RESULT", tag, "success"), reply)


class MalformedMessages(HostileCase):
    """Server.HostileInput.Malformed*: typed errors, connection kept."""

    def test_invalid_json_gets_bad_json_and_the_connection_is_kept(self):
        conn = harness.connect(self.port)
        for i, raw in enumerate([b'{"type":"TASK",,}\n', b'{"type":tru}\n', b"{'type':'PING'}\n",
                                 b'{"type":"PING" "x":1}\n', b'{"a":1,}\n',
                                 b'{"a":[}\n', b'{"type":"TASK","task_data":{"n":[1,2}}\n']):
            conn.send_raw(raw)
            self.expect_error(conn, "bad_json")
            self.assert_still_served(conn, f"after-bad-json-{i}")

    def test_json_that_is_not_an_object_gets_bad_json(self):
        conn = harness.connect(self.port)
        for i, raw in enumerate([b"[1,2,3]\n", b"42\n", b'"TASK"\n', b"null\n", b"true\n",
                                 b"[]\n", b"-\n"]):
            conn.send_raw(raw)
            self.expect_error(conn, "bad_json")
            self.assert_still_served(conn, f"after-non-object-{i}")

    def test_invalid_utf8_inside_a_string_gets_bad_json(self):
        conn = harness.connect(self.port)
        for i, bad in enumerate([b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"abc\x80",
                                 b"\xf4\x90\x80\x80", b"\xe2\x82"]):
            conn.send_raw(b'{"type":"TASK","task_id":"utf8-' + str(i).encode() +
                          b'","task_type":"hash","task_data":{"text":"' + bad + b'"}}\n')
            self.expect_error(conn, "bad_json")
            self.assert_still_served(conn, f"after-bad-utf8-{i}")

    def test_unknown_message_type(self):
        conn = harness.connect(self.port)
        for i, msg in enumerate([{"type": "LAUNCH_MISSILES"}, {"type": 5}, {"no_type": 1},
                                 {"type": None}, {"type": "task"}]):
            conn.send(msg)
            self.expect_error(conn, "unknown_message_type")
            self.assert_still_served(conn, f"after-unknown-type-{i}")

    def test_missing_or_ill_typed_task_type_or_task_data_gets_invalid_task(self):
        conn = harness.connect(self.port)
        cases = [
            {"task_data": {"text": "x"}},                       # no task_type
            {"task_type": 5, "task_data": {"text": "x"}},
            {"task_type": "", "task_data": {"text": "x"}},
            {"task_type": ["hash"], "task_data": {"text": "x"}},
            {"task_type": "hash"},                               # no task_data
            {"task_type": "hash", "task_data": "text=x"},
            {"task_type": "hash", "task_data": ["x"]},
            {"task_type": "hash", "task_data": None},
            {"task_type": "hash", "task_data": 7},
            # Ill-typed optional fields are refused the same way.
            {"task_type": "hash", "task_data": {"text": "x"}, "timeout_ms": 0},
            {"task_type": "hash", "task_data": {"text": "x"}, "timeout_ms": "100"},
            {"task_type": "hash", "task_data": {"text": "x"}, "timeout_ms": 1.5},
            {"task_type": "hash", "task_data": {"text": "x"}, "max_retries": -1},
            {"task_type": "hash", "task_data": {"text": "x"}, "max_retries": 101},
            {"task_type": "hash", "task_data": {"text": "x"}, "priority": "high"},
            {"task_type": "hash", "task_data": {"text": "x"}, "priority": 2**40},
        ]
        for i, fields in enumerate(cases):
            tid = f"invalid-task-{i}"
            conn.send({"type": "TASK", "task_id": tid, **fields})
            self.expect_error(conn, "invalid_task", task_id=tid)
        self.assert_still_served(conn, "after-invalid-task")
        # None of them was taken in (the good client's tasks run meanwhile, so ask by id).
        for i in range(len(cases)):
            reply = conn.request({"type": "GET_RESULT", "task_id": f"invalid-task-{i}"})
            self.assertEqual((reply.get("type"), reply.get("state")), ("STATUS", "unknown"), reply)

    def test_out_of_range_task_data_gets_invalid_task_data_for_every_type(self):
        conn = harness.connect(self.port)
        bad_ints = [-1, 10**30, 1e30, 2**64, -(2**64), 2**63, 1.5, 10.0, "10", True, None, [1], {}]
        cases = []   # (task_type, task_data, the field the message must name)
        for value in bad_ints:
            cases.append(("fibonacci", {"n": value}, "n"))
            cases.append(("compute", {"iterations": value}, "iterations"))
            cases.append(("sleep", {"ms": value}, "ms"))
        cases += [
            ("fibonacci", {"n": 10001}, "n"),
            ("compute", {"iterations": 0}, "iterations"),
            ("compute", {"iterations": 100_000_001}, "iterations"),
            ("compute", {"iterations": 5, "seed": 5}, "seed"),
            ("compute", {}, "iterations"),
            ("sleep", {"ms": 600_001}, "ms"),
            ("sleep", {}, "ms"),
        ]
        for task_type in ("hash", "reverse"):
            for value in (5, None, ["a"], {"t": "a"}, True, 1e30):
                cases.append((task_type, {"text": value}, "text"))
            cases.append((task_type, {}, "text"))

        ids = [f"out-of-range-{i}" for i in range(len(cases))]
        conn.send_many([{"type": "TASK", "task_id": tid, "task_type": t, "task_data": d}
                        for tid, (t, d, _) in zip(ids, cases)])
        replies = {}
        for msg in conn.recv_n(len(cases), timeout=15):
            self.assertEqual(msg.get("type"), "RESULT", msg)
            self.assertNotIn(msg["task_id"], replies, msg)
            replies[msg["task_id"]] = msg
        for tid, (task_type, data, field) in zip(ids, cases):
            msg = replies[tid]
            self.assertEqual(msg.get("status"), "error", (task_type, data, msg))
            self.assertEqual(msg["error"]["code"], "invalid_task_data", (task_type, data, msg))
            self.assertIn(f"'{field}'", msg["error"]["message"], (task_type, data, msg))
        # The worker's threads survived all of it.
        self.assert_still_served(conn, "after-out-of-range")


class OversizedAndDeep(HostileCase):
    """Server.HostileInput.Size*: limits close or refuse, never crash."""

    def test_message_over_the_limit_gets_message_too_large_and_the_connection_closes(self):
        conn = harness.connect(self.port)
        head = b'{"type":"TASK","task_id":"huge","task_type":"hash","task_data":{"text":"'
        # One byte over the limit, still unfinished: the server must decide without the end.
        conn.send_raw(head + b"a" * (MAX_MESSAGE_BYTES + 1 - len(head)))
        got = conn.wait_closed()
        self.assertEqual([(m.get("type"), m.get("code")) for m in got],
                         [("ERROR", "message_too_large")], got)

    def test_complete_message_over_the_limit_sent_in_one_go(self):
        conn = harness.connect(self.port)
        big = hash_task("huge-complete", "b" * (2 * MAX_MESSAGE_BYTES))
        try:
            conn.send(big)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the server closed while the rest was still on its way: allowed
        got = conn.wait_closed()
        self.assertEqual([(m.get("type"), m.get("code")) for m in got],
                         [("ERROR", "message_too_large")], got)

    def test_message_just_under_the_limit_is_served(self):
        # Not abuse but a legal message: a 1 MiB task costs the server's one thread and
        # the worker's I/O thread tens of milliseconds each (copies into fresh pages;
        # ~80-100 ms per round trip on a 2-core VM), and the good client's tasks share
        # both, so its bound is looser here.
        self.p99_bound = 1.0 * SLOWDOWN
        conn = harness.connect(self.port)
        overhead = len(b'{"type":"TASK","task_id":"big","task_type":"hash","task_data":{"text":""}}')
        text = "c" * (MAX_MESSAGE_BYTES - overhead)
        reply = conn.request(hash_task("big", text), timeout=15)
        self.assertEqual(reply.get("status"), "success", reply)
        self.assertEqual(reply["result"], harness.expected_result("hash", {"text": text}))

    def test_nesting_a_million_deep_gets_bad_json(self):
        # Over this class's 1 MiB limit: a server with the default (16 MiB) limit.
        server, port = harness.start_server()
        conn = harness.connect(port)
        depth = 1_000_000
        for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
            conn.send_raw(b'{"type":"TASK","task_type":"hash","task_data":{"text":"x"},"deep":' +
                          opener * depth + b"1" + closer * depth + b"}\n")
            self.expect_error(conn, "bad_json")
            pong = conn.request({"type": "PING"})
            self.assertEqual(pong.get("type"), "PONG", pong)
        server.assert_alive()


class ManyAndSlowConnections(HostileCase):
    """Server.HostileInput.Connections*: idle crowds and slow senders."""

    def test_ten_thousand_idle_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = IDLE_CONNECTIONS + 200
        if soft < wanted:
            if hard != resource.RLIM_INFINITY and hard < wanted:
                self.skipTest(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        observer = harness.connect(self.port)
        started = time.monotonic()
        idle = []
        try:
            for _ in range(IDLE_CONNECTIONS):
                idle.append(socket.create_connection(("127.0.0.1", self.port), timeout=10))
            stats = harness.wait_until(
                lambda: (lambda s: s if s["connections"] >= IDLE_CONNECTIONS + 3 else None)(
                    observer.stats()),
                timeout=15, message="the server holds every idle connection")
            opened = time.monotonic() - started
            self.assertLess(opened, 15, f"opening {IDLE_CONNECTIONS} connections took {opened:.1f}s")
            # A new client is still served promptly with all of them open.
            self.assert_still_served(observer, "beside-the-crowd")
            # Measured while the crowd is held. Closing 10,000 sockets at once costs the
            # server's one thread about a second of kernel time (shutdown, close,
            # epoll_ctl per socket), a stall that is the test's doing, not the scenario's.
            self.good.finish(self)
        finally:
            for s in idle:
                s.close()
        harness.wait_until(lambda: observer.stats()["connections"] <= 4, timeout=15,
                           message="the idle connections are gone")
        self.assertGreaterEqual(stats["connections"], IDLE_CONNECTIONS)

    def test_slow_sender_dribbling_a_task_is_served_when_complete(self):
        def dribble(conn, data, every):
            for i in range(len(data)):
                conn.send_raw(data[i:i + 1])
                time.sleep(every)   # pacing the abuse, not synchronisation

        slow = [harness.connect(self.port) for _ in range(4)]
        threads = []
        for i, conn in enumerate(slow):
            # No trailing newline: the closing brace alone completes the message.
            raw = (b'{"type": "TASK", "task_id": "slow-%d", "task_type": "hash",\n'
                   b' "task_data": {"text": "despacio %d"}}' % (i, i))
            t = threading.Thread(target=dribble, args=(conn, raw, 0.003), daemon=True)
            t.start()
            threads.append(t)
        for i, (conn, t) in enumerate(zip(slow, threads)):
            t.join(10)
            self.assertFalse(t.is_alive())
            reply = conn.recv()
            self.assertEqual((reply.get("type"), reply.get("task_id"), reply.get("status")),
                             ("RESULT", f"slow-{i}", "success"), reply)
            self.assertEqual(reply["result"],
                             harness.expected_result("hash", {"text": f"despacio {i}"}))


class Limits(harness.E2ETestCase):
    """Server.HostileInput.Limits*: queue and connection caps refuse cleanly."""

    def test_queue_full_refuses_the_task_past_max_queued(self):
        server, port = harness.start_server("--max-queued", "100")
        good = GoodClient(port, mode="ping").started_ok()   # no worker yet: PING round trips
        conn = harness.connect(port)
        ids = [f"q-{i}" for i in range(101)]
        conn.send_many([hash_task(t) for t in ids])
        refused = conn.recv()
        self.assertEqual((refused.get("type"), refused.get("code"), refused.get("task_id")),
                         ("ERROR", "queue_full", "q-100"), refused)
        stats = conn.stats()
        self.assertEqual((stats["queued"], stats["rejected"], stats["accepted"]), (100, 1, 100), stats)
        good.finish(self)

        # Nothing queued was lost: a worker runs all 100.
        harness.start_worker(port, threads=2)
        replies = {m["task_id"]: m for m in conn.recv_n(100, timeout=15)}
        self.assertEqual(set(replies), set(ids[:100]))
        for t, msg in replies.items():
            self.assertEqual(msg.get("status"), "success", msg)
            self.assertEqual(msg["result"], harness.expected_result("hash", {"text": t}))
        server.assert_alive()

    def test_connection_past_max_connections_gets_too_many_connections(self):
        server, port = harness.start_server("--max-connections", "50")
        harness.start_worker(port, threads=2)                     # connection 1
        good = GoodClient(port).started_ok()                      # connection 2
        crowd = [harness.connect(port) for _ in range(48)]        # connections 3..50
        harness.wait_until(lambda: crowd[0].stats()["connections"] == 50,
                           message="50 connections held")
        extra = harness.connect(port)                             # connection 51
        got = extra.wait_closed()
        self.assertEqual([(m.get("type"), m.get("code")) for m in got],
                         [("ERROR", "too_many_connections")], got)

        crowd.pop().close()
        harness.wait_until(lambda: crowd[0].stats()["connections"] == 49,
                           message="a slot freed")
        again = harness.connect(port)
        self.assertEqual(again.request({"type": "PING"}).get("type"), "PONG")
        good.finish(self)
        server.assert_alive()


if __name__ == "__main__":
    import unittest
    unittest.main()
