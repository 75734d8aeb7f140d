"""Nothing lost, nothing crashes: killed, frozen, draining and restarted processes.

Every scenario runs real binaries on ephemeral ports and asserts what survives: each
accepted task is answered exactly once (with the outcome the protocol promises), and the
server keeps serving. Waits are bounded and event-driven (a log line, a STATS figure, a
reply); nothing sleeps to synchronise.

Run from tests/e2e:  SD_BIN=... python3 -m unittest -v test_failures
"""
import os
import signal
import socket
import time


import harness

# Sanitizer builds run several times slower (make asan/tsan set it); bounds scale with it.
SLOWDOWN = float(os.environ.get("SD_TEST_SLOWDOWN", "1"))

# Heartbeats fast enough that a lost worker is noticed in well under a second.
FAST_HEARTBEAT = ("--heartbeat-interval-ms", "100ms", "--heartbeat-timeout-ms", "600ms")
DECLARED_DEAD = r"Worker sin respuesta durante .* se da por perdido"


# --------------------------------------------------------------------------- helpers

def sleep_task(task_id, ms, **extra):
    return {"type": "TASK", "task_id": task_id, "task_type": "sleep",
            "task_data": {"ms": ms}, **extra}


def hash_task(task_id, text=None, **extra):
    return {"type": "TASK", "task_id": task_id, "task_type": "hash",
            "task_data": {"text": text if text is not None else task_id}, **extra}


def compute_task(task_id, iterations, **extra):
    return {"type": "TASK", "task_id": task_id, "task_type": "compute",
            "task_data": {"iterations": iterations, "seed": task_id}, **extra}


def worker_entry(stats, worker_id):
    """The STATS entry of one worker, or None if the server does not list it."""
    for w in stats.get("workers", []):
        if w.get("id") == worker_id:
            return w
    return None


def in_flight_of(observer, worker_id):
    entry = worker_entry(observer.stats(), worker_id)
    return entry["in_flight"] if entry else None


def until_stats(conn, timeout=harness.DEFAULT_TIMEOUT):
    """A STATS round trip that also returns every message received before the reply.

    The server writes to one connection in order, so whatever it meant to send this
    client before it handled the STATS request is in `before`: used as a barrier to
    prove that no late (duplicate) RESULT is on its way."""
    conn.send({"type": "STATS"})
    before = []
    deadline = time.monotonic() + timeout
    while True:
        msg = conn.recv(max(0.01, deadline - time.monotonic()))
        if msg.get("type") == "STATS":
            return msg, before
        before.append(msg)


class E2EFailureCase(harness.E2ETestCase):

    def collect_results(self, conn, task_ids, timeout=15.0):
        """{task_id: RESULT} for exactly `task_ids`: fails on a second RESULT for a task,
        on a RESULT for a task not asked about, on any other message, and on timeout."""
        wanted = set(task_ids)
        got = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(wanted):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.fail(f"no RESULT within {timeout}s for {sorted(wanted - set(got))}; "
                          f"got {sorted(got)}")
            msg = conn.recv(remaining)
            self.assertEqual(msg.get("type"), "RESULT", msg)
            tid = msg.get("task_id")
            self.assertIn(tid, wanted, f"RESULT for a task not submitted here: {msg}")
            self.assertNotIn(tid, got, f"second RESULT for {tid}: first {got.get(tid)}, then {msg}")
            got[tid] = msg
        return got

    def assert_no_late_results(self, conn):
        """Nothing more arrives for this client before a STATS reply (see until_stats);
        returns that STATS."""
        stats, before = until_stats(conn)
        self.assertEqual(before, [], "late messages reached the client")
        return stats

    def assert_success(self, msg, worker_id=None):
        self.assertEqual(msg.get("status"), "success", msg)
        if worker_id is not None:
            self.assertEqual(msg.get("worker_id"), worker_id, msg)

    def assert_error(self, msg, code):
        self.assertEqual(msg.get("type"), "RESULT", msg)
        self.assertEqual(msg.get("status"), "error", msg)
        self.assertEqual(msg.get("error", {}).get("code"), code, msg)

    def assert_idle(self, observer, **expected):
        """Waits until nothing is pending, then checks the counters given."""
        stats = harness.wait_until(
            lambda: (lambda s: s if (s["pending"], s["queued"], s["in_flight"]) == (0, 0, 0)
                     else None)(observer.stats()),
            message="pending/queued/in_flight back to 0")
        for key, value in expected.items():
            self.assertEqual(stats[key], value, f"STATS {key}: {stats}")
        return stats


# --------------------------------------------------------------------------- lost workers

class LostWorkers(E2EFailureCase):
    """Server.WorkerLost.*: killed or frozen workers lose nothing."""

    def test_killed_worker_tasks_rerun_on_survivor_exactly_once(self):
        server, port = harness.start_server(*FAST_HEARTBEAT)
        doomed = harness.start_worker(port, "--prefetch", "0", threads=2)
        survivor = harness.start_worker(port, "--prefetch", "0", threads=2)
        observer, client = harness.connect(port), harness.connect(port)
        ids = [f"kill-{i}" for i in range(8)]
        client.send_many([sleep_task(t, 400) for t in ids])

        before_kill = harness.wait_until(
            lambda: (lambda s: s if worker_entry(s, doomed.worker_id)["in_flight"] == 2 else None)(
                observer.stats()),
            message="the doomed worker holds 2 tasks")
        doomed.send_signal(signal.SIGKILL)
        self.assertEqual(doomed.wait_exit(), -signal.SIGKILL)

        results = self.collect_results(client, ids)
        for msg in results.values():
            self.assert_success(msg)
            self.assertEqual(msg["result"], {"slept_ms": 400}, msg)
        by_doomed = [m for m in results.values() if m["worker_id"] == doomed.worker_id]
        # Whatever the doomed worker had not reported when it died ran on the survivor.
        self.assertLessEqual(len(by_doomed), worker_entry(before_kill, doomed.worker_id)["completed"])
        self.assertEqual(
            {m["worker_id"] for m in results.values()} - {doomed.worker_id}, {survivor.worker_id})
        stats = self.assert_no_late_results(client)
        self.assertGreaterEqual(stats["requeued"], 2, stats)
        self.assert_idle(observer, completed=8, failed=0, accepted=8)
        self.assertEqual([w["id"] for w in stats["workers"]], [survivor.worker_id])
        server.assert_alive()

    def test_task_fails_with_worker_lost_once_retries_are_exhausted(self):
        # Server default max_retries 0; one task overrides it with max_retries 1.
        server, port = harness.start_server("--max-retries", "0", *FAST_HEARTBEAT)
        observer, client = harness.connect(port), harness.connect(port)
        client.send_many([sleep_task("lost-default", 30000),
                          sleep_task("lost-once", 30000, max_retries=1)])

        first = harness.start_worker(port, "--prefetch", "0", threads=2)
        harness.wait_until(lambda: in_flight_of(observer, first.worker_id) == 2,
                           message="the first worker holds both tasks")
        first.send_signal(signal.SIGKILL)
        first.wait_exit()
        msg = client.recv()
        self.assertEqual(msg.get("task_id"), "lost-default", msg)
        self.assert_error(msg, "worker_lost")
        stats = observer.stats()
        self.assertEqual((stats["requeued"], stats["queued"]), (1, 1), stats)

        second = harness.start_worker(port, "--prefetch", "0", threads=2)
        harness.wait_until(lambda: in_flight_of(observer, second.worker_id) == 1,
                           message="the second worker holds the retried task")
        second.send_signal(signal.SIGKILL)
        second.wait_exit()
        msg = client.recv()
        self.assertEqual(msg.get("task_id"), "lost-once", msg)
        self.assert_error(msg, "worker_lost")

        self.assert_no_late_results(client)
        self.assert_idle(observer, failed=2, completed=0, requeued=1)
        server.assert_alive()

    def test_frozen_worker_is_declared_dead_and_its_late_results_are_dropped(self):
        server, port = harness.start_server(*FAST_HEARTBEAT)
        frozen = harness.start_worker(port, "--prefetch", "0", threads=2)
        other = harness.start_worker(port, "--prefetch", "0", threads=2)
        observer, client = harness.connect(port), harness.connect(port)
        ids = [f"frozen-{i}" for i in range(4)]
        client.send_many([sleep_task(t, 1000) for t in ids])
        harness.wait_until(lambda: in_flight_of(observer, frozen.worker_id) == 2,
                           message="the worker to freeze holds 2 tasks")

        log_mark = len(server.lines())
        stopped_at = time.monotonic()
        frozen.send_signal(signal.SIGSTOP)
        self.addCleanup(frozen.send_signal, signal.SIGCONT)
        server.wait_for_line(DECLARED_DEAD, timeout=5, start=log_mark)
        # Declared dead after the heartbeat timeout (600 ms), not before.
        self.assertGreaterEqual(time.monotonic() - stopped_at, 0.5)

        # While it stays frozen its two tasks rerun on the other worker.
        results = self.collect_results(client, ids)
        for msg in results.values():
            self.assert_success(msg, other.worker_id)
        self.assertGreaterEqual(observer.stats()["requeued"], 2)

        # Thawed, it finds its connection gone, reconnects as a new worker and reports
        # its two finished sleeps (or loses them with the old socket): either way they
        # are not the attempts out, so they must not reach the client.
        thaw_mark = len(frozen.lines())
        frozen.send_signal(signal.SIGCONT)
        new_id = frozen.wait_for_line(harness.WORKER_READY, start=thaw_mark).group(1)
        self.assertNotEqual(new_id, frozen.worker_id)
        # The re-registered worker sends any old results right after registering, so
        # once it has answered a new task, those are behind us.
        probe_ids = [f"after-thaw-{i}" for i in range(4)]
        client.send_many([hash_task(t) for t in probe_ids])
        probes = self.collect_results(client, probe_ids)
        for t, msg in probes.items():
            self.assert_success(msg)
            self.assertEqual(msg["result"], harness.expected_result("hash", {"text": t}))
        self.assertIn(new_id, {m["worker_id"] for m in probes.values()},
                      "the thawed worker took no task: cannot tell its old results were dropped")
        self.assert_no_late_results(client)
        self.assert_idle(observer, completed=8, failed=0)
        server.assert_alive()

    def test_worker_busy_on_every_thread_still_answers_heartbeats(self):
        # Sanitizer builds slow the worker's I/O thread too: scale the timeout with them.
        server, port = harness.start_server("--heartbeat-interval-ms", "100ms",
                                            "--heartbeat-timeout-ms", f"{int(500 * SLOWDOWN)}ms")
        worker = harness.start_worker(port, "--prefetch", "0", threads=2)
        observer, client = harness.connect(port), harness.connect(port)
        ids = ["busy-0", "busy-1"]
        # 30,000,000 SHA-256 iterations: at least ~3 s even on a fast idle core (one
        # iteration costs ~100 ns; nothing runs it under ~33 ns), ~10 s on a loaded one.
        client.send_many([compute_task(t, 30_000_000) for t in ids])
        results = self.collect_results(client, ids, timeout=120)
        for msg in results.values():
            self.assert_success(msg, worker.worker_id)
            self.assertEqual(msg["result"]["iterations"], 30_000_000)
            # The premise: both threads were busy for well over the heartbeat timeout.
            self.assertGreater(msg["processing_time"], 1.0, msg)
        stats = self.assert_idle(observer, requeued=0, completed=2, failed=0)
        self.assertEqual([w["id"] for w in stats["workers"]], [worker.worker_id])
        self.assertFalse([line for line in server.lines() if "se da por perdido" in line],
                         server.output())
        worker.assert_alive()


# --------------------------------------------------------------------------- timeouts

class TaskTimeouts(E2EFailureCase):
    """Server.TaskTimeout.*: timeout_ms answers on time and frees the worker's slot."""

    def setUp(self):
        super().setUp()
        self.server, self.port = harness.start_server(*FAST_HEARTBEAT)
        # One thread, no prefetch: the follow-up task can only run once the slot is free.
        self.worker = harness.start_worker(self.port, "--prefetch", "0", threads=1)
        self.client = harness.connect(self.port)

    def check_timeout_frees_slot(self, long_task):
        started = time.monotonic()
        self.client.send_many([long_task, hash_task("follow-up")])
        msg = self.client.recv(timeout=5)
        took = time.monotonic() - started
        self.assertEqual(msg.get("task_id"), long_task["task_id"], msg)
        self.assert_error(msg, "timeout")
        self.assertLess(took, 2.0 * SLOWDOWN, f"timeout answered after {took:.2f}s")
        self.assertGreaterEqual(took, 0.25, f"timeout answered too early ({took:.2f}s)")

        msg = self.client.recv(timeout=5)
        took = time.monotonic() - started
        self.assertEqual(msg.get("task_id"), "follow-up", msg)
        self.assert_success(msg, self.worker.worker_id)
        # The long task was stopped: the only thread was free long before it would end.
        self.assertLess(took, 3.0 * SLOWDOWN, f"follow-up finished after {took:.2f}s")

        # The worker's own (cancelled) report of the long task is not a second RESULT.
        self.assert_no_late_results(self.client)
        self.assert_idle(self.client, completed=1, failed=1)
        self.server.assert_alive()

    def test_sleep_past_its_timeout_is_answered_timeout_and_stopped(self):
        self.check_timeout_frees_slot(sleep_task("long-sleep", 5000, timeout_ms=300))

    def test_compute_past_its_timeout_is_answered_timeout_and_stopped(self):
        # 100,000,000 rounds would take about 40 s.
        self.check_timeout_frees_slot(compute_task("long-compute", 100_000_000, timeout_ms=300))


# --------------------------------------------------------------------------- clients

class ClientDisconnect(E2EFailureCase):
    """Server.ClientGone.*: a client leaving disturbs nobody else."""

    def test_client_leaving_with_queued_and_running_tasks(self):
        server, port = harness.start_server(*FAST_HEARTBEAT)
        worker = harness.start_worker(port, "--prefetch", "0", threads=2)
        observer = harness.connect(port)
        leaver, stayer = harness.connect(port), harness.connect(port)
        # 2 running + 10 queued sleeps: 6 s of work for 2 threads if nobody dropped them.
        leaver.send_many([sleep_task(f"leaver-{i}", 1000) for i in range(12)])
        harness.wait_until(
            lambda: (lambda s: (s["in_flight"], s["queued"]) == (2, 10))(observer.stats()),
            message="2 tasks running and 10 queued")
        ids = [f"stayer-{i}" for i in range(5)]
        stayer.send_many([hash_task(t) for t in ids])   # queued behind the leaver's
        started = time.monotonic()
        leaver.close()

        results = self.collect_results(stayer, ids, timeout=10)
        took = time.monotonic() - started
        for t, msg in results.items():
            self.assert_success(msg, worker.worker_id)
            self.assertEqual(msg["result"], harness.expected_result("hash", {"text": t}))
        # Dropped and cancelled: not waiting behind 6 s of abandoned sleeps.
        self.assertLess(took, 3.0 * SLOWDOWN, f"the other client's tasks took {took:.2f}s")
        stats = self.assert_idle(observer, completed=5)
        self.assertEqual(stats["clients"], 2, stats)   # observer and stayer
        self.assert_no_late_results(stayer)
        server.assert_alive()

    def test_cliente_against_a_closed_port_exits_non_zero_with_one_line(self):
        cliente = os.path.join(harness.SD_BIN, "cliente")
        if not os.access(cliente, os.X_OK):
            self.skipTest(f"cliente is not built in {harness.SD_BIN}")
        # A port nobody listens on: bound (so no one else gets it meanwhile), never listened.
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            port = holder.getsockname()[1]
            started = time.monotonic()
            done = harness.run([cliente, "--host", "127.0.0.1", "--port", port, "hash", "x"],
                               timeout=20)
        self.assertNotEqual(done.returncode, 0, done)
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, f"expected one line, got {lines}")
        self.assertIn(str(port), lines[0])
        self.assertLess(time.monotonic() - started, 15 * SLOWDOWN)


# --------------------------------------------------------------------------- restarts

class ServerRestart(E2EFailureCase):
    """Server.Restart.*: workers find a restarted server on their own."""

    def test_workers_reconnect_to_a_server_restarted_on_the_same_port(self):
        first, port = harness.start_server(*FAST_HEARTBEAT)
        workers = [harness.start_worker(port, threads=2) for _ in range(2)]
        with harness.connect(port) as client:
            msg = client.request(hash_task("before-restart"))
            self.assert_success(msg)
        marks = [len(w.lines()) for w in workers]
        first.send_signal(signal.SIGKILL)
        self.assertEqual(first.wait_exit(), -signal.SIGKILL)

        second = harness.Proc([harness.binary("servidor"), "--host", "127.0.0.1",
                               "--port", port, *harness.server_args(*FAST_HEARTBEAT)], name="servidor")
        self.assertEqual(int(second.wait_for_line(harness.SERVER_READY).group(1)), port)
        new_ids = {w.wait_for_line(harness.WORKER_READY, timeout=15, start=m).group(1)
                   for w, m in zip(workers, marks)}
        self.assertEqual(len(new_ids), 2, new_ids)

        client = harness.connect(port)
        ids = [f"after-restart-{i}" for i in range(8)]
        client.send_many([hash_task(t) for t in ids])
        results = self.collect_results(client, ids)
        for t, msg in results.items():
            self.assert_success(msg)
            self.assertEqual(msg["result"], harness.expected_result("hash", {"text": t}))
        self.assertEqual({m["worker_id"] for m in results.values()}, new_ids)
        stats = self.assert_no_late_results(client)
        self.assertEqual({w["id"] for w in stats["workers"]}, new_ids)
        for w in workers:
            w.assert_alive()


# --------------------------------------------------------------------------- graceful stops

class GracefulStop(E2EFailureCase):
    """Worker.Sigterm.* and Server.Sigterm.*: orderly shutdowns answer everything."""

    def test_sigterm_worker_finishes_what_it_holds_and_takes_nothing_more(self):
        server, port = harness.start_server(*FAST_HEARTBEAT)
        draining = harness.start_worker(port, "--prefetch", "0", threads=2)
        observer, client = harness.connect(port), harness.connect(port)
        held = ["held-0", "held-1"]
        client.send_many([sleep_task(t, 800) for t in held])
        harness.wait_until(lambda: in_flight_of(observer, draining.worker_id) == 2,
                           message="the worker holds 2 tasks")
        queued = [f"queued-{i}" for i in range(4)]
        client.send_many([hash_task(t) for t in queued])
        harness.wait_until(lambda: observer.stats()["queued"] == 4, message="4 tasks queued")

        draining.send_signal(signal.SIGTERM)
        results = self.collect_results(client, held, timeout=10)
        for msg in results.values():
            self.assert_success(msg, draining.worker_id)
        self.assertEqual(draining.wait_exit(), 0, draining.output())
        # The tasks that were waiting were not handed to the draining worker.
        harness.wait_until(lambda: observer.stats()["workers"] == [], message="worker gone")
        stats = observer.stats()
        self.assertEqual((stats["queued"], stats["requeued"]), (4, 0), stats)

        replacement = harness.start_worker(port, threads=2)
        results = self.collect_results(client, queued)
        for t, msg in results.items():
            self.assert_success(msg, replacement.worker_id)
            self.assertEqual(msg["result"], harness.expected_result("hash", {"text": t}))
        self.assert_no_late_results(client)
        self.assert_idle(observer, completed=6, failed=0)
        server.assert_alive()

    def test_sigterm_server_lets_running_tasks_finish_and_answers_queued_ones(self):
        server, port = harness.start_server("--grace-ms", "5000ms", *FAST_HEARTBEAT)
        worker = harness.start_worker(port, "--prefetch", "0", threads=2)
        observer, client = harness.connect(port), harness.connect(port)
        running = ["running-0", "running-1"]
        queued = ["queued-0", "queued-1", "queued-2"]
        client.send_many([sleep_task(t, 700) for t in running] + [hash_task(t) for t in queued])
        harness.wait_until(
            lambda: (lambda s: (s["in_flight"], s["queued"]) == (2, 3))(observer.stats()),
            message="2 tasks running and 3 queued")

        server.send_signal(signal.SIGTERM)
        results = self.collect_results(client, running + queued, timeout=10)
        for t in queued:
            self.assert_error(results[t], "server_shutdown")
        for t in running:
            self.assert_success(results[t], worker.worker_id)
        self.assertEqual(server.wait_exit(), 0, server.output())
        # It stopped accepting: nobody listens on the port any more.
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        self.assertEqual(client.wait_closed(), [])

    def test_sigterm_server_answers_tasks_still_running_after_the_grace_period(self):
        server, port = harness.start_server("--grace-ms", "200ms", *FAST_HEARTBEAT)
        harness.start_worker(port, "--prefetch", "0", threads=2)
        observer, client = harness.connect(port), harness.connect(port)
        ids = ["long-0", "long-1"]
        client.send_many([sleep_task(t, 5000) for t in ids])
        harness.wait_until(lambda: observer.stats()["in_flight"] == 2,
                           message="2 tasks running")

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        results = self.collect_results(client, ids, timeout=5)
        took = time.monotonic() - started
        for msg in results.values():
            self.assert_error(msg, "server_shutdown")
        self.assertLess(took, 2.0 * SLOWDOWN, f"answered {took:.2f}s after SIGTERM (grace 200 ms)")
        self.assertEqual(server.wait_exit(), 0, server.output())
        self.assertEqual(client.wait_closed(), [])


if __name__ == "__main__":
    import unittest
    unittest.main()
