"""The seed's system end to end: a server and three workers as separate processes,
concurrent clients pipelining tasks of every type over real sockets."""

import json
import socket
import threading
import unittest

import harness
from harness import Conn, E2ETestCase, expected_result, start_server, start_worker, wait_until

TEXTS = ["Hola Mundo", "canción 😀", "", "a" * 1000, "línea\nnueva \"comillas\" \\ barra"]


def task_mix(client_no, count):
    """`count` tasks of every built-in type, with ids unique to this client."""
    tasks = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            t, d = "hash", {"text": TEXTS[i % len(TEXTS)] + str(i)}
        elif kind == 1:
            t, d = "fibonacci", {"n": i % 120}
        elif kind == 2:
            t, d = "reverse", {"text": TEXTS[(i // 5) % len(TEXTS)] + str(i)}
        elif kind == 3:
            t, d = "compute", {"iterations": 1 + i % 50, "seed": f"s{i}"}
        else:
            t, d = "sleep", {"ms": i % 3}
        tasks.append({"type": "TASK", "task_id": f"c{client_no}-{i}", "task_type": t, "task_data": d})
    return tasks


class ThreeWorkers(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server, cls.port = start_server()
        cls.workers = [start_worker(cls.port) for _ in range(3)]

    def test_worker_ids_follow_registration_order(self):
        self.assertEqual([w.worker_id for w in self.workers], ["worker_1", "worker_2", "worker_3"])
        for w in self.workers:
            w.wait_for_line(r"^\[WORKER\] Conectado al servidor 127\.0\.0\.1:\d+$")
            w.wait_for_line(r"^\[WORKER\] Pool de hilos: 4 hilos$")
        self.server.wait_for_line(r"^\[INFO\] Esperando conexiones\.\.\.$")

    def test_3000_pipelined_tasks_from_4_clients_each_answered_once_correctly_to_its_sender(self):
        per_client = 750
        errors = []
        results = {}

        def run_client(n):
            try:
                conn = Conn.connect(self.port)
                tasks = task_mix(n, per_client)
                conn.send_many(tasks)  # pipelined: everything goes out before any read
                got = {}
                for msg in conn.recv_n(per_client, timeout=120):
                    self.assertEqual(msg.get("type"), "RESULT", msg)
                    self.assertNotIn(msg["task_id"], got, "answered twice")
                    got[msg["task_id"]] = msg
                results[n] = (tasks, got)
                conn.close()
            except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=run_client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertFalse(errors, errors)
        self.assertEqual(len(results), 4)
        workers_seen = set()
        for n, (tasks, got) in results.items():
            self.assertEqual(set(got), {t["task_id"] for t in tasks}, f"client {n} got others' results")
            for t in tasks:
                r = got[t["task_id"]]
                self.assertEqual(r["status"], "success", r)
                self.assertEqual(r["result"], expected_result(t["task_type"], t["task_data"]), r)
                self.assertIsInstance(r["processing_time"], float)
                workers_seen.add(r["worker_id"])
        self.assertEqual(workers_seen, {"worker_1", "worker_2", "worker_3"})

    def test_round_robin_gives_each_worker_a_fair_share(self):
        conn = Conn.connect(self.port)
        before = {w["id"]: w["completed"] for w in conn.stats()["workers"]}
        n = 600
        conn.send_many([{"type": "TASK", "task_id": f"rr-{i}", "task_type": "sleep", "task_data": {"ms": 1}}
                        for i in range(n)])
        per_worker = {}
        for msg in conn.recv_n(n, timeout=60):
            self.assertEqual(msg["status"], "success", msg)
            per_worker[msg["worker_id"]] = per_worker.get(msg["worker_id"], 0) + 1
        after = {w["id"]: w["completed"] for w in conn.stats()["workers"]}
        self.assertEqual(sum(per_worker.values()), n)
        for wid in ("worker_1", "worker_2", "worker_3"):
            self.assertEqual(after[wid] - before[wid], per_worker.get(wid, 0))
            # Identical workers and tasks: each gets a third, give or take scheduling noise.
            self.assertGreaterEqual(per_worker.get(wid, 0), n // 3 * 0.7, per_worker)

    def test_client_sending_json_without_trailing_newline_is_served(self):
        # What the seed's snippet does: sock.send(json.dumps(task).encode()), then waits.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        task = {"type": "TASK", "task_id": "abc123", "task_type": "hash", "task_data": {"text": "Hola Mundo"}}
        s.send(json.dumps(task).encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            self.assertTrue(chunk, "server closed the connection")
            data += chunk
        s.close()
        reply = json.loads(data)
        self.assertEqual(reply["type"], "RESULT")
        self.assertEqual(reply["task_id"], "abc123")
        self.assertEqual(reply["status"], "success")
        self.assertEqual(reply["result"]["hash"], "c3a4a2e49d91f2177113a9adfcb9ef9af9679dc4557a0a3a4602e1bd39a6f481")
        self.assertIn(reply["worker_id"], {"worker_1", "worker_2", "worker_3"})

    def test_big_fibonacci_numbers_are_exact(self):
        conn = Conn.connect(self.port)
        r = conn.request({"type": "TASK", "task_id": "fib", "task_type": "fibonacci", "task_data": {"n": 1000}})
        self.assertEqual(r["status"], "success", r)
        self.assertEqual(r["result"], expected_result("fibonacci", {"n": 1000}))
        self.assertEqual(conn.request({"type": "TASK", "task_id": "fib0", "task_type": "fibonacci",
                                       "task_data": {"n": 0}})["result"], {"sequence": []})

    def test_server_made_task_id_comes_back_in_the_result(self):
        conn = Conn.connect(self.port)
        r = conn.request({"type": "TASK", "task_type": "reverse", "task_data": {"text": "hola"}})
        self.assertEqual(r["result"], {"reversed": "aloh"})
        self.assertTrue(r["task_id"])

    def test_invalid_task_data_is_an_error_result_and_the_connection_lives_on(self):
        conn = Conn.connect(self.port)
        r = conn.request({"type": "TASK", "task_id": "bad", "task_type": "fibonacci", "task_data": {"n": -1}})
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "invalid_task_data")
        self.assertIn("'n'", r["error"]["message"])
        self.assertEqual(conn.request({"type": "PING"}), {"type": "PONG"})

    def test_stats_reports_workers_and_counters(self):
        stats = Conn.connect(self.port).stats()
        self.assertEqual(stats["type"], "STATS")
        self.assertEqual([w["id"] for w in stats["workers"]], ["worker_1", "worker_2", "worker_3"])
        for w in stats["workers"]:
            self.assertEqual(w["threads"], 4)
            self.assertIn("hash", w["task_types"])
        for key in ("queued", "in_flight", "completed", "failed", "uptime"):
            self.assertIn(key, stats)


class TasksBeforeAnyWorker(E2ETestCase):
    def test_tasks_sent_before_any_worker_registers_wait_then_complete(self):
        server, port = start_server()
        conn = Conn.connect(port)
        conn.send_many([{"type": "TASK", "task_id": f"early-{i}", "task_type": "hash",
                         "task_data": {"text": str(i)}} for i in range(50)])
        wait_until(lambda: conn.stats()["queued"] == 50, message="50 tasks queued")
        start_worker(port)
        got = {m["task_id"]: m for m in conn.recv_n(50, timeout=30)}
        self.assertEqual(len(got), 50)
        for i in range(50):
            self.assertEqual(got[f"early-{i}"]["result"], expected_result("hash", {"text": str(i)}))

    def test_priority_runs_first_then_fifo(self):
        server, port = start_server()
        conn = Conn.connect(port)
        tasks = [{"type": "TASK", "task_id": f"p{i}", "task_type": "sleep", "task_data": {"ms": 0},
                  "priority": (5 if i % 4 == 0 else 0)} for i in range(20)]
        conn.send_many(tasks)
        wait_until(lambda: conn.stats()["queued"] == 20, message="20 tasks queued")
        start_worker(port, "--prefetch", "0", threads=1)  # one at a time: completion order = dispatch order
        order = [m["task_id"] for m in conn.recv_n(20, timeout=30)]
        high = [f"p{i}" for i in range(20) if i % 4 == 0]
        low = [f"p{i}" for i in range(20) if i % 4 != 0]
        self.assertEqual(order, high + low)


if __name__ == "__main__":
    unittest.main()
