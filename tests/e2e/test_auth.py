"""Authentication: --token / SD_TOKEN, and the protected mode of a server without one.

With a token, a connection's first message must carry it ("token" field); otherwise the
server answers ERROR unauthorized and closes. Without a token the server only serves
loopback peers unless started with --insecure.

Run from tests/e2e:  SD_BIN=... python3 -m unittest -v test_auth
"""
import ipaddress
import os
import socket
import subprocess

import harness

TOKEN = "s3cret"
ANY_SERVER_READY = r"\[INFO\] Servidor iniciado en (\S+):(\d+)"


def cliente_path():
    path = os.path.join(harness.SD_BIN, "cliente")
    return path if os.access(path, os.X_OK) else None


def non_loopback_ipv4():
    """A local IPv4 address that is not loopback, or None.

    Every 127.0.0.0/8 address is loopback, so a non-loopback peer can only be made
    from an address of another interface of this machine (a connection from it to
    itself carries that address as its source)."""
    candidates = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))   # UDP connect: picks a route, sends nothing
            candidates.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
        candidates += out.split()
    except (OSError, subprocess.SubprocessError):
        pass
    for ip in candidates:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if addr.version != 4 or addr.is_loopback or addr.is_unspecified:
            continue
        try:
            with socket.socket() as probe:
                probe.bind((ip, 0))
        except OSError:
            continue
        return ip
    return None


class AuthCase(harness.E2ETestCase):

    def assert_refused(self, conn, first_message=None, raw=None):
        """The first message gets ERROR unauthorized and the connection is closed."""
        if raw is not None:
            conn.send_raw(raw)
        else:
            conn.send(first_message)
        got = conn.wait_closed()
        self.assertEqual([(m.get("type"), m.get("code")) for m in got],
                         [("ERROR", "unauthorized")], (first_message or raw, got))

    def start_refused_worker(self, port, *args, env=None):
        """A worker the server refuses: it must exit non-zero on its own, saying why."""
        proc = harness.Proc([harness.binary("worker"), "--host", "127.0.0.1", "--port", port,
                             "--threads", "1", *args], env=env, name="worker")
        code = proc.wait_exit(timeout=10)
        self.assertNotEqual(code, 0, proc.output())
        self.assertTrue(any("no autorizado" in line for line in proc.lines()), proc.output())
        self.assertFalse(any("Registrado con ID" in line for line in proc.lines()), proc.output())
        return proc


class TokenRequired(AuthCase):
    """Server.Auth.Token*: --token s3cret."""

    def setUp(self):
        super().setUp()
        self.server, self.port = harness.start_server("--token", TOKEN)
        self.server.wait_for_line(r"Autenticación: se exige token")

    def tearDown(self):
        self.server.assert_alive()
        super().tearDown()

    def test_first_message_without_the_right_token_is_refused_and_closed(self):
        for first in [{"type": "STATS"},
                      {"type": "PING"},
                      {"type": "TASK", "task_type": "hash", "task_data": {"text": "x"}},
                      {"type": "WORKER_REGISTER", "threads": 1},
                      {"type": "STATS", "token": "S3CRET"},
                      {"type": "STATS", "token": TOKEN + "x"},
                      {"type": "STATS", "token": ""},
                      {"type": "STATS", "token": 12345},
                      {"type": "NOPE", "token": TOKEN + TOKEN}]:
            self.assert_refused(harness.connect(self.port), first)

    def test_unreadable_first_message_is_refused_and_closed(self):
        for raw in [b'{"type":"STATS",,}\n', b"[1,2]\n", b'"s3cret"\n',
                    b'{"type":"STATS","token":"\xff"}\n']:
            self.assert_refused(harness.connect(self.port), raw=raw)

    def test_first_message_with_the_token_admits_the_connection(self):
        conn = harness.connect(self.port)
        conn.send({"type": "STATS", "token": TOKEN})
        stats = conn.recv()
        self.assertEqual(stats.get("type"), "STATS", stats)
        # Admitted once: later messages need no token.
        self.assertEqual(conn.request({"type": "PING"}).get("type"), "PONG")
        self.assertEqual(conn.stats()["type"], "STATS")

    def test_worker_with_the_token_registers_and_serves(self):
        worker = harness.start_worker(self.port, "--token", TOKEN, threads=2)
        conn = harness.connect(self.port)
        reply = conn.request({"type": "TASK", "task_id": "auth-1", "task_type": "hash",
                              "task_data": {"text": "Hola Mundo"}, "token": TOKEN})
        self.assertEqual((reply.get("status"), reply.get("worker_id")),
                         ("success", worker.worker_id), reply)
        self.assertEqual(reply["result"], harness.expected_result("hash", {"text": "Hola Mundo"}))

    def test_worker_without_the_token_exits_non_zero(self):
        self.start_refused_worker(self.port, env={"SD_TOKEN": ""})
        self.start_refused_worker(self.port, "--token", "wrong")
        conn = harness.connect(self.port)
        conn.send({"type": "STATS", "token": TOKEN})
        self.assertEqual(conn.recv().get("workers"), [])

    def test_cliente_with_and_without_the_token(self):
        cliente = cliente_path()
        if cliente is None:
            self.skipTest(f"cliente is not built in {harness.SD_BIN}")
        harness.start_worker(self.port, "--token", TOKEN, threads=1)
        base = [cliente, "--host", "127.0.0.1", "--port", self.port]
        ok = harness.run([*base, "--token", TOKEN, "--json", "hash", "Hola Mundo"], timeout=20)
        self.assertEqual(ok.returncode, 0, ok)
        self.assertIn(harness.expected_result("hash", {"text": "Hola Mundo"})["hash"], ok.stdout)
        refused = harness.run([*base, "hash", "Hola Mundo"], timeout=20, env={"SD_TOKEN": ""})
        self.assertNotEqual(refused.returncode, 0, refused)


class TokenFromEnvironment(AuthCase):
    """Server.Auth.Env*: SD_TOKEN works like --token, for the server and the worker."""

    def test_sd_token_environment_variable(self):
        server, port = harness.start_server(env={"SD_TOKEN": TOKEN})
        server.wait_for_line(r"Autenticación: se exige token")
        self.assert_refused(harness.connect(port), {"type": "STATS"})
        worker = harness.start_worker(port, threads=1, env={"SD_TOKEN": TOKEN})
        self.start_refused_worker(port, env={"SD_TOKEN": "wrong"})
        conn = harness.connect(port)
        conn.send({"type": "TASK", "task_id": "env-1", "task_type": "reverse",
                   "task_data": {"text": "canción 😀"}, "token": TOKEN})
        reply = conn.recv()
        self.assertEqual((reply.get("status"), reply.get("worker_id"), reply.get("result")),
                         ("success", worker.worker_id, {"reversed": "😀 nóicnac"}), reply)
        server.assert_alive()


class ProtectedMode(AuthCase):
    """Server.Auth.Protected*: no token means loopback peers only (unless --insecure)."""

    def start_server_on(self, host, *args):
        proc = harness.Proc([harness.binary("servidor"), "--host", host, "--port", "0", *harness.server_args(*args)],
                            env={"SD_TOKEN": ""}, name="servidor")
        return proc, int(proc.wait_for_line(ANY_SERVER_READY).group(2))

    def test_without_token_serves_loopback_peers_and_says_so(self):
        server, port = self.start_server_on("127.0.0.1")
        server.wait_for_line(r"Modo protegido")
        conn = harness.connect(port)
        self.assertEqual(conn.request({"type": "PING"}).get("type"), "PONG")
        worker = harness.start_worker(port, threads=1, env={"SD_TOKEN": ""})
        reply = conn.request({"type": "TASK", "task_id": "loop-1", "task_type": "hash",
                              "task_data": {"text": "x"}})
        self.assertEqual((reply.get("status"), reply.get("worker_id")),
                         ("success", worker.worker_id), reply)
        server.assert_alive()

    def test_without_token_refuses_non_loopback_peers(self):
        ip = non_loopback_ipv4()
        if ip is None:
            # 127.0.0.2 and friends are loopback too: without a second interface there is
            # no way to connect from a non-loopback address on this machine.
            self.skipTest("no local non-loopback IPv4 address to connect from")
        server, port = self.start_server_on(ip)
        server.wait_for_line(r"Modo protegido")
        self.assert_refused(harness.connect(port, host=ip), {"type": "STATS"})
        self.assert_refused(harness.connect(port, host=ip), {"type": "STATS", "token": "x"})
        server.wait_for_line(r"Conexión rechazada de .*modo protegido")
        # A worker from there is refused too, and gives up.
        proc = harness.Proc([harness.binary("worker"), "--host", ip, "--port", port,
                             "--threads", "1"], env={"SD_TOKEN": ""}, name="worker")
        self.assertNotEqual(proc.wait_exit(timeout=10), 0, proc.output())
        server.assert_alive()

    def test_insecure_or_token_serve_non_loopback_peers(self):
        ip = non_loopback_ipv4()
        if ip is None:
            self.skipTest("no local non-loopback IPv4 address to connect from (see above)")
        insecure, port = self.start_server_on(ip, "--insecure")
        insecure.wait_for_line(r"Modo inseguro")
        conn = harness.connect(port, host=ip)
        self.assertEqual(conn.request({"type": "PING"}).get("type"), "PONG")

        with_token, port = self.start_server_on(ip, "--token", TOKEN)
        conn = harness.connect(port, host=ip)
        conn.send({"type": "PING", "token": TOKEN})
        self.assertEqual(conn.recv().get("type"), "PONG")
        self.assert_refused(harness.connect(port, host=ip), {"type": "PING"})


if __name__ == "__main__":
    import unittest
    unittest.main()
