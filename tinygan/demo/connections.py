"""The demo's connections: a fixed number of worker threads, and no thread for a client that is still talking.

The standard library's ThreadingHTTPServer starts one thread per connection and lets it wait for ever for the
request: 300 clients that connect and send nothing hold 300 threads, and with macOS's limit of 256 open files
they lock every other client out. Here the work is split in two:

- the **gatherer**, one thread with a selector, reads the headers of every new connection as they arrive. A
  connection goes on only when its headers are complete (a blank line), so a worker never waits for them. One
  that has not finished its headers after HEADER_SECONDS is closed, and when MAX_WAITING connections are
  waiting the oldest is closed to make room: stalled clients cannot crowd out a new one.
- WORKERS threads answer complete requests from a queue. A request body (only an upload has one) is read by
  the worker under a deadline the handler sets.

Every connection carries one request (HTTP/1.0, as the standard library's handler speaks by default), so the
gatherer sees every request's headers. The handler gets ``(socket, header_bytes)`` as its request and reads the
header bytes first, then the socket: see :class:`PrefixedReader`.
"""
import collections
import io
import json
import selectors
import socket
import sys
import threading
import time
from http.server import HTTPServer

WORKERS = 8                 # threads answering requests; model calls take turns on one lock anyway
MAX_READY = 64              # complete requests waiting for a worker; more are told to retry (503)
MAX_WAITING = 128           # connections still sending headers; the oldest is closed to make room
HEADER_SECONDS = 10.0       # to send the request line and headers
MAX_HEADER_BYTES = 64 * 1024


def one_line_answer(status, reason, message, retry_after=None):
    """The bytes of a whole HTTP answer with a one-line JSON error, for a socket no handler has taken."""
    body = json.dumps({"error": message}).encode()
    head = f"HTTP/1.0 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    head += f"Retry-After: {retry_after}\r\n" if retry_after else ""
    return (head + "Connection: close\r\n\r\n").encode() + body


BUSY = one_line_answer(503, "Service Unavailable", "the demo is busy: try again in a moment", retry_after=1)


class PrefixedReader(io.RawIOBase):
    """A socket's bytes, with the bytes already read from it (by the gatherer) in front."""

    def __init__(self, prefix, sock):
        self.prefix, self.sock = memoryview(prefix), sock

    def readable(self):
        return True

    def readinto(self, buffer):
        if len(self.prefix):
            n = min(len(buffer), len(self.prefix))
            buffer[:n], self.prefix = self.prefix[:n], self.prefix[n:]
            return n
        return self.sock.recv_into(buffer)


class PooledHTTPServer(HTTPServer):
    """An HTTPServer whose requests are answered by a fixed pool of threads (see the module's docstring)."""

    request_queue_size = 64     # the listen backlog: 20 clients connecting at once are all accepted

    def __init__(self, address, handler):
        self.ready = collections.deque()                # (request, address) of complete requests
        self.ready_lock = threading.Condition()
        self.incoming = collections.deque()             # accepted sockets, handed to the gatherer
        self.waiting = {}                               # socket -> (address, accepted at, header bytes so far)
        self.selector = selectors.DefaultSelector()
        self.wake_read, self.wake_write = socket.socketpair()
        self.wake_read.setblocking(False)
        self.selector.register(self.wake_read, selectors.EVENT_READ)
        self.closing = False
        self.threads = []
        super().__init__(address, handler)              # binds, or closes all of the above and raises
        self.threads = [threading.Thread(target=self._gather, name="demo-gatherer", daemon=True)]
        self.threads += [threading.Thread(target=self._work, name=f"demo-worker-{i}", daemon=True)
                         for i in range(WORKERS)]
        for thread in self.threads:
            thread.start()

    # --- called by serve_forever's thread for each accepted connection -------------------------------
    def process_request(self, request, client_address):
        self.incoming.append((request, client_address))
        self._wake()

    def shutdown_request(self, request):
        super().shutdown_request(request[0] if isinstance(request, tuple) else request)

    def handle_error(self, request, client_address):
        """A bug while answering: one line, not the standard library's traceback."""
        err = sys.exc_info()[1]
        if not isinstance(err, (ConnectionError, TimeoutError)):     # a client that hung up is not news
            print(f"tinygan demo: error answering {client_address[0]}: {type(err).__name__}: {err}", file=sys.stderr)

    def server_close(self):
        self.closing = True
        self._wake()
        with self.ready_lock:
            self.ready_lock.notify_all()
        for thread in self.threads:
            thread.join(timeout=5)
        super().server_close()
        for sock in list(self.waiting):
            sock.close()
        self.selector.close()
        self.wake_read.close()
        self.wake_write.close()

    def _wake(self):
        try:
            self.wake_write.send(b"x")
        except OSError:                 # the pair is closed, or its buffer is full (the gatherer is waking anyway)
            pass

    # --- the gatherer ------------------------------------------------------------------------------------
    def _gather(self):
        while not self.closing:
            for key, _ in self.selector.select(timeout=0.5):
                if key.fileobj is self.wake_read:
                    self._take_incoming()
                else:
                    self._read_headers(key.fileobj)
            self._close_stalled()

    def _take_incoming(self):
        try:
            while self.wake_read.recv(4096):
                pass
        except BlockingIOError:
            pass
        while self.incoming:
            sock, address = self.incoming.popleft()
            while len(self.waiting) >= MAX_WAITING:
                self._drop(next(iter(self.waiting)))        # dicts keep their order: the oldest first
            sock.setblocking(False)
            self.waiting[sock] = (address, time.monotonic(), bytearray())
            self.selector.register(sock, selectors.EVENT_READ)

    def _read_headers(self, sock):
        address, _, received = self.waiting[sock]
        try:
            chunk = sock.recv(16384)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:                                       # the client hung up before asking anything
            self._drop(sock)
            return
        received += chunk
        if b"\r\n\r\n" in received or b"\n\n" in received or len(received) > MAX_HEADER_BYTES:
            self.selector.unregister(sock)
            del self.waiting[sock]
            sock.setblocking(True)
            self._hand_over(sock, bytes(received), address)

    def _close_stalled(self):
        now = time.monotonic()
        for sock, (_, accepted, _) in list(self.waiting.items()):
            if now - accepted > HEADER_SECONDS:
                try:                                        # non-blocking: said if there is room, else not
                    sock.send(one_line_answer(408, "Request Timeout",
                                              f"the request's headers took more than {HEADER_SECONDS:g} s"))
                except OSError:
                    pass
                self._drop(sock)

    def _drop(self, sock):
        del self.waiting[sock]
        self.selector.unregister(sock)
        sock.close()

    def _hand_over(self, sock, headers, address):
        with self.ready_lock:
            if len(self.ready) < MAX_READY:
                self.ready.append(((sock, headers), address))
                self.ready_lock.notify()
                return
        try:                                                # every worker is busy and the queue is full
            sock.settimeout(1.0)
            sock.sendall(BUSY)
        except OSError:
            pass
        self.shutdown_request(sock)

    # --- the workers -------------------------------------------------------------------------------------
    def _work(self):
        while True:
            with self.ready_lock:
                while not self.ready and not self.closing:
                    self.ready_lock.wait()
                if self.closing:
                    return
                request, address = self.ready.popleft()
            try:
                self.finish_request(request, address)
            except Exception:
                self.handle_error(request, address)
            finally:
                self.shutdown_request(request)
