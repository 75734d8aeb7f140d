"""Durable tasks and results (issue 5): real servers on a real SQLite file and a real
PostgreSQL, killed and restarted.

Every scenario runs on both stores: `SqliteDurability` (a store in a temporary folder)
and `PostgresDurability` (a schema of its own in the database SD_TEST_PG_URI names;
skipped, saying why, when it is unset: `make test` sets it through
scripts/with-postgres.sh).
"""

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest
import uuid

import harness
from harness import Conn, E2ETestCase, expected_result, start_server, start_worker, wait_until

PG_URI = os.environ.get("SD_TEST_PG_URI", "")
NO_PG = "SD_TEST_PG_URI is not set (run through scripts/with-postgres.sh, as `make test` does)"
HERE = os.path.dirname(os.path.abspath(__file__))
PG_CLUSTER = os.path.join(HERE, "..", "..", "scripts", "pg-test-cluster.sh")
FAST_HEARTBEAT = ("--heartbeat-interval-ms", "100ms", "--heartbeat-timeout-ms", "1000ms")


def with_param(uri, param):
    return uri + ("&" if "?" in uri else "?") + param


def psql(uri, sql):
    subprocess.run(["psql", uri, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True,
                   capture_output=True, timeout=60)


def ack_task(task_id, task_type, data):
    return {"type": "TASK", "task_id": task_id, "task_type": task_type, "task_data": data,
            "reply": "ack"}


def store_stats(conn):
    return conn.stats()["store"]


class DurabilityScenarios:
    """The scenarios (a mixin); the test classes say which store (`make_store_uri`)."""

    kind = None

    def make_store_uri(self):
        raise NotImplementedError

    def setUp(self):
        super().setUp()
        self.store_uri = self.make_store_uri()
        self.prefix = uuid.uuid4().hex[:10]

    def start(self, *args, port="0"):
        proc = harness.Proc([harness.binary("servidor"), "--host", "127.0.0.1", "--port", str(port),
                             "--store", self.store_uri, *FAST_HEARTBEAT, *args], name="servidor")
        got = int(proc.wait_for_line(harness.SERVER_READY, timeout=30).group(1))
        proc.wait_for_line(r"\[INFO\] Almacén: ", timeout=10)
        return proc, got

    # ------------------------------------------------------------------ (a) crash, restart

    def test_10000_async_tasks_survive_a_sigkill_each_result_stored_once(self):
        total = 10_000
        server, port = self.start()
        tasks = {}
        for i in range(total):
            tid = f"{self.prefix}-{i}"
            if i % 100 == 0:   # some slow ones, so that tasks are running at the kill
                tasks[tid] = ("sleep", {"ms": 300})
            else:
                tasks[tid] = ("reverse", {"text": f"durable {i} ñ😀"})
        with harness.connect(port, timeout=60) as client:
            items = list(tasks.items())
            for start in range(0, total, 2000):
                chunk = items[start:start + 2000]
                client.send_many([ack_task(t, ty, d) for t, (ty, d) in chunk])
                replies = client.recv_n(len(chunk), timeout=120)
                self.assertEqual([m.get("type") for m in replies], ["ACCEPTED"] * len(chunk),
                                 [m for m in replies if m.get("type") != "ACCEPTED"][:3])
                self.assertEqual([m["task_id"] for m in replies], [t for t, _ in chunk])
            st = store_stats(client)
            self.assertEqual((st["queued"], st["running"], st["done"]), (total, 0, 0), st)
        # The submitter is gone; workers start; the server dies while some run.
        workers = [start_worker(port, "--prefetch", "0", threads=4) for _ in range(2)]
        with harness.connect(port) as observer:
            before = wait_until(
                lambda: (lambda s: s if s["store"]["done"] >= 1500 and s["in_flight"] > 0 else None)(
                    observer.stats()),
                timeout=120, interval=0.02, message="some tasks done and others running")
        self.assertLess(before["store"]["done"], total, "the kill must come before the end")
        marks = [len(w.lines()) for w in workers]
        server.send_signal(signal.SIGKILL)
        self.assertEqual(server.wait_exit(), -signal.SIGKILL)

        second, _ = self.start(port=port)
        second.wait_for_line(r"Tareas recuperadas del almacén: \d+", timeout=10)
        for w, m in zip(workers, marks):
            w.wait_for_line(harness.WORKER_READY, timeout=30, start=m)
        with harness.connect(port, timeout=60) as client:
            wait_until(lambda: (lambda s: s if (s["queued"], s["running"], s["done"]) == (0, 0, total) else None)(
                store_stats(client)), timeout=240, interval=0.2, message="every task done in the store")
            ids = list(tasks)
            for start in range(0, total, 2000):
                chunk = ids[start:start + 2000]
                client.send_many([{"type": "GET_RESULT", "task_id": t} for t in chunk])
                replies = client.recv_n(len(chunk), timeout=120)
                for tid, msg in zip(chunk, replies):
                    self.assertEqual(msg.get("type"), "RESULT", msg)
                    self.assertEqual(msg["task_id"], tid)
                    self.assertEqual(msg.get("status"), "success", msg)
                    ty, data = tasks[tid]
                    self.assertEqual(msg["result"], expected_result(ty, data), msg)
            st = client.stats()
            self.assertEqual(st["store"]["done"], total, st)
            self.assertTrue(st["store"]["healthy"], st)

    def test_a_running_tasks_attempt_is_in_the_store_once_its_record_is_written(self):
        # The running record waits up to 50 ms for the result (a short task is written
        # once, when done); a task that runs longer has it written with the next commit.
        server, port = self.start()
        tid = f"{self.prefix}-long"
        start_worker(port, threads=1)
        with harness.connect(port) as client:
            self.assertEqual(client.request(ack_task(tid, "sleep", {"ms": 120000}))["type"], "ACCEPTED")
            written = lambda s: (s["in_flight"] == 1 and s["store"]["round_ops"] == 0
                                 and s["store"]["held_running_records"] == 0
                                 and s["store"]["commits_in_flight"] == 0 and s["store"]["pending_ops"] == 0)
            wait_until(lambda: (lambda s: s if written(s) else None)(client.stats()), timeout=30,
                       interval=0.02, message="the running record handed to the store and committed")
        server.send_signal(signal.SIGKILL)
        self.assertEqual(server.wait_exit(), -signal.SIGKILL)
        self.assertEqual(self.stored_state_and_attempt(tid), (1, 1))

    def test_sigterm_keeps_queued_async_tasks_for_the_next_start(self):
        server, port = self.start()
        ids = [f"{self.prefix}-keep-{i}" for i in range(20)]
        with harness.connect(port) as client:
            client.send_many([ack_task(t, "hash", {"text": t}) for t in ids])
            self.assertEqual({m["type"] for m in client.recv_n(len(ids))}, {"ACCEPTED"})
            sync = "sync-" + self.prefix
            client.send({"type": "TASK", "task_id": sync, "task_type": "hash", "task_data": {"text": "x"}})
            server.send_signal(signal.SIGTERM)
            msg = client.recv_until(lambda m: m.get("task_id") == sync)
            self.assertEqual(msg["error"]["code"], "server_shutdown", msg)
        self.assertEqual(server.wait_exit(timeout=20), 0)
        second, port = self.start()
        second.wait_for_line(r"Tareas recuperadas del almacén: 20\b")
        start_worker(port, threads=2)
        with harness.connect(port) as client:
            for t in ids:
                msg = client.request({"type": "GET_RESULT", "task_id": t, "wait_ms": 10000}, timeout=15)
                self.assertEqual(msg["type"], "RESULT", msg)
                self.assertEqual(msg["result"], expected_result("hash", {"text": t}))

    # ------------------------------------------------------------------ (b) GET_RESULT

    def test_get_result_waits_for_the_result_and_reports_states(self):
        server, port = self.start()
        tid = f"{self.prefix}-wait"
        with harness.connect(port) as client:
            self.assertEqual(client.request({"type": "GET_RESULT", "task_id": "nope-" + self.prefix}),
                             {"type": "STATUS", "task_id": "nope-" + self.prefix, "state": "unknown"})
            self.assertEqual(client.request(ack_task(tid, "sleep", {"ms": 700})),
                             {"type": "ACCEPTED", "task_id": tid})
        with harness.connect(port) as client:   # the submitter left; no worker yet
            self.assertEqual(client.request({"type": "GET_RESULT", "task_id": tid}),
                             {"type": "STATUS", "task_id": tid, "state": "queued"})
            msg = client.request({"type": "GET_RESULT", "task_id": tid, "wait_ms": 300})
            self.assertEqual(msg, {"type": "STATUS", "task_id": tid, "state": "queued"})
            start_worker(port, threads=1)
            t0 = time.monotonic()
            msg = client.request({"type": "GET_RESULT", "task_id": tid, "wait_ms": 20000}, timeout=25)
            elapsed = time.monotonic() - t0
            self.assertEqual(msg["type"], "RESULT", msg)
            self.assertEqual(msg["result"], {"slept_ms": 700})
            self.assertLess(elapsed, 10, "GET_RESULT must answer as soon as the result arrives")
            # Done: answered at once, from memory or the store, as often as asked.
            self.assertEqual(client.request({"type": "GET_RESULT", "task_id": tid})["result"], {"slept_ms": 700})
        # After a restart, from the store.
        server.send_signal(signal.SIGKILL)
        server.wait_exit()
        _, port = self.start()
        with harness.connect(port) as client:
            msg = client.request({"type": "GET_RESULT", "task_id": tid})
            self.assertEqual((msg["type"], msg["result"]), ("RESULT", {"slept_ms": 700}), msg)

    def test_cliente_submit_async_and_result(self):
        server, port = self.start()
        common = ["--host", "127.0.0.1", "--port", str(port)]
        out = harness.run([harness.binary("cliente"), "submit", "--async", "hash", "texto durable", *common])
        self.assertEqual(out.returncode, 0, out)
        tid = out.stdout.strip()
        self.assertTrue(tid, out)
        pending = harness.run([harness.binary("cliente"), "result", tid, *common])
        self.assertEqual(pending.returncode, 1, pending)
        self.assertIn("queued", pending.stderr)
        start_worker(port, threads=1)
        done = harness.run([harness.binary("cliente"), "result", tid, "--wait", "10s", *common])
        self.assertEqual(done.returncode, 0, done)
        self.assertIn(expected_result("hash", {"text": "texto durable"})["hash"], done.stdout)
        unknown = harness.run([harness.binary("cliente"), "result", "no-such-" + self.prefix, *common])
        self.assertEqual(unknown.returncode, 1, unknown)
        self.assertIn("unknown", unknown.stderr)

    # ------------------------------------------------------------------ (c) idempotency

    def test_resubmission_by_task_id(self):
        server, port = self.start()
        tid = f"{self.prefix}-idem"
        task = {"type": "TASK", "task_id": tid, "task_type": "hash", "task_data": {"text": "uno"}}
        worker = start_worker(port, threads=1)
        with harness.connect(port) as client:
            first = client.request(task)
            self.assertEqual(first["result"], expected_result("hash", {"text": "uno"}))
            accepted = client.stats()["accepted"]
            # Same id, same content, finished: the stored result, not run again.
            again = client.request(task)
            self.assertEqual(again, first)
            self.assertEqual(client.stats()["accepted"], accepted)
            # Same id, other content, finished: a new task that replaces it.
            other = dict(task, task_data={"text": "dos"})
            replaced = client.request(other)
            self.assertEqual(replaced["result"], expected_result("hash", {"text": "dos"}))
            self.assertEqual(client.request({"type": "GET_RESULT", "task_id": tid})["result"],
                             expected_result("hash", {"text": "dos"}))
        worker.kill()
        # Pending: same connection -> duplicate; another connection, same content -> attached;
        # other content -> duplicate.
        pid = f"{self.prefix}-pending"
        pending = {"type": "TASK", "task_id": pid, "task_type": "hash", "task_data": {"text": "p"}}
        with harness.connect(port) as first, harness.connect(port) as second:
            wait_until(lambda: harness.stats_worker_count(first.stats()) == 0, message="worker gone")
            first.send(pending)
            wait_until(lambda: first.stats()["queued"] == 1, message="task queued")
            self.assertEqual(first.request(pending)["code"], "duplicate_task_id")
            self.assertEqual(second.request(dict(pending, task_data={"text": "q"}))["code"], "duplicate_task_id")
            second.send(pending)
            wait_until(lambda: second.stats()["attached"] == 1, message="attached")
            start_worker(port, threads=1)
            msg = second.recv_until(lambda m: m.get("type") == "RESULT")
            self.assertEqual(msg["result"], expected_result("hash", {"text": "p"}))


class SqliteDurability(DurabilityScenarios, E2ETestCase):
    kind = "sqlite"

    def make_store_uri(self):
        d = tempfile.mkdtemp(prefix="sd-durability-")
        self.addCleanup(shutil.rmtree, d, True)
        return "sqlite:" + os.path.join(d, "sd.db")

    def stored_state_and_attempt(self, task_id):
        db = sqlite3.connect(self.store_uri[len("sqlite:"):])
        try:
            return db.execute("SELECT state, attempt FROM sd_tasks WHERE task_id = ?", (task_id,)).fetchone()
        finally:
            db.close()

    # ------------------------------------------------------------------ (d) failing stores

    def test_a_store_that_cannot_be_opened_is_a_clear_error(self):
        bad = tempfile.mkdtemp(prefix="sd-bad-")
        self.addCleanup(shutil.rmtree, bad, True)
        not_a_dir = os.path.join(bad, "file")
        with open(not_a_dir, "w") as f:
            f.write("x")
        uris = [f"sqlite:{not_a_dir}/sd.db", "sqlite:/proc/sd-durability-test.db"]
        if os.geteuid() != 0:   # root writes read-only files anyway
            ro = os.path.join(bad, "ro.db")
            open(ro, "w").close()
            os.chmod(ro, 0o444)
            ro_dir = os.path.join(bad, "ro-dir")
            os.mkdir(ro_dir, 0o555)
            uris += [f"sqlite:{ro}", f"sqlite:{ro_dir}/sd.db"]
        for uri in uris:
            with self.subTest(uri=uri):
                proc = harness.Proc([harness.binary("servidor"), "--host", "127.0.0.1", "--port", "0",
                                     "--store", uri], name="servidor")
                self.assertEqual(proc.wait_exit(timeout=20), 1, proc.output())
                errors = [l for l in proc.lines() if "almacén" in l.lower()]
                self.assertTrue(errors, proc.output())
                self.assertNotIn("Servidor iniciado", proc.output())

    def test_default_store_is_sqlite_under_the_data_dir(self):
        d = tempfile.mkdtemp(prefix="sd-datadir-")
        self.addCleanup(shutil.rmtree, d, True)
        data = os.path.join(d, "nested", "sd-data")
        proc = harness.Proc([harness.binary("servidor"), "--host", "127.0.0.1", "--port", "0",
                             "--data-dir", data], name="servidor")
        proc.wait_for_line(harness.SERVER_READY)
        line = proc.wait_for_line(r"\[INFO\] Almacén: sqlite:(\S+)").group(1)
        self.assertEqual(line, os.path.join(data, "sd.db"))
        self.assertTrue(os.path.exists(os.path.join(data, "sd.db")))


    def test_plain_servidor_keeps_its_data_in_sqlite_under_sd_data(self):
        cwd = tempfile.mkdtemp(prefix="sd-plain-")
        self.addCleanup(shutil.rmtree, cwd, True)
        env = {"SD_STORE": ""}   # whatever the caller's environment says
        proc = harness.Proc([harness.binary("servidor"), "--host", "127.0.0.1", "--port", "0"],
                            env=env, cwd=cwd, name="servidor")
        proc.wait_for_line(harness.SERVER_READY)
        db = os.path.join(os.path.realpath(cwd), "sd-data", "sd.db")
        self.assertEqual(proc.wait_for_line(r"\[INFO\] Almacén: sqlite:(\S+)").group(1), db)
        # One server per database: a second one on the same folder says why it cannot start.
        second = harness.Proc([harness.binary("servidor"), "--host", "127.0.0.1", "--port", "0"],
                              env=env, cwd=cwd, name="servidor-2")
        self.assertEqual(second.wait_exit(timeout=30), 1, second.output())
        self.assertIn("database is locked (another process has it open: is another server using "
                      "this data directory?)", second.output())
        self.assertNotIn("Servidor iniciado", second.output())
        # Nor may another process read the file meanwhile (stop the server to inspect it).
        with self.assertRaisesRegex(sqlite3.OperationalError, "database is locked"):
            with contextlib.closing(sqlite3.connect(db, timeout=0.1)) as other:
                other.execute("SELECT count(*) FROM sd_tasks").fetchall()
        # The first one is undisturbed.
        conn = harness.connect(int(re.search(harness.SERVER_READY, proc.output()).group(1)))
        self.assertEqual(conn.request({"type": "PING"}).get("type"), "PONG")

    def test_sd_store_environment_variable_chooses_the_store(self):
        cwd = tempfile.mkdtemp(prefix="sd-env-")
        self.addCleanup(shutil.rmtree, cwd, True)
        proc = harness.Proc([harness.binary("servidor"), "--host", "127.0.0.1", "--port", "0"],
                            env={"SD_STORE": "memory"}, cwd=cwd, name="servidor")
        self.assertEqual(proc.wait_for_line(r"\[INFO\] Almacén: (\S+)").group(1), "memory")
        self.assertFalse(os.path.exists(os.path.join(cwd, "sd-data")))


@unittest.skipUnless(PG_URI, NO_PG)
class PostgresDurability(DurabilityScenarios, E2ETestCase):
    kind = "postgres"

    def make_store_uri(self):
        schema = "e2e_" + uuid.uuid4().hex[:12]
        psql(PG_URI, f"CREATE SCHEMA {schema}")
        self.addCleanup(psql, PG_URI, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        return with_param(PG_URI, f"options=-csearch_path%3D{schema}")

    def stored_state_and_attempt(self, task_id):
        # Through stdin: psql interpolates the variable there (not with -c).
        out = subprocess.run(["psql", self.store_uri, "-v", "ON_ERROR_STOP=1", "-t", "-A", "-F", ",", "-v",
                              f"id={task_id}"], input="SELECT state, attempt FROM sd_tasks WHERE task_id = :'id';\n",
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()
        return tuple(int(x) for x in out.split(",")) if out else None

    @unittest.skipUnless(os.path.isdir("/usr/lib/postgresql"), "PostgreSQL's binaries are not installed")
    def test_database_stopped_at_run_time_keeps_serving_from_memory(self):
        # A cluster of its own, since this test stops it.
        parent = tempfile.mkdtemp(prefix="sd-pg-stop-")
        os.chmod(parent, 0o755)
        cluster = os.path.join(parent, "pg")
        uri = subprocess.run(["bash", PG_CLUSTER, "start", cluster], check=True, capture_output=True,
                             text=True, timeout=120).stdout.strip()
        stopped = [False]

        def stop():
            if not stopped[0]:
                stopped[0] = True
                subprocess.run(["bash", PG_CLUSTER, "stop", cluster], capture_output=True, timeout=120)
        self.addCleanup(shutil.rmtree, parent, True)
        self.addCleanup(stop)
        self.store_uri = uri
        server, port = self.start()
        start_worker(port, threads=2)
        with harness.connect(port) as client:
            msg = client.request({"type": "TASK", "task_id": "before", "task_type": "hash",
                                  "task_data": {"text": "a"}})
            self.assertEqual(msg["status"], "success", msg)
            stop()
            for i in range(5):
                msg = client.request({"type": "TASK", "task_id": f"during-{i}", "task_type": "hash",
                                      "task_data": {"text": str(i)}}, timeout=30)
                self.assertEqual(msg["result"], expected_result("hash", {"text": str(i)}), msg)
            st = client.stats()["store"]
            self.assertFalse(st["healthy"], st)
            self.assertIn("last_error", st)
            self.assertGreater(st["pending_ops"], 0, st)
            self.assertEqual(client.request({"type": "GET_RESULT", "task_id": "during-3"})["result"],
                             expected_result("hash", {"text": "3"}))
        server.assert_alive()
        server.wait_for_line(r"Almacén no disponible")


if __name__ == "__main__":
    unittest.main()
