"""The demo page in a real browser: headless Chromium, driven through chromedriver's WebDriver protocol.

It loads the page, paints faces, moves the walk slider, uploads a photo through the file
input and reads the verdict from the page. Skipped where Debian's chromium and
chromium-driver are not installed (`apt-get install chromium chromium-driver`).
Set TINYGAN_DEMO_SCREENSHOT=PATH to save a screenshot of each tab (PATH-paint.png, ...).
"""
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import numpy as np
import pytest

from tinygan.demo import make_server
from tinygan.synthetic import synthetic_face

CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"       # the W3C WebDriver key of an element reference


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Just enough of the W3C WebDriver protocol, over urllib, to drive one headless Chromium session."""

    def __init__(self, *extra_args):
        self.port = free_port()
        self.driver = subprocess.Popen([DRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1200,900", *extra_args]
        session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": args}}}})
        self.session = f"/session/{session['sessionId']}"

    def call(self, method, path, payload=None):
        data = json.dumps(payload).encode() if payload is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as response:
            return json.loads(response.read())["value"]

    def go(self, url):
        self.call("POST", self.session + "/url", {"url": url})

    def find(self, css):
        return self.call("POST", self.session + "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.call("POST", self.session + f"/element/{self.find(css)}/click")

    def type(self, css, text):
        self.call("POST", self.session + f"/element/{self.find(css)}/value", {"text": text})

    def script(self, source, *args):
        return self.call("POST", self.session + "/execute/sync", {"script": source, "args": list(args)})

    def wait(self, source, timeout=90):
        """Wait until the JavaScript expression ``source`` is truthy; returns its value."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.script(f"return {source};")
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {source}")

    def screenshot(self, path):
        import base64
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("GET", self.session + "/screenshot")))

    def close(self):
        try:
            self.call("DELETE", self.session)
        finally:
            self.driver.terminate()
            self.driver.wait()


def test_the_page_paints_walks_and_judges_in_a_real_browser(run_dir, tmp_path):
    server = make_server(run_dir, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = Browser()
    shots = os.environ.get("TINYGAN_DEMO_SCREENSHOT")
    try:
        browser.go(f"http://127.0.0.1:{server.server_address[1]}/")
        # Paint: 16 faces at load; click one to see it large with its seed
        browser.wait("document.querySelectorAll('#paint-grid img').length === 16 && [...document.querySelectorAll("
                     "'#paint-grid img')].every((i) => i.complete && i.naturalWidth === 64)")
        shown = "getComputedStyle(document.getElementById('{}')).display !== 'none'"
        assert not browser.script("return " + shown.format("paint-big")), "no empty large face before a click"
        browser.click("#paint-grid figure:nth-child(6)")
        assert browser.script("return " + shown.format("paint-big"))
        assert browser.script("return document.getElementById('paint-big-seed').textContent;") == "seed 5"
        timings = {"16-face grid": float(browser.script(
            "return document.getElementById('paint-grid').dataset.milliseconds;"))}
        if shots:
            browser.screenshot(f"{shots}-paint.png")
        # Walk: move the slider, wait for the new frame
        browser.click("nav button[data-tab=walk]")
        browser.wait("document.getElementById('walk-img').naturalWidth === 64")
        browser.script("const s = document.getElementById('walk-t'); s.value = 0.5;"
                       "s.dispatchEvent(new Event('input'));")
        browser.wait("document.getElementById('walk-img').dataset.t === '0.5' && "
                     "document.getElementById('walk-img').naturalWidth === 64")
        assert browser.script("return document.getElementById('walk-t-value').textContent;") == "0.50"
        timings["walk frame"] = float(browser.script(
            "return document.getElementById('walk-img').dataset.milliseconds;"))
        # Judge: upload a photo through the file input, read the verdict
        photo = tmp_path / "photo.jpg"
        synthetic_face(np.random.default_rng(2)).save(photo, quality=92)
        browser.click("nav button[data-tab=judge]")
        assert not browser.script("return " + shown.format("judge-result")), "no empty verdict before an upload"
        browser.type("#judge-file", str(photo))
        browser.wait(shown.format("judge-result"))
        verdict = browser.script("return document.getElementById('judge-verdict').textContent;")
        probability = float(browser.script("return document.getElementById('judge-result').dataset.probability;"))
        assert verdict in ("looks real to D", "looks generated to D") and 0 <= probability <= 1
        assert "centre crop" in browser.script("return document.getElementById('judge-crop').textContent;")
        warning = browser.script("return document.getElementById('judge-warning').textContent;")
        assert "NOT a deepfake detector" in warning
        timings["judgement"] = float(browser.script(
            "return document.getElementById('judge-result').dataset.milliseconds;"))
        # Frame it: drag the box, then click the two eyes; D judges what the box holds, and shows where it looks
        assert browser.script("return " + shown.format("frame"))
        crop = "document.getElementById('judge-crop').textContent"
        browser.script("""const c = document.getElementById('frame-canvas'), r = c.getBoundingClientRect();
            const b = frame.box, k = frame.scale;
            const x = r.left + (b.x + b.side / 2) * k, y = r.top + (b.y + b.side / 2) * k;
            c.dispatchEvent(new MouseEvent('mousedown', {clientX: x, clientY: y, bubbles: true}));
            window.dispatchEvent(new MouseEvent('mousemove', {clientX: x - 6, clientY: y - 4, bubbles: true}));
            window.dispatchEvent(new MouseEvent('mouseup', {clientX: x - 6, clientY: y - 4, bubbles: true}));""")
        browser.wait(f"{crop}.includes('the box left')")
        box = browser.script("return [frame.box.x, frame.box.y, frame.box.side].map((v) => +v.toFixed(2));")
        said = browser.script(f"return {crop};")
        assert said.startswith(f"what D saw: the box left {box[0]:g}, top {box[1]:g}, side {box[2]:g} px"), said
        browser.click("#frame-eyes")
        browser.script("""const c = document.getElementById('frame-canvas'), r = c.getBoundingClientRect();
            const k = frame.scale, w = frame.photo.width * k, h = frame.photo.height * k;
            for (const [x, y] of [[0.62, 0.45], [0.38, 0.42]])
              c.dispatchEvent(new MouseEvent('mousedown', {clientX: r.left + x * w, clientY: r.top + y * h, bubbles: true}));""")
        browser.wait(f"{crop}.includes('aligned by the eyes')")
        assert browser.script("return frame.eyes[0][0] < frame.eyes[1][0];"), "the left eye is the one on the left"
        browser.click("#judge-explain")
        browser.wait("document.getElementById('judge-explain-img').naturalWidth === 3 * 256 + 8")
        if shots:
            browser.screenshot(f"{shots}-judge.png")
        # Find me: the framed photo projected into z, frame after frame, then a walk from it to a seed
        browser.click("#judge-find")
        assert browser.script("return " + shown.format("find"))
        browser.wait("document.getElementById('find-result').dataset.state === 'done'")
        assert browser.script("return document.querySelectorAll('#find-frames img').length;") >= 2
        assert "PSNR" in browser.script("return document.getElementById('find-status').textContent;")
        browser.wait("document.getElementById('find-walk-img').naturalWidth === 64")
        browser.script("const s = document.getElementById('find-t'); s.value = 1; s.dispatchEvent(new Event('input'));")
        browser.wait("document.getElementById('find-t-value').textContent === '1.00'")
        browser.type("#find-file", str(photo))                      # a second photo, from the tab's own picker
        browser.wait("document.querySelectorAll('#find-from option').length === 2", timeout=120)
        if shots:
            browser.screenshot(f"{shots}-find.png")
        # Run: the run's progress and its newest grid
        browser.click("nav button[data-tab=run]")
        browser.wait("document.getElementById('run-step').textContent === '2 / 2'")
        browser.wait("document.getElementById('run-grid').naturalWidth > 0")
        accuracy = browser.script("return document.getElementById('run-accuracy').textContent;")
        assert accuracy.endswith("%") and 0 <= int(accuracy[:-1]) <= 100, accuracy    # D's accuracy, last row
        assert browser.script("return document.getElementById('run-acc').hidden;") is False
        if shots:
            browser.screenshot(f"{shots}-run.png")
        print("as seen in the browser (ms):", timings)
    finally:
        browser.close()
        server.shutdown()
        server.server_close()


EVIL_PAGE = """<!doctype html><title>a page the student happens to visit</title><script>
const demo = "http://localhost:%d";
const form = new FormData();
form.append("image", new Blob([new Uint8Array(%d)], {type: "image/png"}), "x.png");
Promise.allSettled([
  fetch(demo + "/api/judge", {method: "POST", body: form, mode: "no-cors"}),
  fetch(demo + "/api/faces?seeds=0-63", {mode: "no-cors"}),
  fetch("/api/info").then((r) => r.text()).then((text) => { document.title = text; }),
]).then(() => { document.body.dataset.done = "yes"; });
</script><body></body>"""


def test_other_sites_cannot_use_the_demo_and_a_token_page_works(run_dir):
    """A page on another site posts to the demo and reads it through DNS rebinding (evil.test is mapped to
    127.0.0.1, as a rebinding attacker would); the demo refuses every request. Then the demo with a token works
    from its printed URL."""
    import http.server

    server = make_server(run_dir, port=0, token="browser-token")
    port = server.server_address[1]
    refused, judged = [], []
    guard, handler = server.RequestHandlerClass.guard, server.RequestHandlerClass
    original_refusal, original_judge = guard.refusal, handler.judge
    guard.refusal = lambda *args: refused.append(original_refusal(*args)) or refused[-1]
    handler.judge = lambda self, body: judged.append(1) or original_judge(self, body)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    class EvilSite(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            page = (EVIL_PAGE % (port, 64)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass
    evil = http.server.HTTPServer(("127.0.0.1", 0), EvilSite)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    browser = Browser("--host-resolver-rules=MAP evil.test 127.0.0.1")
    try:
        browser.go(f"http://evil.test:{evil.server_address[1]}/")
        browser.wait("document.body.dataset.done === 'yes'")
        assert not judged and "is not this server's" not in browser.script("return document.title;")
        browser.go(f"http://evil.test:{port}/api/info")                    # the rebinding attacker's own name
        assert "is not this server's" in browser.script("return document.body.textContent;")
        assert any(r and "evil.test" in r for r in refused) and any(r and "cross-site" in r for r in refused)
        # the demo's own URL with its token: the page works, and keeps working without the token in the URL
        browser.go(f"http://localhost:{port}/?token=browser-token")
        browser.wait("document.querySelectorAll('#paint-grid img').length === 16")
        browser.go(f"http://localhost:{port}/")
        browser.wait("document.querySelectorAll('#paint-grid img').length === 16")
        assert not judged
    finally:
        browser.close()
        evil.shutdown()
        evil.server_close()
        server.shutdown()
        server.server_close()
