"""Who may use the demo: requests to its own Host from its own page, and a token when it listens beyond this machine.

The same three checks as Jupyter's server, for the same reasons:

- **Host.** A web site can point a name of its own at 127.0.0.1 (DNS rebinding). The student's browser then
  sends that site's name in the Host header, and the site's page could read the demo's answers. The demo answers
  only requests to its own names: localhost, 127.0.0.1, [::1] and the ``--host`` it was given.
- **Origin.** Any page the student visits can send a form to http://localhost:8000/api/judge. A browser says
  where a request comes from (the Origin header, and Sec-Fetch-Site); a request with another page's Origin, and
  any request but opening the page that a browser marks as cross-site, is refused. A program such as curl sends
  neither header, and no web page can make it send a request.
- **Token.** With ``--host`` beyond loopback, anyone on the network can connect; then every request needs the
  token of the URL printed at start. Opening that URL sets the token as a cookie (HttpOnly, SameSite=Strict)
  that the page's later requests carry.
"""
import hmac
import http.cookies
import ipaddress
import secrets
import urllib.parse

WILDCARDS = ("", "0.0.0.0", "::")                     # --host values that listen on every address
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
PAGE_PATHS = ("/", "/index.html")                   # a link from another site may open the page itself


def is_loopback(host):
    """True for an address (or 'localhost') that only this machine can reach."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def split_host(header):
    """A Host header -> (name, port): 'Localhost:8000' -> ('localhost', 8000), '[::1]' -> ('::1', 80).

    None for a malformed one."""
    header = header.strip().lower()
    if header.startswith("["):
        name, bracket, rest = header[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = header.partition(":")
        name = name.rstrip(".")
    if not name or (port and not (port.isascii() and port.isdigit())):
        return None
    return name, int(port) if port else 80


def new_token():
    return secrets.token_urlsafe(24)


class Guard:
    """The checks above, for a server listening on ``host``; ``token`` None: no token asked for."""

    def __init__(self, host, port, token=None):
        self.any_name = host in WILDCARDS
        self.names = set(LOOPBACK_NAMES) | ({host.lower().strip("[]")} if not self.any_name else set())
        self.port, self.token = port, token
        self.cookie_name = f"tinygan-demo-{port}"

    def refusal(self, method, path, query, headers):
        """None when the request may be answered, else why not (one line, answered with 403)."""
        host = split_host(headers.get("Host") or "")
        if host is None or not (self.any_name or host[0] in self.names):
            return (f"the Host header {headers.get('Host')!r} is not this server's; open the demo as "
                    f"http://localhost:{self.port}/")
        origin = headers.get("Origin")
        if origin is not None and not self.same_origin(origin, host):
            return f"requests from {origin!r} are refused: only the demo's own page may use it"
        site = headers.get("Sec-Fetch-Site", "none").lower()
        if site not in ("same-origin", "none") and not (method in ("GET", "HEAD") and path in PAGE_PATHS):
            return f"a {site} request is refused: only the demo's own page may use it"
        if self.token is not None and not self.has_token(query, headers):
            return ("this demo listens beyond this machine and needs the token of the URL it printed "
                    "when it started (http://...:PORT/?token=...)")
        return None

    @staticmethod
    def same_origin(origin, host):
        parts = urllib.parse.urlsplit(origin.strip().lower())
        try:
            port = parts.port or 80
        except ValueError:                                  # a port that is not a number
            return False
        return parts.scheme == "http" and (parts.hostname, port) == host

    def has_token(self, query, headers):
        offered = [query.get("token", [""])[0]]
        authorization = headers.get("Authorization", "")
        if authorization.lower().startswith("token "):
            offered.append(authorization[6:].strip())
        try:
            cookie = http.cookies.SimpleCookie(headers.get("Cookie", "")).get(self.cookie_name)
        except http.cookies.CookieError:
            cookie = None
        if cookie is not None:
            offered.append(cookie.value)
        return any(hmac.compare_digest(value.encode(), self.token.encode()) for value in offered if value)

    def cookie_for(self, query):
        """The Set-Cookie value that keeps a token given in the URL for the page's later requests, or None."""
        if self.token is None or not query.get("token"):
            return None
        return f"{self.cookie_name}={self.token}; HttpOnly; SameSite=Strict; Path=/"
