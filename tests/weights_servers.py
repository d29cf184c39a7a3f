"""Loopback HTTP servers that stand in for the weight sources: plain URLs and the Hugging Face Hub."""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FileServer:
    """An HTTP server on 127.0.0.1 (ephemeral port) serving bytes by path, GET and HEAD.

    cut[path] = n sends a Content-Length of the whole file but only its first n bytes, then closes.
    hang: a threading.Event; while it is clear, every request waits for it (a source that hangs).
    headers(path, body) -> extra headers (the Hub's).
    """

    def __init__(self, files: dict[str, bytes], prefix: str = "/biggan"):
        self.files, self.cut, self.requests = files, {}, []
        self.hang: threading.Event | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self):
                self._answer(send_body=False)

            def do_GET(self):
                self._answer(send_body=True)

            def _answer(self, send_body):
                server.requests.append(f"{self.command} {self.path}")
                if server.hang is not None:
                    server.hang.wait(60)
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                for key, value in server.headers(self.path, body).items():
                    self.send_header(key, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(body[: server.cut.get(self.path, len(body))])
                    if self.path in server.cut:
                        self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.base = self.root + prefix
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def headers(self, path: str, body: bytes) -> dict[str, str]:
        return {}

    def stop(self):
        if self.hang is not None:
            self.hang.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class HubServer(FileServer):
    """The Hub's file endpoint: HEAD/GET /{repo}/resolve/{revision}/{file}, answered with the
    headers hf_hub_download reads (X-Repo-Commit, ETag = sha256 for a large file as for LFS,
    Content-Length). `etags[path]` overrides the sha256 the server claims."""

    def __init__(self, repo: str, files: dict[str, bytes]):
        super().__init__({f"/{repo}/resolve/main/{f}": b for f, b in files.items()}, prefix="")
        self.etags: dict[str, str] = {}

    def headers(self, path, body):
        etag = self.etags.get(path, hashlib.sha256(body).hexdigest())
        return {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'}
