"""The Python examples (examples/python/client.py and worker.py) against the real
C++ server and worker, and the Python worker against a scripted server.

Run from tests/e2e:  SD_BIN=... SD_EXAMPLES=... python3 -m unittest -v test_python_examples
"""
import importlib.util
import json
import signal
import socket
import sys

import harness

HOLA_MUNDO_SHA256 = "c3a4a2e49d91f2177113a9adfcb9ef9af9679dc4557a0a3a4602e1bd39a6f481"


def python_worker_program():
    return [sys.executable, harness.example("python", "worker.py")]


def load_client_module():
    """examples/python/client.py imported as a library, as a user would."""
    spec = importlib.util.spec_from_file_location("sd_example_client",
                                                  harness.example("python", "client.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def words(text):
    """word_count's expected result (the Python worker's own task type)."""
    return {"words": len(text.split())}


def sample_text(i):
    """Texts with exactly i words, mixing separators and non-ASCII words."""
    seps = [" ", "\t", "  ", "\n", "\u3000"]
    return "".join(f"{['hola', 'canción', '😀', 'x'][k % 4]}{seps[k % len(seps)]}"
                   for k in range(i)).strip()


class PythonExamplesWithServer(harness.E2ETestCase):
    """Server.PythonExamples.*: the examples interoperate with the C++ binaries."""

    def setUp(self):
        super().setUp()
        self.server, self.port = harness.start_server()

    def tearDown(self):
        # No scenario here may crash the server; checked before cleanup kills it.
        self.server.assert_alive()
        super().tearDown()

    def start_python_worker(self, threads=4):
        return harness.start_worker(self.port, threads=threads, program=python_worker_program())

    def run_client(self, *args, timeout=60):
        return harness.run([sys.executable, harness.example("python", "client.py"),
                            "--host", "127.0.0.1", "--port", str(self.port), *args],
                           timeout=timeout)

    def parse_client_output(self, completed):
        self.assertEqual(completed.returncode, 0,
                         f"client failed\nstdout: {completed.stdout}\nstderr: {completed.stderr}")
        return [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]

    def assert_success(self, reply, result, worker_id):
        self.assertEqual(reply.get("type"), "RESULT", reply)
        self.assertEqual(reply.get("status"), "success", reply)
        self.assertEqual(reply.get("result"), result, reply)
        self.assertEqual(reply.get("worker_id"), worker_id, reply)
        self.assertIsInstance(reply.get("processing_time"), (int, float), reply)

    def test_client_cli_runs_word_count_on_python_worker(self):
        worker = self.start_python_worker()
        replies = self.parse_client_output(
            self.run_client("word_count", "uno dos  tres\tcuatro"))
        self.assertEqual(len(replies), 1, replies)
        self.assert_success(replies[0], {"words": 4}, worker.worker_id)

    def test_client_cli_pipelines_200_tasks_on_one_connection(self):
        worker = self.start_python_worker()
        text = "el veloz murciélago hindú comía feliz cardillo y kiwi"
        completed = self.run_client("--count", "200", "word_count", text)
        replies = self.parse_client_output(completed)
        self.assertEqual(len(replies), 200)
        self.assertEqual(len({r.get("task_id") for r in replies}), 200, "task ids must be distinct")
        for reply in replies:
            self.assert_success(reply, words(text), worker.worker_id)
        self.assertIn("200 tasks", completed.stderr)

    def test_client_library_pipelines_200_distinct_tasks_over_two_python_workers(self):
        first, second = self.start_python_worker(threads=2), self.start_python_worker(threads=2)
        client = load_client_module()
        texts = [sample_text(i) for i in range(200)]
        with client.Client("127.0.0.1", self.port, timeout=30) as c:
            replies = c.run_many([("word_count", {"text": t}) for t in texts])
            single = c.run("word_count", {"text": "y una más"})
        self.assertEqual(len(replies), 200)
        self.assertEqual(len({r.get("task_id") for r in replies}), 200)
        for text, reply in zip(texts, replies):
            self.assertEqual(reply.get("status"), "success", reply)
            self.assertEqual(reply.get("result"), words(text), reply)
        self.assertEqual(single.get("result"), {"words": 3}, single)
        # Round-robin: both workers took part.
        self.assertEqual({r["worker_id"] for r in replies},
                         {first.worker_id, second.worker_id})

    def test_python_worker_answers_bad_task_data_with_an_error_and_stays_healthy(self):
        worker = self.start_python_worker()
        conn = harness.connect(self.port)
        conn.send_many([
            {"type": "TASK", "task_id": "pyex-bad-1", "task_type": "word_count",
             "task_data": {"text": 5}},
            {"type": "TASK", "task_id": "pyex-bad-2", "task_type": "word_count",
             "task_data": {}},
            {"type": "TASK", "task_id": "pyex-good", "task_type": "word_count",
             "task_data": {"text": "sigue vivo"}},
        ])
        replies = {r.get("task_id"): r for r in conn.recv_n(3, timeout=15)}
        self.assertEqual(set(replies), {"pyex-bad-1", "pyex-bad-2", "pyex-good"}, replies)
        for task_id in ("pyex-bad-1", "pyex-bad-2"):
            reply = replies[task_id]
            self.assertEqual(reply.get("type"), "RESULT", reply)
            self.assertEqual(reply.get("status"), "error", reply)
            self.assertEqual(reply["error"]["code"], "invalid_task_data", reply)
            self.assertIn("text", reply["error"]["message"])
        self.assert_success(replies["pyex-good"], {"words": 2}, worker.worker_id)
        worker.assert_alive()

    def test_client_cli_gets_hola_mundo_hash_from_cpp_worker(self):
        worker = harness.start_worker(self.port)
        replies = self.parse_client_output(self.run_client("hash", "Hola Mundo"))
        self.assertEqual(len(replies), 1, replies)
        self.assertEqual(harness.expected_result("hash", {"text": "Hola Mundo"}),
                         {"hash": HOLA_MUNDO_SHA256})
        self.assert_success(replies[0], {"hash": HOLA_MUNDO_SHA256}, worker.worker_id)

    def test_each_task_type_goes_only_to_workers_that_declared_it(self):
        cpp = harness.start_worker(self.port, threads=2)
        py = self.start_python_worker(threads=2)
        conn = harness.connect(self.port)
        harness.wait_until(lambda: harness.stats_worker_count(conn.stats()) == 2,
                           message="STATS reporting both workers")
        tasks = {}
        for i in range(20):
            for task_type, data in (("hash", {"text": f"texto {i}"}),
                                    ("reverse", {"text": f"canción {i} 😀"}),
                                    ("fibonacci", {"n": 90 + i}),  # > 2**64 from n=95
                                    ("compute", {"iterations": 1 + i, "seed": str(i)}),
                                    ("word_count", {"text": sample_text(i)})):
                tasks[f"pyex-mixed-{task_type}-{i}"] = (task_type, data)
        conn.send_many({"type": "TASK", "task_id": task_id, "task_type": task_type,
                        "task_data": data} for task_id, (task_type, data) in tasks.items())
        replies = {r.get("task_id"): r for r in conn.recv_n(len(tasks), timeout=30)}
        self.assertEqual(set(replies), set(tasks))
        for task_id, (task_type, data) in tasks.items():
            if task_type == "word_count":
                self.assert_success(replies[task_id], words(data["text"]), py.worker_id)
            else:
                self.assert_success(replies[task_id], harness.expected_result(task_type, data),
                                    cpp.worker_id)


class PythonWorkerAgainstScriptedServer(harness.E2ETestCase):
    """Worker.Python.*: the test plays the server and checks the exact wire messages."""

    def start_against_script(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        proc = harness.Proc([*python_worker_program(), "--host", "127.0.0.1", "--port", port,
                             "--threads", "3"], name="worker.py")
        try:
            sock, _ = listener.accept()
        except socket.timeout:
            raise AssertionError(f"the worker did not connect\n{proc.output()}") from None
        conn = harness.Conn.from_socket(sock)
        register = conn.recv()
        self.assertEqual(register, {"type": "WORKER_REGISTER", "threads": 3,
                                    "task_types": ["word_count"], "name": "py-worker"})
        conn.send({"type": "REGISTERED", "worker_id": "worker_7"})
        proc.wait_for_line(r"\[WORKER\] Registrado con ID: worker_7$")
        return proc, conn

    def test_answers_tasks_and_ping_with_exact_messages(self):
        proc, conn = self.start_against_script()
        # Back to back without newlines, a line that is not JSON (skipped), then one
        # message split over two writes.
        conn.send_raw(
            b'{"type":"TASK","task_id":"t1","task_type":"word_count",'
            b'"task_data":{"text":"a b c"},"attempt":2}'
            b'{"type":"TASK","task_id":"t2","task_type":"nope","task_data":{}}'
            b' {"type":"PING"}\nnot json \xff\n{"type":"TASK","task_id":"t3","task_type":"word_count",')
        conn.send_raw('"task_data":{"text":"ñandú 😀"}}\n'.encode())
        replies = conn.recv_n(4)
        pongs = [r for r in replies if r.get("type") == "PONG"]
        self.assertEqual(pongs, [{"type": "PONG"}])
        results = {r["task_id"]: r for r in replies if r.get("type") == "RESULT"}
        self.assertEqual(set(results), {"t1", "t2", "t3"}, replies)
        for r in results.values():
            self.assertIsInstance(r.pop("processing_time"), float)
        self.assertEqual(results["t1"], {"type": "RESULT", "task_id": "t1", "attempt": 2,
                                         "status": "success", "result": {"words": 3},
                                         "worker_id": "worker_7"})
        self.assertEqual(results["t2"]["status"], "error")
        self.assertEqual(results["t2"]["error"]["code"], "unknown_task_type")
        self.assertNotIn("attempt", results["t2"])
        self.assertEqual(results["t3"]["result"], {"words": 2})
        proc.assert_alive()

    def test_exits_zero_on_sigterm_and_sigint(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                proc, conn = self.start_against_script()
                conn.send({"type": "TASK", "task_id": "last", "task_type": "word_count",
                           "task_data": {"text": "antes de salir"}})
                self.assertEqual(conn.recv()["result"], {"words": 3})
                proc.send_signal(sig)
                self.assertEqual(proc.wait_exit(10), 0, proc.output())
                self.assertEqual(conn.wait_closed(), [])


if __name__ == "__main__":
    import unittest
    unittest.main()
