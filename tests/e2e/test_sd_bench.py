"""sd-bench end to end: it passes a healthy system and fails loudly on any bad reply.

sd-bench is only worth its figures if it verifies every result, so besides a run
against the real servidor + workers, a scripted fake server feeds it a wrong result,
a duplicate and a lost task, and each must turn the exit status into 2.

sd-floor (the floor under the scale curve) must give the results servidor gives, or
its figures would not be the same work: sd-bench checks them.
"""

import importlib.util
import json
import os
import socket
import sys
import tempfile
import threading
import unittest

from harness import SD_BIN, Conn, E2ETestCase, Proc, binary, run, start_server, start_worker

SCALE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "scale.py")


def sd_bench(port, *args, timeout=60):
    """Runs sd-bench to completion against 127.0.0.1:port with its own 30 s bound."""
    return run([binary("sd-bench"), "--host", "127.0.0.1", "--port", str(port),
                "--timeout", "30s", *args], timeout=timeout)


def report_of(proc):
    """The --json report: the last line of stdout."""
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise AssertionError(f"sd-bench printed nothing; stderr:\n{proc.stderr}")
    return json.loads(lines[-1])


class SdBenchAgainstTheSystem(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server, cls.port = start_server()
        cls.workers = [start_worker(cls.port) for _ in range(2)]

    def tearDown(self):
        # Whatever sd-bench sent, the system must still be up for the next test.
        self.server.assert_alive()
        for w in self.workers:
            w.assert_alive()
        super().tearDown()

    def test_SdBench_2000ReverseTasks_AllVerifiedOk(self):
        p = sd_bench(self.port, "--type", "reverse", "--tasks", "2000", "--conns", "2",
                     "--inflight", "64", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        r = report_of(p)
        self.assertEqual(r["tasks"], 2000)
        self.assertEqual(r["ok"], 2000)
        self.assertEqual(r["errors"], 0)
        self.assertEqual(r["lost"], 0)
        self.assertEqual(r["duplicates"], 0)
        self.assertEqual(r["unexpected"], 0)
        self.assertGreater(r["throughput"], 0)
        self.assertGreater(r["latency_us"]["max"], 0)

    def test_SdBench_TaskRejectedByWorker_Exits2WithItsCode(self):
        # fibonacci's n must be 0..10000: every task fails with invalid_task_data.
        p = sd_bench(self.port, "--type", "fibonacci", "--payload", "10001", "--tasks", "20",
                     "--json")
        self.assertEqual(p.returncode, 2, p.stderr)
        r = report_of(p)
        self.assertEqual(r["ok"], 0)
        self.assertEqual(r["errors"], 20)
        self.assertEqual(r["errors_by_code"], {"invalid_task_data": 20})
        self.assertEqual(r["lost"], 0)


class FakeServer:
    """Answers the Nth TASK of its one client with `script(n, task)` (a list of
    replies); stops reading after `stop_after` tasks, so the rest are never answered."""

    def __init__(self, script, stop_after):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.stop_after = stop_after
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(30)
        conn, _ = self.sock.accept()
        with conn, conn.makefile("rb") as lines:
            for n, line in enumerate(lines, 1):
                task = json.loads(line)
                out = self.script(n, task)
                conn.sendall(b"".join((json.dumps(m) + "\n").encode() for m in out))
                if n == self.stop_after:
                    break
            # Keep the connection open so sd-bench sees silence, not a close.
            conn.settimeout(30)
            try:
                conn.recv(1)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def reply(task, result):
    return {"type": "RESULT", "task_id": task["task_id"], "status": "success", "result": result,
            "worker_id": "worker_1", "processing_time": 0.0001}


class SdBenchVerification(unittest.TestCase):
    def bench_fake(self, script, stop_after, tasks):
        fake = FakeServer(script, stop_after)
        self.addCleanup(fake.close)
        return sd_bench(fake.port, "--tasks", str(tasks), "--inflight", "1", "--timeout", "3s",
                        "--json")

    def test_SdBench_DifferentlyFormattedButEqualResult_IsOk(self):
        # Python's json.dumps spacing and \\u escapes are the same value: not a mismatch.
        p = self.bench_fake(lambda n, t: [reply(t, {"reversed": "odnum aloh"})], 3, 3)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(report_of(p)["ok"], 3)

    def test_SdBench_WrongDuplicateAndLostReplies_Exit2(self):
        def script(n, t):
            if n == 1:
                return [reply(t, {"reversed": "odnum aloh"})] * 2          # duplicate
            if n == 2:
                return [reply(t, {"reversed": "hola mundo"})]             # wrong result
            return []                                                     # never answered
        p = self.bench_fake(script, 3, 3)
        self.assertEqual(p.returncode, 2, p.stderr)
        r = report_of(p)
        self.assertEqual(r["ok"], 1)
        self.assertEqual(r["duplicates"], 1)
        self.assertEqual(r["errors_by_code"], {"result_mismatch": 1})
        self.assertEqual(r["lost"], 1)
        self.assertTrue(r["timed_out"])

    def test_SdBench_NoServer_Exits1(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()   # nothing listens there now
        p = sd_bench(port, "--tasks", "1")
        self.assertEqual(p.returncode, 1, p.stderr)


class SdFloor(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.floor = Proc([binary("sd-floor"), "--host", "127.0.0.1", "--port", "0"])
        cls.port = int(cls.floor.wait_for_line(r"sd-floor listening on 127\.0\.0\.1:(\d+)").group(1))

    def tearDown(self):
        self.floor.assert_alive()
        super().tearDown()

    def test_SdFloor_EveryBuiltInType_ResultsVerifiedBySdBench(self):
        for task_type, payload in (("reverse", "hola mundo"), ("hash", "abc"), ("fibonacci", "90"),
                                   ("compute", "1000")):
            with self.subTest(task_type=task_type):
                p = sd_bench(self.port, "--type", task_type, "--payload", payload, "--tasks", "500",
                             "--conns", "4", "--inflight", "16", "--json")
                self.assertEqual(p.returncode, 0, p.stderr)
                r = report_of(p)
                self.assertEqual((r["ok"], r["errors"], r["lost"], r["duplicates"], r["unexpected"]),
                                 (500, 0, 0, 0, 0))

    def test_SdFloor_TaskTheRegistryRefuses_ErrorResultAsFromAWorker(self):
        p = sd_bench(self.port, "--type", "fibonacci", "--payload", "10001", "--tasks", "5", "--json")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(report_of(p)["errors_by_code"], {"invalid_task_data": 5})

    def test_SdFloor_NotATask_ErrorAndTheConnectionStaysUsable(self):
        with Conn.connect(self.port) as c:
            c.send({"type": "PING"})
            self.assertEqual(c.recv()["code"], "unknown_message_type")
            c.send_raw(b'{"type": }\n')
            self.assertEqual(c.recv()["code"], "bad_json")
            c.send({"type": "TASK", "task_id": "t1", "task_type": "reverse", "task_data": {"text": "ab"}})
            self.assertEqual(c.recv(), {"type": "RESULT", "task_id": "t1", "status": "success",
                                        "result": {"reversed": "ba"}, "worker_id": "sd-floor"})


def load_scale_module():
    spec = importlib.util.spec_from_file_location("scale", SCALE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CurveShape(unittest.TestCase):
    """scale.py's verdict: each point over its pass's median, the median over passes."""

    def setUp(self):
        self.curve_shape = load_scale_module().curve_shape

    def test_CurveShape_APassAtHalfSpeed_SameShape(self):
        shape = self.curve_shape({1: [100, 50, 100], 10: [80, 40, 80], 200: [100, 50, 100]})
        self.assertEqual(shape, {1: 1.0, 10: 0.8, 200: 1.0})

    def test_CurveShape_OneLuckyRun_DoesNotSetTheBest(self):
        # 10 had one run at 1.5x: the best run would make 1 and 200 look 0.67 of it.
        shape = self.curve_shape({1: [100, 100, 100], 10: [150, 100, 100], 200: [100, 100, 100]})
        self.assertEqual(shape, {1: 1.0, 10: 1.0, 200: 1.0})

    def test_CurveShape_APassThatDidNotMeasureEveryPoint_DoesNotCount(self):
        shape = self.curve_shape({1: [100, 100, 999], 10: [50, 50]})
        self.assertEqual(shape, {1: 1.0 / 0.75, 10: 0.5 / 0.75})


class ScaleScript(E2ETestCase):
    """`make scale` end to end, on a tiny load: every sweep and every floor gets a point
    for each count, and every run passes sd-bench's checks (else the exit status is 1)."""

    def test_ScaleScript_TinyLoad_EverySweepAndFloorHasAllItsPoints(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "scale.json")
            p = run([sys.executable, SCALE_SCRIPT, "--bin", SD_BIN, "--reps", "1", "--workers", "1,2",
                     "--conns", "1,3", "--tasks", "2000", "--deep-load", "12", "--wide-inflight", "8",
                     "--json", out], timeout=240)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            with open(out) as f:
                table = json.load(f)
        expected = {"workers": [1, 2]}
        for sweep in ("conns", "conns-deep", "conns-wide"):
            expected[sweep] = expected["floor-" + sweep] = [1, 3]
        self.assertEqual({s: sorted(pt.get("conns", pt.get("workers")) for pt in pts) for s, pts in table.items()},
                         expected)
        per_conn = {s: {pt["conns"]: pt["inflight_per_conn"] for pt in pts} for s, pts in table.items() if s != "workers"}
        self.assertEqual(per_conn["conns"], {1: 256, 3: 86})
        self.assertEqual(per_conn["conns-deep"], {1: 12, 3: 4})
        self.assertEqual(per_conn["conns-wide"], {1: 8, 3: 8})
        for sweep, pts in table.items():
            for pt in pts:
                self.assertGreater(pt["rate"], 0, (sweep, pt))
                self.assertGreater(pt["shape"], 0, (sweep, pt))
        self.assertIn("conns-wide sweep: worst shape", p.stdout)


if __name__ == "__main__":
    unittest.main()
