"""HTTP(S) downloads for firmware updates, on the board (hal.py's ``http_get``).

Imported on an update's first request only, so a machine's heap between two
updates does not carry it. Every request names the machine: ``Authorization:
Bearer <api key>`` and ``X-Machine-Id: <machine id>`` (the server keeps keys
hashed, so the key alone does not say whose it is).
"""

import socket

TYPE_CHECKING = False  # mypy reads the block below; the board never runs it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Response:
    """The body of an HTTP response, read from the socket a little at a time."""

    def __init__(self, sock: "Any", status: int) -> None:
        self.sock = sock
        self.status = status

    def read(self, n: int) -> bytes:
        return bytes(self.sock.read(n) or b"")

    def close(self) -> None:
        self.sock.close()


def get(
    config: "dict[str, Any]",
    url: str,
    offset: int,
    tls_context: "Callable[[dict[str, Any]], Any]",
) -> Response:
    """GET ``url`` with the machine's id and key, from byte ``offset`` (``Range``).

    The body is left on the socket for the caller to stream; only HTTP/1.0
    (no chunked encoding). Raises ``OSError`` on a network failure.
    """
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    port = 443 if scheme == "https" else 80
    if ":" in host:
        host, port_text = host.split(":", 1)
        port = int(port_text)
    address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
    sock: "Any" = socket.socket()
    try:
        sock.settimeout(10)
        sock.connect(address)
        if scheme == "https":  # the clock is set first (see device/ota.py): NTP before TLS
            sock = tls_context(config).wrap_socket(sock, server_hostname=host)
        request = "GET /" + path + " HTTP/1.0\r\nHost: " + host + "\r\n"
        request += "Authorization: Bearer " + config["api_key"] + "\r\n"
        request += "X-Machine-Id: " + config["machine_id"] + "\r\n"
        if offset:
            request += "Range: bytes=" + str(offset) + "-\r\n"
        sock.write(request.encode() + b"\r\n")
        line = sock.readline()
        status = int(line.split(None, 2)[1])
        while sock.readline() not in (b"\r\n", b""):  # skip the headers
            pass
    except (OSError, ValueError, IndexError) as exc:
        sock.close()
        raise OSError("http: " + repr(exc)) from None
    return Response(sock, status)
