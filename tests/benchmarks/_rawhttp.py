"""A minimal HTTP/1.1 client for the benchmarks' load generators.

On two cores the load generator competes with the server it measures: http.client parses every
answer's headers with the email package, and httpx costs about as much CPU per request as a
trivial view, so either would hold the measured rate down; this client costs a fraction. A
request is written in one send, the answer read by its Content-Length, and the connection kept
while the server keeps it (gunicorn's sync workers close it after every answer; then the next
request opens a new one).
"""

import socket


class RawHttp:
    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None):
        self.address = (host, port)
        fixed = {"Host": f"{host}:{port}", **(headers or {})}
        self.fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode()
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: bytes = b"application/json",
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.sock.sendall(
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self.fixed
            + extra.encode()
            + (
                b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))
                if method == "POST"
                else b""
            )
            + b"\r\n"
            + body
        )
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection before answering")
            buffer += chunk
        head, _, content = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        answer_headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            answer_headers[name.strip().lower()] = value.strip()
        length = int(answer_headers[b"content-length"])  # Django's CommonMiddleware sets it
        while len(content) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection mid-answer")
            content += chunk
        if answer_headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, answer_headers, content[:length]
