"""The HTTP face of a Viewer: a Starlette app (one static page plus a JSON/PNG API) and its server.

Routes (all GET; the page's state is the query cls, seed, trunc, a=DIR:AMOUNT,...):
  /                the page (data/view.html: inline JS/CSS, nothing fetched from elsewhere)
  /api/info?cls=   the served classes, the class's directions with sliders, path size, defaults
  /api/image?...   the view as PNG
  /api/save?...    the view as PNG with its settings in a text chunk, as a download
  /api/command?... {"command": the one-line CLI that writes the same PNG, "query": ...}
  /api/walk?...&dir=K&format=gif|mp4   a short walk video of direction K around the view
A bad value answers 400 {"error": "..."}; anything unexpected 500 {"error": "..."} (one line,
no traceback), and the server keeps serving. No route takes a path: only the run's files are read.
"""
from __future__ import annotations

import ipaddress
import socket
import sys
from functools import wraps
from importlib import resources
from typing import Callable

from ..foundation.errors import UserError, first_line
from ..runtime.signals import hangup_calls
from .view import SEED_MAX, Viewer

PAGE = "view.html"
# The page may load nothing but itself and what it asks this server for.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def import_web():
    """Starlette and uvicorn, or a UserError saying how to install them."""
    try:
        import starlette  # noqa: F401   (deferred here and below: the view extra, optional)
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError("view needs Starlette and uvicorn: "
                        "pip install 'biggan-directions[view]'.") from None


def create_app(viewer: Viewer, *, allowed_hosts: list[str] | None = None):
    """The Starlette app serving `viewer`. allowed_hosts: Host headers to accept (None: any);
    serve() limits a loopback server to loopback names, against DNS rebinding."""
    # deferred: starlette is the optional view extra (import_web says how to install it)
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    page = resources.files("biggan_directions").joinpath("data", PAGE).read_text(encoding="utf-8")

    def api(handler: Callable) -> Callable:
        """A sync endpoint (run in the thread pool) whose errors become one-line JSON."""
        @wraps(handler)
        def endpoint(request):
            try:
                response = handler(request)
            except UserError as e:
                response = JSONResponse({"error": str(e)}, status_code=400)
            except Exception as e:  # a bug or a device error: say it, keep serving
                print(f"view: {type(e).__name__}: {first_line(e)}", file=sys.stderr)
                response = JSONResponse({"error": f"internal error ({type(e).__name__}: "
                                                  f"{first_line(e)})"}, status_code=500)
            response.headers["Cache-Control"] = "no-store"
            response.headers["Content-Security-Policy"] = CSP
            response.headers["X-Content-Type-Options"] = "nosniff"
            return response
        return endpoint

    def state(request):
        return viewer.parse_state(request.query_params)

    @api
    def index(request):
        return HTMLResponse(page)

    @api
    def info(request):
        vc = viewer.open_class(viewer.parse_state(
            {"cls": request.query_params.get("cls", "")}).class_index)
        labels = {i: (label, conf) for i, label, conf in vc.labels}
        return JSONResponse({
            "run": str(vc.run.folder or vc.run.directions_path), "batch": viewer.batch,
            "classes": [{"index": i, "name": n} for i, n in viewer.class_list],
            "class_index": vc.index, "class_name": vc.name, "model": viewer.model_name,
            "resolution": int(viewer.model.config.output_dim),
            "ndirs": int(vc.run.directions.shape[0]), "ranked": vc.ranked,
            "directions": [{"index": i, **vc.scores.get(i, {"rank": None, "effect": None,
                                                             "inactive": None}),
                            "label": labels.get(i, (None,))[0],
                            "confidence": labels.get(i, (None, None))[1]}
                           for i in vc.shown],               # rank and effect from `score`
            "lpips_net": vc.net, "score_path_size": vc.score_path_size,
            "path_size": vc.settings.path_size, "truncation": vc.settings.truncation,
            "seed_max": SEED_MAX, "device": str(viewer.device)})

    @api
    def image(request):
        return Response(viewer.png(state(request)), media_type="image/png")

    @api
    def save(request):
        s = state(request)
        return Response(viewer.png(s, settings=True), media_type="image/png", headers={
            "Content-Disposition": f'attachment; filename="{viewer.save_name(s)}"'})

    @api
    def command(request):
        s = state(request)
        return JSONResponse({"command": viewer.command(s), "query": s.query()})

    @api
    def walk(request):
        s = state(request)
        fmt = request.query_params.get("format", "gif")
        data, name = viewer.walk(s, request.query_params.get("dir", ""), fmt)
        return Response(data, media_type="image/gif" if fmt == "gif" else "video/mp4",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    routes = [Route("/", index), Route("/api/info", info), Route("/api/image", image),
              Route("/api/save", save), Route("/api/command", command), Route("/api/walk", walk)]
    middleware = ([Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)]
                  if allowed_hosts else [])
    return Starlette(routes=routes, middleware=middleware)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); UserError when it cannot bind."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({first_line(e)}); choose another "
                        f"--port (0 picks a free one).") from None
    return sock


def url_of(sock: socket.socket, host: str, query: str = "") -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"http://{shown}:{port}/" + (f"?{query}" if query else "")


def serve(viewer: Viewer, host: str = "127.0.0.1", port: int = 7860, *, query: str = "",
          echo: Callable[[str], None] = print) -> None:
    """Serve `viewer` until Ctrl-C: bind, print the URL (with `query`, the first view), run."""
    import uvicorn                  # deferred: the optional view extra

    if not is_loopback(host):
        echo(f"Warning: listening on {host}: anyone who can reach this machine on the network "
             f"can use this page and its GPU. Use --host 127.0.0.1 to keep it local.")
    sock = bind(host, port)
    allowed = list(LOOPBACK_NAMES) if is_loopback(host) else None
    app = create_app(viewer, allowed_hosts=allowed)
    echo(f"Serving {viewer.target} at {url_of(sock, host, query)}  (Ctrl-C stops)")
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                            date_header=False)
    server = uvicorn.Server(config)

    def shut_down() -> None:             # as uvicorn does for SIGTERM: finish, then stop
        server.should_exit = True

    with hangup_calls(shut_down) as hung_up:
        server.run(sockets=[sock])
    if hung_up:                          # the terminal closed: end as Ctrl-C does
        raise KeyboardInterrupt
