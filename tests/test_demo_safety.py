"""The demo server as an attacker and a careless user meet it, over raw sockets: foreign Host and Origin headers,
the token beyond loopback, uploads built to take memory, stalled and hung-up clients, a damaged run folder, and
the standard library's own errors. Every answer is checked to be one line of JSON."""
import functools
import io
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinygan.demo import connections, handler as demo_handler, make_server, server as demo_server
from tinygan.demo.uploads import MAX_DECODED_BYTES, MAX_PARTS, MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS

ROOT = Path(__file__).resolve().parents[1]


def start(source, **options):
    server = make_server(source, port=0, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def demo(run_dir):
    server = start(run_dir)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def exchange(port, request, timeout=60):
    """Send raw bytes, read to the end: (status, headers dict with lower-case names, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def http(port, method="GET", path="/api/info", headers=None, body=b""):
    headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if body or method == "POST":
        headers.setdefault("Content-Length", str(len(body)))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if v is not None)
    return exchange(port, head.encode("latin-1") + b"\r\n" + body)


def error_line(answer, status, words):
    got, headers, body = answer
    assert got == status, (got, body[:300])
    assert headers["content-type"] == "application/json", headers
    message = json.loads(body)["error"]
    assert "\n" not in message and words in message, message
    return message


def png_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


@functools.lru_cache(maxsize=None)
def png_file(width, height, depth=16, color=6, rows=None):
    """A PNG written by hand (Pillow writes no 16-bit RGBA): by default 16-bit RGBA. ``rows`` None: zeros, in a
    few hundred KB; b"": no pixel data at all, which the server must refuse before it would decode any."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    if rows is None:
        row = b"\0" * (1 + (width * depth * {0: 1, 2: 3, 4: 2, 6: 4}[color] + 7) // 8)
        compressor = zlib.compressobj(9)
        rows = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([depth, color, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def form(payload, boundary="b0undary", field="image"):
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


# --- Host, Origin and token ------------------------------------------------------------------------------

def test_only_the_servers_own_host_names_are_answered(demo):
    for host in ("evil.example", "evil.example:%d" % demo, "127.0.0.1.evil.example", "", "localhost:x"):
        error_line(http(demo, headers={"Host": host}), 403, "is not this server's")
    error_line(http(demo, headers={"Host": None}), 403, "is not this server's")       # no Host at all
    for host in (f"localhost:{demo}", f"LOCALHOST:{demo}", f"127.0.0.1:{demo}", f"[::1]:{demo}", "localhost."):
        assert http(demo, headers={"Host": host})[0] == 200, host


def test_requests_from_other_sites_are_refused(demo):
    photo, content_type = form(png_bytes(Image.new("RGB", (64, 64), "gray")))
    judge = {"Content-Type": content_type}
    cases = [({"Origin": "http://evil.example"}, "from 'http://evil.example'"),
             ({"Origin": "null"}, "from 'null'"),
             ({"Origin": f"http://localhost:{demo + 1}"}, "only the demo's own page"),
             ({"Origin": f"https://127.0.0.1:{demo}"}, "only the demo's own page"),
             ({"Sec-Fetch-Site": "cross-site"}, "a cross-site request is refused"),
             ({"Sec-Fetch-Site": "same-site"}, "a same-site request is refused")]
    for headers, words in cases:
        error_line(http(demo, "POST", "/api/judge", {**judge, **headers}, photo), 403, words)
    own = {"Origin": f"http://127.0.0.1:{demo}", "Sec-Fetch-Site": "same-origin"}
    assert http(demo, "POST", "/api/judge", {**judge, **own}, photo)[0] == 200
    assert http(demo, "POST", "/api/judge", judge, photo)[0] == 200                    # curl: no Origin at all
    error_line(http(demo, path="/api/faces?seeds=0-63", headers={"Sec-Fetch-Site": "cross-site"}), 403, "cross-site")
    error_line(http(demo, path="/api/info", headers={"Origin": "http://evil.example"}), 403, "evil.example")
    assert http(demo, path="/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})[0] == 200


def test_the_page_never_sees_an_absolute_path(demo, run_dir):
    for path in ("/api/info", "/api/run"):
        status, _, body = http(demo, path=path)
        assert status == 200 and str(run_dir) not in body.decode() and str(Path.home()) not in body.decode()
    info = json.loads(http(demo)[2])
    assert info["checkpoint"] == f"{run_dir.name}/checkpoints/ckpt_000002.npz" and info["problem"] is None


def test_beyond_loopback_every_request_needs_the_token(run_dir):
    server = start(run_dir, token="s3cret-token")
    port = server.server_address[1]
    try:
        error_line(http(port), 403, "needs the token")
        error_line(http(port, path="/?token=wrong"), 403, "needs the token")
        status, headers, body = http(port, path="/?token=s3cret-token")
        assert status == 200 and b"<html" in body.lower()
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret-token" in cookie
        assert http(port, headers={"Cookie": cookie.split(";")[0]})[0] == 200          # what the page sends next
        assert http(port, headers={"Authorization": "token s3cret-token"})[0] == 200
        error_line(http(port, headers={"Cookie": "tinygan-demo-1=s3cret-token"}), 403, "needs the token")
        error_line(http(port, headers={"Cookie": "\x7f;;=="}), 403, "needs the token")
    finally:
        server.shutdown()
        server.server_close()
    wide = make_server(run_dir, host="0.0.0.0", port=0)
    try:
        assert wide.token and len(wide.token) >= 32                                    # made up, printed in the URL
    finally:
        wide.server_close()
    local = make_server(run_dir, port=0)
    local.server_close()
    assert local.token is None


# --- the standard library's rough edges ----------------------------------------------------------------------

def test_every_error_is_one_line_of_json_and_head_and_options_work(demo):
    error_line(exchange(demo, b"GARBAGE\r\n\r\n"), 400, "Bad request")
    error_line(exchange(demo, b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n"), 431,
               "Line too long")
    error_line(exchange(demo, b"FROB / HTTP/1.1\r\nHost: localhost\r\n\r\n"), 501, "Unsupported method")
    error_line(http(demo, "POST", "/api/judge", {"Content-Length": "\xb2"}), 411, "Content-Length")
    error_line(http(demo, "PUT", "/"), 405, "use GET or POST")
    status, headers, body = http(demo, "HEAD", "/api/faces?seeds=1")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 100
    status, headers, body = http(demo, "OPTIONS", "/api/judge")
    assert status == 204 and headers["allow"] == "POST, OPTIONS" and "access-control-allow-origin" not in headers
    assert http(demo, "OPTIONS", "/api/project")[1]["allow"] == "GET, HEAD, POST, OPTIONS"
    assert http(demo, path="/")[1]["x-frame-options"] == "DENY"


def test_a_client_that_hangs_up_prints_nothing(demo, capfd):
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", demo)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")   # close with a reset
            sock.sendall(f"GET /api/faces?seeds=0-63 HTTP/1.1\r\nHost: localhost:{demo}\r\n\r\n".encode())
    assert http(demo, path="/api/faces?seeds=0-63")[0] == 200
    time.sleep(1)                                                                  # the twenty are answered too
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "BrokenPipe" not in err and "Reset" not in err, err


def test_uploads_that_are_too_large_say_413(demo):
    cases = [(png_file(6300, 6300), "would take 317,520,000 bytes decoded"),
             (png_file(30000, 30000, depth=1, color=0, rows=b""), "too large"),
             (png_bytes(Image.new("L", (4001, 4000))), f"more than {MAX_UPLOAD_PIXELS:,}")]
    for payload, words in cases:
        assert len(payload) < MAX_UPLOAD_BYTES
        message = error_line(http(demo, "POST", "/api/judge", {"Content-Type": "image/png"}, payload), 413, words)
        assert "too large" in message
    many, content_type = form(b"x", field="other")
    many = many.replace(b"--b0undary--", b"--b0undary\r\n\r\n\r\n" * 95000 + b"--b0undary--")
    error_line(http(demo, "POST", "/api/judge", {"Content-Type": content_type}, many), 413,
               f"more than {MAX_PARTS} parts")
    error_line(http(demo, "POST", "/api/judge", {"Content-Type": "image/png", "Content-Length": str(10 ** 12)}), 413,
               "more than 10,485,760")


def test_a_stalled_upload_times_out_and_uploads_beyond_the_slots_are_told_to_retry(run_dir, monkeypatch):
    monkeypatch.setattr(demo_handler, "BODY_SECONDS", 3.0)
    server = start(run_dir)
    port = server.server_address[1]
    head = f"POST /api/judge HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 1000\r\n\r\n".encode()
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(demo_server.UPLOAD_SLOTS)]
    try:
        for sock in stalled:
            sock.sendall(head + b"0123456789")
        for _ in range(50):                         # until both slots are taken
            answer = http(port, "POST", "/api/judge", {"Content-Type": "image/png"}, b"x" * 100)
            if answer[0] == 503:
                break
            time.sleep(0.05)
        error_line(answer, 503, "try again in a moment")
        assert answer[1]["retry-after"] == "1"
        for sock in stalled:                        # each gets its 408 when its time is up
            sock.settimeout(10)
            assert b" 408 " in sock.recv(4096).split(b"\r\n")[0]
        assert http(port, path="/api/faces?seeds=0")[0] == 200
    finally:
        for sock in stalled:
            sock.close()
        server.shutdown()
        server.server_close()


def test_stalled_connections_do_not_lock_out_a_normal_request(demo, monkeypatch):
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 800:
        pytest.skip("needs 800 open files")
    stalled = []
    try:
        for i in range(300):
            sock = socket.create_connection(("127.0.0.1", demo))
            if i % 2:
                sock.sendall(b"GET /api/faces?seeds=0-63 HTTP/1.1\r\nHost: loc")     # half a request, then nothing
            stalled.append(sock)
        assert http(demo, path="/api/faces?seeds=0")[0] == 200
        assert len(threading.enumerate()) < 40                                      # a pool, not a thread each
    finally:
        for sock in stalled:
            sock.close()


def test_headers_must_arrive_in_time(run_dir, monkeypatch):
    monkeypatch.setattr(connections, "HEADER_SECONDS", 1.0)
    server = start(run_dir)
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n")
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.0 408") and b"took more than 1 s" in answer
    finally:
        server.shutdown()
        server.server_close()


def test_twenty_clients_at_once_are_all_answered(demo):
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(http(demo, path="/api/faces?seeds=0-3")[0]))
               for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 20


# --- a damaged run folder ------------------------------------------------------------------------------------

def test_a_damaged_run_folder_leaves_the_last_good_state_serving(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (tmp_path / "secret.txt").write_text("not for the page")
    server = start(run)
    port = server.server_address[1]
    try:
        faces = http(port, path="/api/faces?seeds=0-3")[2]
        good = (run / "checkpoints" / "ckpt_000002.npz").read_bytes()
        (run / "checkpoints" / "ckpt_000003.npz").write_bytes(good[:len(good) // 2])      # a crash mid-write
        with open(run / "loss_log.csv", "a") as log:
            log.write("3,oops" + ",1" * 20 + "\n")
        (run / "samples" / "step_999999.png").symlink_to(tmp_path / "secret.txt")
        (run / "samples" / "step_abc.png").write_bytes(b"not a grid")
        assert http(port, path="/api/faces?seeds=0-3")[2] == faces                         # the same model serves
        info = json.loads(http(port)[2])
        assert info["checkpoint"].endswith("ckpt_000002.npz")
        assert "ckpt_000003.npz could not be read" in info["problem"] and str(tmp_path) not in info["problem"]
        status, _, body = http(port, path="/api/run")
        progress = json.loads(body)
        assert status == 200 and progress["skipped_rows"] == 1 and progress["step"] == 2
        assert progress["samples_step"] == 2 and "could not be read" in progress["problem"]
        status, _, body = http(port, path="/api/run/samples.png")
        assert status == 200 and body.startswith(b"\x89PNG")
        (run / "checkpoints" / "ckpt_000003.npz").write_bytes(good)                         # the run writes again
        assert json.loads(http(port)[2])["checkpoint"].endswith("ckpt_000003.npz")
        (run / "config.json").write_text("{broken")
        (run / "loss_log.csv").write_text("step,epoch\n1,nan\n")
        assert http(port, path="/api/run")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


# --- memory, measured on a demo in its own process -----------------------------------------------------------

PEAK_MB = 300      # the most one of the uploads below may add to the idle server's peak memory


def peak_rss_mb(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak memory from /proc")
def test_uploads_built_to_take_memory_stay_under_the_bound(run_dir):
    process = subprocess.Popen([sys.executable, "-m", "tinygan", "demo", str(run_dir), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        port = None
        for line in process.stdout:
            if match := re.search(r"http://localhost:(\d+)/", line):
                port = int(match.group(1))
                break
        assert port, process.stderr.read()
        gray = png_bytes(Image.new("RGB", (64, 64), "gray"))
        assert http(port, "POST", "/api/judge", {"Content-Type": "image/png"}, gray)[0] == 200   # warm: PIL loaded
        assert http(port, path="/api/faces?seeds=0-63")[0] == 200
        idle = peak_rss_mb(process.pid)
        # the largest images accepted: every byte of their decoded size and pixel count allowed
        gradient = np.broadcast_to(np.arange(4000, dtype=np.uint8)[:, None, None], (4000, 4000, 4)).copy()
        rgba = png_bytes(Image.fromarray(gradient, "RGBA"))
        palette = Image.fromarray(gradient[:, :, 0]).convert("P")
        gif = io.BytesIO()
        palette.save(gif, format="GIF", transparency=0)
        for payload, status in ((rgba, 200), (gif.getvalue(), 200), (png_file(6300, 6300), 413)):
            assert len(payload) < MAX_UPLOAD_BYTES and 4000 * 4000 * 4 <= MAX_DECODED_BYTES
            assert http(port, "POST", "/api/judge", {"Content-Type": "image/png"}, payload)[0] == status
        # four 10 MB bodies of CRLFs at once, and a form of tiny parts
        crlf, content_type = form(b"\r\n" * ((MAX_UPLOAD_BYTES - 200) // 2))
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(
            http(port, "POST", "/api/judge", {"Content-Type": content_type}, crlf)[0])) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(set(answers)) <= [415, 503] and len(answers) == 4, answers
        tiny = b"".join(b"--b0undary\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n" for _ in range(95000))
        assert http(port, "POST", "/api/judge", {"Content-Type": content_type}, tiny + b"--b0undary--")[0] == 413
        grown = peak_rss_mb(process.pid) - idle
        print(f"peak memory over the idle demo ({idle:.0f} MB): {grown:.0f} MB")
        assert grown < PEAK_MB, f"the uploads added {grown:.0f} MB to the peak, more than {PEAK_MB} MB"
    finally:
        process.terminate()
        process.wait(timeout=30)
