"""The `cliente` program end to end: its subcommands for scripts, its exit statuses,
and the seed's interactive menu driven through a pipe, against a real server and worker."""

import json
import os
import re
import select
import signal
import socket
import subprocess
import time
import unittest

import harness
from harness import E2ETestCase, Proc, expected_result, start_server, start_worker

HOLA_MUNDO_HASH = "c3a4a2e49d91f2177113a9adfcb9ef9af9679dc4557a0a3a4602e1bd39a6f481"
COMPUTE_3_DIGEST = "aa6ac2d4961882f42a345c7615f4133dde8e6d6e7c1b6b40ae4ff6ee52c393d0"

MENU_PROMPT = "Selecciona una opción: "
ANSI_OR_CR = re.compile(r"\r|\x1b\[[0-9;]*[A-Za-z]")


def cliente(port, *args, input=None, timeout=60, env=None):
    """Runs `cliente --host 127.0.0.1 --port PORT *args`; CompletedProcess (text)."""
    return harness.run([harness.binary("cliente"), "--host", "127.0.0.1", "--port", str(port), *args],
                       timeout=timeout, input=input, env=env)


def free_port():
    """A port nobody listens on: bound by us, then released, never listened on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def describe(res):
    return f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"


class Subcommands(E2ETestCase):
    """One server and one worker for every subcommand test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server, cls.port = start_server()
        cls.worker = start_worker(cls.port)

    def run_ok(self, *args, **kw):
        res = cliente(self.port, *args, **kw)
        self.assertEqual(res.returncode, 0, describe(res))
        self.assertEqual(res.stderr, "", describe(res))
        return res

    def result_of(self, *args):
        res = self.run_ok(*args)
        lines = res.stdout.splitlines()
        self.assertEqual(len(lines), 1, describe(res))
        return json.loads(lines[0])

    def test_hash_prints_the_result_json_on_one_line(self):
        res = self.run_ok("hash", "Hola Mundo")
        self.assertEqual(res.stdout, '{"hash":"%s"}\n' % HOLA_MUNDO_HASH)

    def test_fibonacci_15(self):
        self.assertEqual(self.result_of("fibonacci", "15"), expected_result("fibonacci", {"n": 15}))

    def test_fibonacci_100_keeps_integers_beyond_64_bits_exact(self):
        self.assertEqual(self.result_of("fibonacci", "100"), expected_result("fibonacci", {"n": 100}))

    def test_reverse_by_code_point(self):
        self.assertEqual(self.result_of("reverse", "canción 😀"), {"reversed": "😀 nóicnac"})

    def test_compute_3_with_empty_seed(self):
        self.assertEqual(self.result_of("compute", "3", "--seed", ""),
                         {"digest": COMPUTE_3_DIGEST, "iterations": 3})
        self.assertEqual(self.result_of("compute", "3"), {"digest": COMPUTE_3_DIGEST, "iterations": 3})

    def test_compute_with_seed(self):
        self.assertEqual(self.result_of("compute", "7", "--seed", "semilla"),
                         expected_result("compute", {"iterations": 7, "seed": "semilla"}))

    def test_sleep(self):
        self.assertEqual(self.result_of("sleep", "20"), {"slept_ms": 20})

    def test_generic_task_subcommand(self):
        self.assertEqual(self.result_of("task", "hash", '{ "text" : "Hola Mundo" }'), {"hash": HOLA_MUNDO_HASH})

    def test_global_options_may_follow_the_subcommand(self):
        res = harness.run([harness.binary("cliente"), "hash", "Hola Mundo", "--host", "127.0.0.1",
                           "--port", str(self.port)])
        self.assertEqual(res.returncode, 0, describe(res))
        self.assertEqual(json.loads(res.stdout), {"hash": HOLA_MUNDO_HASH})

    def test_json_prints_the_raw_result_message(self):
        res = self.run_ok("--json", "hash", "Hola Mundo")
        lines = res.stdout.splitlines()
        self.assertEqual(len(lines), 1, describe(res))
        msg = json.loads(lines[0])
        self.assertEqual(msg["type"], "RESULT")
        self.assertEqual(msg["status"], "success")
        self.assertEqual(msg["result"], {"hash": HOLA_MUNDO_HASH})
        self.assertEqual(msg["worker_id"], self.worker.worker_id)
        self.assertRegex(msg["task_id"], r"^[0-9a-f]{12}-1$")

    def test_failed_task_exits_1_with_code_and_message_on_stderr(self):
        res = cliente(self.port, "fibonacci", "10001")
        self.assertEqual(res.returncode, 1, describe(res))
        self.assertEqual(res.stdout, "")
        self.assertRegex(res.stderr, r"^error: invalid_task_data: .*'n'.*\n$")

    def test_failed_task_with_json_still_prints_the_result_message(self):
        res = cliente(self.port, "--json", "fibonacci", "-1")
        self.assertEqual(res.returncode, 1, describe(res))
        msg = json.loads(res.stdout)
        self.assertEqual((msg["status"], msg["error"]["code"]), ("error", "invalid_task_data"))

    def test_client_timeout_exits_1_with_one_line(self):
        res = cliente(self.port, "--timeout", "100ms", "sleep", "3000")
        self.assertEqual(res.returncode, 1, describe(res))
        self.assertRegex(res.stderr, r"^error: timeout: sin respuesta de 127\.0\.0\.1:\d+ .*100ms\n$")

    def test_bad_timeout_is_a_usage_error(self):
        res = cliente(self.port, "--timeout", "pronto", "hash", "a")
        self.assertNotIn(res.returncode, (0, 1, 2), describe(res))
        self.assertIn("--timeout", res.stderr)

    def test_batch_500_completes(self):
        res = self.run_ok("batch", "--count", "500", timeout=120)
        out = res.stdout
        self.assertIn("Enviando 500 tareas...", out)
        self.assertRegex(out, r"(?m)^✓ 500 tareas completadas en \d+\.\d+s$")
        self.assertRegex(out, r"(?m)^✓ Promedio: \d+\.\d+s por tarea$")
        self.assertRegex(out, r"(?m)^throughput: \d+ tareas/s$")
        self.assertRegex(out, r"(?m)^latencia p50: \d+\.\d+ ms  p99: \d+\.\d+ ms")
        self.assertNotIn("✗", out)
        self.assertNotIn("\r", out, "no progress bar redraws when stdout is not a terminal")

    def test_batch_json_summary_counts_every_task_once(self):
        res = self.run_ok("--json", "batch", "--count", "2000", "--type", "reverse", "--window", "64",
                          timeout=120)
        summary = json.loads(res.stdout)
        self.assertEqual((summary["total"], summary["completed"], summary["failed"]), (2000, 2000, 0))
        self.assertEqual((summary["lost"], summary["duplicates"], summary["unexpected"]), (0, 0, 0))
        self.assertGreater(summary["throughput"], 0)
        lat = summary["latency_ms"]
        self.assertLessEqual(lat["p50"], lat["p99"])
        self.assertLessEqual(lat["p99"], lat["max"])

    def test_batch_of_failing_tasks_exits_1_and_counts_them_by_code(self):
        res = cliente(self.port, "batch", "--count", "10", "--type", "fibonacci", "--data", '{"n":-1}')
        self.assertEqual(res.returncode, 1, describe(res))
        self.assertIn("✓ 0 tareas completadas en", res.stdout)
        self.assertIn("✗ 10 tareas fallaron (invalid_task_data: 10)", res.stdout)

    def test_stats_prints_the_servers_json(self):
        stats = json.loads(self.run_ok("stats").stdout)
        self.assertEqual(stats["type"], "STATS")
        self.assertEqual(harness.stats_worker_count(stats), 1)

    def test_ping(self):
        self.assertRegex(self.run_ok("ping").stdout, r"^PONG de 127\.0\.0\.1:\d+ en \d+\.\d+ ms\n$")
        self.assertEqual(json.loads(self.run_ok("--json", "ping").stdout), {"type": "PONG"})


class CppExample(E2ETestCase):
    def test_example_client_submits_and_collects_tasks(self):
        path = os.path.join(harness.SD_BIN, "example_client")
        if not os.access(path, os.X_OK):
            self.skipTest(f"example_client not built at {path} (SD_BUILD_EXAMPLES=OFF?)")
        _, port = start_server()
        start_worker(port)
        res = harness.run([path, "127.0.0.1", str(port)])
        self.assertEqual(res.returncode, 0, describe(res))
        lines = res.stdout.splitlines()
        self.assertEqual(lines[0], 'hash: {"hash":"%s"}' % HOLA_MUNDO_HASH)
        self.assertEqual([json.loads(line.split(": ", 1)[1]) for line in lines[1:]],
                         [expected_result("fibonacci", {"n": n}) for n in (5, 10, 20)])


class NoServer(unittest.TestCase):
    """Nothing listens on the port: exit 2 and one line on stderr, never a stack dump."""

    def test_single_task_exits_2_with_one_line(self):
        port = free_port()
        res = cliente(port, "hash", "Hola Mundo")
        self.assertEqual(res.returncode, 2, describe(res))
        self.assertEqual(res.stdout, "")
        self.assertEqual(res.stderr, f"error: no se pudo conectar a 127.0.0.1:{port}: Connection refused\n")

    def test_every_subcommand_exits_2(self):
        port = free_port()
        for args in (["batch", "--count", "5"], ["stats"], ["ping"], ["fibonacci", "3"]):
            res = cliente(port, *args)
            self.assertEqual(res.returncode, 2, f"{args}: {describe(res)}")
            self.assertEqual(len(res.stderr.splitlines()), 1, describe(res))
            self.assertTrue(res.stderr.startswith("error: no se pudo conectar a "), describe(res))

    def test_menu_reports_the_failure_and_carries_on(self):
        port = free_port()
        res = cliente(port, input="1\nHola Mundo\n0\n")
        self.assertEqual(res.returncode, 0, describe(res))
        self.assertIn(f"[CLIENTE] Error: no se pudo conectar a 127.0.0.1:{port}: Connection refused\n",
                      res.stdout)
        self.assertTrue(res.stdout.endswith("¡Hasta luego!\n"), describe(res))


class Auth(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server, cls.port = start_server("--token", "s3creto")
        cls.worker = start_worker(cls.port, "--token", "s3creto")

    def test_token_from_option_or_environment(self):
        res = cliente(self.port, "--token", "s3creto", "hash", "Hola Mundo")
        self.assertEqual((res.returncode, res.stdout), (0, '{"hash":"%s"}\n' % HOLA_MUNDO_HASH), describe(res))
        res = cliente(self.port, "hash", "Hola Mundo", env={"SD_TOKEN": "s3creto"})
        self.assertEqual(res.returncode, 0, describe(res))

    def test_wrong_or_missing_token_exits_2_unauthorized(self):
        for extra in (["--token", "otro"], []):
            res = cliente(self.port, *extra, "hash", "a", env={"SD_TOKEN": ""})
            self.assertEqual(res.returncode, 2, describe(res))
            self.assertRegex(res.stderr, r"^error: no autorizado: .+\n$")


class Menu(E2ETestCase):
    """The seed's interactive menu, its input coming from a pipe."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server, cls.port = start_server()
        cls.worker = start_worker(cls.port)

    def menu(self, text, **kw):
        res = cliente(self.port, input=text, **kw)
        self.assertEqual(res.returncode, 0, describe(res))
        self.assertEqual(res.stderr, "", describe(res))
        return res.stdout

    def test_banner_and_options_are_the_seeds(self):
        out = self.menu("0\n")
        eq, dash = "=" * 60, "-" * 60
        self.assertTrue(out.startswith(
            f"{eq}\nCLIENTE DEL SISTEMA DISTRIBUIDO\n{eq}\n\n"
            f"{dash}\nTIPOS DE TAREAS:\n{dash}\n"
            "1. Hash SHA-256\n2. Fibonacci\n3. Invertir texto\n4. Cálculo computacional\n"
            f"5. Enviar múltiples tareas\n0. Salir\n{dash}\n\n{MENU_PROMPT}"), out)
        self.assertTrue(out.endswith("¡Hasta luego!\n"), out)

    def test_hash_batch_bad_inputs_then_exit(self):
        out = self.menu("1\nHola Mundo\n5\n20\nabc\n\n9\n0\n", timeout=120)
        lines = out.splitlines()
        sent = re.search(r"^(?:.*: )?\[CLIENTE\] Enviando tarea (\S+) \(tipo: hash\)$", out, re.M)
        self.assertIsNotNone(sent, out)
        task_id = sent.group(1)
        self.assertIn(f"[CLIENTE] Tarea {task_id} completada", lines)
        self.assertIn(f'[CLIENTE] Resultado: {{"hash":"{HOLA_MUNDO_HASH}"}}', lines)
        # Option 5, as the seed prints it, then throughput and latency.
        self.assertIn("Enviando 20 tareas...", lines)
        self.assertIn("[CLIENTE] Enviando tarea 1...", lines)
        self.assertRegex(out, r"(?m)^✓ 20 tareas completadas en \d+\.\d+s$")
        self.assertRegex(out, r"(?m)^✓ Promedio: \d+\.\d+s por tarea$")
        self.assertRegex(out, r"(?m)^throughput: \d+ tareas/s$")
        self.assertRegex(out, r"(?m)^latencia p50: \d+\.\d+ ms  p99: \d+\.\d+ ms")
        # Each bad choice gets a hint and the menu again.
        self.assertIn('Opción no válida: "abc". Elige un número del 0 al 5.', out)
        self.assertIn("No escribiste ninguna opción. Elige un número del 0 al 5.", out)
        self.assertIn('Opción no válida: "9". Elige un número del 0 al 5.', out)
        self.assertEqual(out.count("TIPOS DE TAREAS:"), 6)  # 1, 5, abc, "", 9, 0
        self.assertEqual(out.count("CLIENTE DEL SISTEMA DISTRIBUIDO"), 1)
        self.assertTrue(out.endswith("¡Hasta luego!\n"), out)
        self.assertNotIn("\r", out)

    def test_fibonacci_default_reverse_and_compute(self):
        out = self.menu("2\n\n2\n15\n3\nhola\n4\n3\n0\n")
        results = [json.loads(m) for m in re.findall(r"\[CLIENTE\] Resultado: (.*)$", out, re.M)]
        self.assertEqual(results, [
            expected_result("fibonacci", {"n": 10}),
            expected_result("fibonacci", {"n": 15}),
            {"reversed": "aloh"},
            {"digest": COMPUTE_3_DIGEST, "iterations": 3},
        ])
        for prompt in ("Cantidad de números (default 10): ", "Ingresa el texto: ", "Iteraciones (default 5000): "):
            self.assertIn(prompt, out)

    def test_bad_values_in_prompts_get_a_hint_and_the_menu_again(self):
        out = self.menu("2\nx\n2\n99999\n1\n\n5\n0\n0\n")
        self.assertIn('"x" no es un número entero. Escribe un número entero entre 0 y 10000.', out)
        self.assertIn("99999 está fuera de rango. Escribe un número entero entre 0 y 10000.", out)
        self.assertIn("El texto no puede estar vacío. Escribe algún texto.", out)
        self.assertIn("0 está fuera de rango. Escribe un número entero entre 1 y 1000000.", out)
        self.assertNotIn("[CLIENTE] Enviando", out)
        self.assertTrue(out.endswith("¡Hasta luego!\n"), out)

    def test_end_of_input_exits_0(self):
        for text in ("", "1\n", "5\n", "abc"):
            out = self.menu(text)
            self.assertTrue(out.endswith("\n¡Hasta luego!\n"), f"{text!r}: {out}")

    def test_task_error_is_printed_with_code_and_message(self):
        # 10^8 rounds of SHA-256 cannot finish within the task's 50 ms timeout. Its own
        # server and worker, so the abandoned computation delays no other test.
        _, port = start_server()
        start_worker(port)
        res = cliente(port, "--timeout-ms", "50", input="4\n100000000\n0\n")
        self.assertEqual(res.returncode, 0, describe(res))
        self.assertRegex(res.stdout, r"(?m)^\[CLIENTE\] Error en tarea \S+: timeout: .+$")

    def test_ctrl_c_exits_cleanly(self):
        proc = subprocess.Popen([harness.binary("cliente"), "--port", str(self.port)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(proc.kill)
        self.addCleanup(proc.stdin.close)
        seen = b""
        deadline = time.monotonic() + 10
        while MENU_PROMPT.encode() not in seen:
            remaining = deadline - time.monotonic()
            self.assertGreater(remaining, 0, f"no menu prompt: {seen!r}")
            ready, _, _ = select.select([proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                self.assertTrue(chunk, f"cliente closed its output: {seen!r}")
                seen += chunk
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            self.fail("cliente ignored SIGINT")
        err = proc.stderr.read().decode()
        self.assertIn(code, (0, 130, -signal.SIGINT), err)
        self.assertNotIn("Traceback", err)
        self.assertNotIn("terminate called", err)
        proc.stdout.close()
        proc.stderr.close()


class ConnectionLost(E2ETestCase):
    def test_server_dying_mid_batch_exits_2_with_one_line(self):
        server, port = start_server()
        start_worker(port)
        proc = Proc([harness.binary("cliente"), "--host", "127.0.0.1", "--port", str(port),
                     "batch", "--count", "100000", "--type", "sleep", "--window", "100"], name="cliente")
        proc.wait_for_line(r"^Enviando 100000 tareas\.\.\.$")
        server.kill()
        self.assertEqual(proc.wait_exit(15), 2, proc.output())
        errors = [line for line in proc.lines() if line.startswith("error: ")]
        self.assertEqual(len(errors), 1, proc.output())
        self.assertRegex(errors[0], r"^error: (el servidor 127\.0\.0\.1:\d+ cerró la conexión"
                                    r"|se perdió la conexión con 127\.0\.0\.1:\d+: .+)$")


if __name__ == "__main__":
    unittest.main()
