"""The worker's HTTP API and web wall board, as Faust web views (aiohttp underneath).

`register_web(app, pipeline)` adds these routes to the worker's web port
(next to `/metrics`):

=========================================  =============================================
``GET /api/v1/report``                     SPEC §5 report from Redis; the CLI's options
                                           (``preset`` too) as query parameters; json,
                                           csv, xlsx or table
``GET /api/v1/conversations/{t}/{id}``     one conversation's attributes and metrics
``GET /api/v1/live``                       live gauges per tenant and the event clock
``GET /api/v1/board``                      the wall board's data (JSON, one snapshot)
``GET /api/v1/stream``                     the same, pushed every second (Server-Sent Events)
``GET /api/v1/openapi.json``               OpenAPI 3.1 description of all of this
``GET /api/docs``                          a page listing the endpoints
``GET /`` and ``GET /wallboard``           the wall board page (self-contained HTML)
=========================================  =============================================

Handlers only parse, call one read function and answer: reports come from
`live_report` (the code `livemetrics report` runs), board data is shaped by
`livemetrics.web.board`. Every read goes to Redis, so any worker answers for
all partitions; only the board's team and channel gauges come from this
worker's own engine state (Redis keeps gauges per tenant).

The board is pushed with Server-Sent Events: aiohttp's `StreamResponse` can be
returned from a Faust view once prepared, so no polling is needed (the page
falls back to polling ``/api/v1/board`` only if the browser has no EventSource).
One board is computed at most every `BOARD_MAX_AGE` seconds per range, however
many screens are connected.

Auth: when ``pipeline.settings.api_token`` is set, every route needs
``Authorization: Bearer <token>``; the pages, the board and the stream also
take ``?token=`` (a browser cannot add headers to a page load or an
EventSource). Otherwise 401.

    >>> register_web(app, pipeline)   # in create_app, before the worker starts  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hmac
import html
import io
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import faust
import orjson
from aiohttp import web as aioweb
from redis.exceptions import RedisError

from livemetrics.aggregate.formats import FORMATS, render
from livemetrics.aggregate.presets import PRESETS, apply_preset, preset_query
from livemetrics.aggregate.query import DIMENSIONS, RANGES, QueryError, ReportQuery
from livemetrics.aggregate.report import build_report
from livemetrics.config import Config
from livemetrics.engine.gauges import GaugeKey, live_gauges
from livemetrics.events import format_ts
from livemetrics.metrics import CONVERSATION_ATTRIBUTES
from livemetrics.sinks.redis_store import (
    RedisStore,
    StoredConversation,
    StoreFormatError,
    live_report,
    live_reports,
)
from livemetrics.stream.processor import EVENTS, STATUS
from livemetrics.topics import load_manifest
from livemetrics.web.board import board_queries, board_range, build_board, live_document

log = logging.getLogger("livemetrics.web")

API = "/api/v1"
STREAM_INTERVAL = 1.0
"""Seconds between two board events on ``/api/v1/stream``."""
BOARD_MAX_AGE = 0.5
"""A computed board is reused this long (seconds), shared by every connected screen."""

REPORT_PARAMETERS: tuple[str, ...] = (
    "by",
    "preset",
    "where",
    "tenant",
    "from",
    "to",
    "range",
    "format",
)
_SINGLE_PARAMETERS = ("preset", "from", "to", "range", "format")
_CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "table": "text/plain; charset=utf-8",
}
_DOWNLOADS = frozenset({"csv", "xlsx"})
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    # the page is self-contained: nothing may load from elsewhere
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

Handler = Callable[..., Awaitable[Any]]


def register_web(app: faust.App, pipeline: Any) -> None:
    """Add the API and wall board routes to the worker's Faust web server.

    `pipeline` needs ``.redis`` (a `RedisStore`), ``.config`` and ``.settings``;
    ``.processor`` and ``.active`` (optional) give the board its team and
    channel gauges.
    """
    WebApi(app, pipeline).register()


class WebApi:
    """The routes' state: the pipeline they read, the shared board cache, shutdown."""

    def __init__(self, app: faust.App, pipeline: Any) -> None:
        self.app = app
        self.pipeline = pipeline
        self.stopping = asyncio.Event()
        self._boards: dict[str, tuple[float, bytes]] = {}
        self._board_lock = asyncio.Lock()
        self._wallboard: str | None = None
        manifest = load_manifest()
        self._partitions = {
            name: manifest[name].partitions for name in (EVENTS, STATUS) if name in manifest
        }

    # -- wiring -------------------------------------------------------------------

    def register(self) -> None:
        pages: tuple[tuple[str, str, Handler, bool], ...] = (
            # "/" first: Faust mounts its own index at "/" later; the first route wins
            ("/", "wallboard_index", self.wallboard, True),
            ("/wallboard", "wallboard", self.wallboard, True),
            (f"{API}/report", "api_report", self.report, False),
            (f"{API}/conversations/{{tenant}}/{{conversation_id}}", "api_conversation",
             self.conversation, False),
            (f"{API}/live", "api_live", self.live, False),
            (f"{API}/board", "api_board", self.board, True),
            (f"{API}/stream", "api_stream", self.stream, True),
            (f"{API}/openapi.json", "api_openapi", self.openapi, True),
            ("/api/docs", "api_docs", self.docs, True),
        )  # fmt: skip
        for path, name, handler, query_token in pages:
            self.app.page(path, name=name)(self._view(name, handler, query_token))
        web_app = getattr(self.app.web, "web_app", None)
        if web_app is not None:  # aiohttp: end open streams when the server shuts down
            web_app.on_shutdown.append(self._on_shutdown)

    def _view(self, name: str, handler: Handler, query_token: bool) -> Handler:
        """A Faust view function: auth first, then the handler; store trouble is a 503."""

        async def view(web: Any, request: Any, **match: str) -> Any:
            problem = self.refusal(request, query_token)
            if problem is not None:
                return web.error(401, problem, headers={"WWW-Authenticate": "Bearer"})
            try:
                return await handler(web, request, **match)
            except QueryError as exc:
                return web.error(400, str(exc))
            except (RedisError, OSError) as exc:
                log.warning("%s: store unavailable: %s", name, exc)
                return web.error(503, f"store unavailable: {exc}")
            except StoreFormatError as exc:
                return web.error(500, str(exc))

        view.__name__ = name
        view.__doc__ = handler.__doc__
        return view

    async def _on_shutdown(self, _app: Any) -> None:
        self.stopping.set()

    # -- access -------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        """Read on every request, so a token set in settings applies at once."""
        value = getattr(getattr(self.pipeline, "settings", None), "api_token", None)
        return value or None

    def refusal(self, request: Any, query_token: bool) -> str | None:
        """Why a request may not pass (a 401 message), or None."""
        token = self.token
        if token is None:
            return None
        given = bearer_token(request.headers.get("Authorization"))
        if given is None and query_token:
            given = request.query.get("token")
        if given is None:
            return "authentication required: send Authorization: Bearer <token>"
        if not hmac.compare_digest(given.encode(), token.encode()):
            return "invalid token"
        return None

    # -- data routes ----------------------------------------------------------------

    @property
    def store(self) -> RedisStore:
        store: RedisStore | None = self.pipeline.redis
        if store is None:
            raise RedisError("the worker has no Redis store")
        return store

    @property
    def config(self) -> Config:
        config: Config = self.pipeline.config
        return config

    async def report(self, web: Any, request: Any) -> Any:
        """GET /api/v1/report: the SPEC §5 report or a preset, like `livemetrics report`."""
        wanted = report_request(request.query.items())
        query, fmt = wanted.query, wanted.fmt
        store = self.store
        report = await live_report(store.client, self.config, query, store.keys.prefix)
        if wanted.preset is not None:  # the CLI's `_finish`: same numbers, preset columns
            report = apply_preset(wanted.preset, report)
        out = io.BytesIO()
        render(report, fmt, out)
        headers = {"Content-Type": _CONTENT_TYPES[fmt], "Cache-Control": "no-store"}
        if fmt in _DOWNLOADS:
            filename = report_filename(query, fmt, preset=wanted.preset)
            headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return web.bytes(out.getvalue(), headers=headers)

    async def conversation(self, web: Any, request: Any, tenant: str, conversation_id: str) -> Any:
        """GET /api/v1/conversations/{tenant}/{conversation_id}: attributes and metrics."""
        store = self.store
        stored = await store.read_conversation(tenant, conversation_id)
        if stored is None:
            return web.error(404, f"no conversation {conversation_id!r} of tenant {tenant!r}")
        now_us = await store.clock_us()
        return web.json(conversation_document(stored, self.config, now_us))

    async def live(self, web: Any, request: Any) -> Any:
        """GET /api/v1/live: gauges per tenant (all workers) and the event clock."""
        store = self.store
        gauges = await store.read_gauges()
        return web.json(live_document(gauges, await store.clock_us()))

    async def board(self, web: Any, request: Any) -> Any:
        """GET /api/v1/board: one board snapshot (what the stream pushes)."""
        range_name = board_range(request.query.get("range"))
        body = await self.board_bytes(range_name)
        return web.bytes(
            body, headers={"Content-Type": "application/json", "Cache-Control": "no-store"}
        )

    async def stream(self, web: Any, request: Any) -> Any:
        """GET /api/v1/stream: Server-Sent Events, one ``board`` event every second."""
        range_name = board_range(request.query.get("range"))
        response = aioweb.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # a proxy in front must not buffer the stream
            }
        )
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        sequence = 0
        due = loop.time()
        try:
            await response.write(f"retry: {int(STREAM_INTERVAL * 1000)}\n\n".encode())
            while not self._should_stop():
                await response.write(await self._stream_event(range_name, sequence))
                sequence += 1
                due = max(due + STREAM_INTERVAL, loop.time())  # late: no burst to catch up
                if await self._wait_stop(due - loop.time()):
                    break
        except ConnectionResetError:  # the screen went away
            pass
        return response

    async def _stream_event(self, range_name: str, sequence: int) -> bytes:
        try:
            return sse_frame("board", await self.board_bytes(range_name), sequence)
        except (RedisError, OSError, StoreFormatError) as exc:
            problem = orjson.dumps({"error": f"store unavailable: {exc}"})
            return sse_frame("problem", problem, sequence)

    def _should_stop(self) -> bool:
        return self.stopping.is_set() or bool(getattr(self.app, "should_stop", False))

    async def _wait_stop(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=max(seconds, 0.0))
        except TimeoutError:
            return self._should_stop()
        return True

    async def board_bytes(self, range_name: str) -> bytes:
        """The board as JSON, computed at most every `BOARD_MAX_AGE` s per range."""
        cached = self._boards.get(range_name)
        if cached is not None and time.monotonic() - cached[0] < BOARD_MAX_AGE:
            return cached[1]
        async with self._board_lock:
            cached = self._boards.get(range_name)
            if cached is not None and time.monotonic() - cached[0] < BOARD_MAX_AGE:
                return cached[1]
            board = await self.compute_board(range_name)
            body = orjson.dumps(board)
            self._boards[range_name] = (time.monotonic(), body)
            return body

    async def compute_board(self, range_name: str) -> dict[str, Any]:
        """Reports by tenant, team and channel (one Redis read), gauges, engine breakdown."""
        store = self.store
        queries = board_queries(range_name)
        (by_tenant, by_team, by_channel), clock_us = await live_reports(
            store.client, self.config, queries, store.keys.prefix
        )
        tenant_gauges = await store.read_gauges()
        breakdown, complete = self.engine_gauges()
        board = build_board(
            by_tenant,
            by_team,
            by_channel,
            tenant_gauges,
            breakdown,
            clock_us=clock_us,
            range_name=range_name,
            breakdown_complete=complete,
        )
        board["generated_at"] = format_ts(int(time.time() * 1_000_000))
        board["interval_seconds"] = STREAM_INTERVAL
        return board

    def engine_gauges(self) -> tuple[dict[GaugeKey, float] | None, bool]:
        """Gauges by tenant, team and channel from this worker's engine, and whether the
        worker owns every input partition (else they are partial)."""
        processor = getattr(self.pipeline, "processor", None)
        engine = getattr(processor, "engine", None)
        if engine is None:
            return None, False
        values = live_gauges(engine.conversations.values(), engine.presence, engine.clock_us)
        active = getattr(self.pipeline, "active", None)
        if active is None:
            return values, True
        owned: dict[str, int] = {}
        for topic, _ in active:
            owned[topic] = owned.get(topic, 0) + 1
        complete = all(owned.get(topic, 0) >= n for topic, n in self._partitions.items())
        return values, complete

    # -- pages --------------------------------------------------------------------

    async def wallboard(self, web: Any, request: Any) -> Any:
        """GET / and /wallboard: the wall board page."""
        if self._wallboard is None:
            self._wallboard = wallboard_html()
        return web.html(self._wallboard, headers=dict(_PAGE_HEADERS))

    async def openapi(self, web: Any, request: Any) -> Any:
        """GET /api/v1/openapi.json."""
        return web.json(openapi_document())

    async def docs(self, web: Any, request: Any) -> Any:
        """GET /api/docs: the endpoints, linking the OpenAPI document."""
        return web.html(docs_page(openapi_document()), headers=dict(_PAGE_HEADERS))


# --- pure helpers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """A parsed ``/api/v1/report`` request.

    ``query`` already has the preset's ``by`` (`preset_query`), so it reads
    exactly what the preset needs; ``preset`` is kept to post-process the report
    (`apply_preset`), as the CLI does between reading and rendering.
    """

    query: ReportQuery
    fmt: str
    preset: str | None = None


def report_request(parameters: Iterable[tuple[str, str]]) -> ReportRequest:
    """Query parameters -> `ReportRequest`, with the CLI's rules and messages.

    ``by`` and ``where`` may repeat (``by`` values join with commas), ``tenant=X``
    is ``where=tenant=X``; ``preset``, ``from``, ``to``, ``range`` and ``format``
    are single. An unknown parameter is refused (a typo must not silently widen a
    report). ``preset`` follows `livemetrics report --preset`: it sets ``by``
    itself, so an explicit ``by`` is refused with the CLI's message; filters and
    dates combine with it freely.
    """
    values: dict[str, list[str]] = {}
    for name, value in parameters:
        values.setdefault(name, []).append(value)
    unknown = sorted(set(values) - {*REPORT_PARAMETERS, "token"})
    if unknown:
        raise QueryError(f"unknown parameter {unknown[0]!r} (use {', '.join(REPORT_PARAMETERS)})")
    for name in _SINGLE_PARAMETERS:
        if len(values.get(name, ())) > 1:
            raise QueryError(f"parameter {name!r} given more than once")

    def single(name: str) -> str | None:
        found = values.get(name)
        return found[0] if found and found[0] != "" else None

    fmt = single("format") or "json"
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
    preset = single("preset")
    if preset is not None and preset not in PRESETS:  # checked first, as argparse's choices
        raise QueryError(f"unknown preset {preset!r} (choose {', '.join(PRESETS)})")
    by = ",".join(values.get("by", ())) or None
    where = [*values.get("where", ()), *(f"tenant={t}" for t in values.get("tenant", ()))]
    query = ReportQuery.parse(
        by=by,
        where=where,
        date_from=single("from"),
        date_to=single("to"),
        range_name=single("range"),
    )
    if preset is None:
        return ReportRequest(query, fmt)
    if by:  # the CLI's `_query`: same rule, same message
        raise QueryError("--preset sets --by itself: drop --by")
    return ReportRequest(preset_query(preset, query), fmt, preset)


def report_filename(query: ReportQuery, fmt: str, *, preset: str | None = None) -> str:
    """``livemetrics-report-by-tenant-team-today.csv``, or ``livemetrics-report-agents-today.csv``
    for a preset: dimensions, presets and ranges are known words, so the name needs no
    quoting."""
    if query.range_name is not None:
        span = query.range_name
    elif query.date_from or query.date_to:
        low = query.date_from.isoformat() if query.date_from else "start"
        high = query.date_to.isoformat() if query.date_to else "now"
        span = f"{low}-to-{high}"
    else:
        span = "all"
    what = preset if preset is not None else f"by-{'-'.join(query.by)}"
    return f"livemetrics-report-{what}-{span}.{fmt}"


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def sse_frame(event: str, data: bytes, sequence: int) -> bytes:
    """One Server-Sent Event; compact JSON has no newline, so one ``data:`` line."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (sequence, event.encode(), data)


def conversation_document(
    stored: StoredConversation, config: Config, now_us: int
) -> dict[str, Any]:
    """A one-row ``--by conversation`` report of the conversation, split into its
    attributes (SPEC §3, D30) and its metrics."""
    tenant, conversation_id = stored.tenant, stored.conversation_id
    query = ReportQuery(
        by=("conversation",), where=(("tenant", tenant), ("conversation", conversation_id))
    )
    attributes = {} if stored.attributes is None else {(tenant, conversation_id): stored.attributes}
    rows = build_report(stored.cells, attributes, config, query, now_us)["rows"]
    row: Mapping[str, Any] = rows[0] if rows else {}
    names = set(CONVERSATION_ATTRIBUTES)
    found_attributes = {k: row.get(k) for k in CONVERSATION_ATTRIBUTES}
    if not rows and stored.attributes is not None:
        found_attributes = {k: stored.attributes.get(k) for k in CONVERSATION_ATTRIBUTES}
    partition, offset = stored.source_offset or (None, None)
    return {
        "tenant": tenant,
        "conversation_id": conversation_id,
        "attributes": found_attributes,
        "metrics": {k: v for k, v in row.items() if k != "conversation" and k not in names},
        "source": {"partition": partition, "offset": offset},
        "clock": format_ts(now_us) if now_us else None,
    }


def wallboard_html() -> str:
    """The page, shipped as package data (``web/static/wallboard.html``)."""
    return (resources.files("livemetrics.web") / "static" / "wallboard.html").read_text("utf-8")


def docs_page(document: Mapping[str, Any]) -> str:
    """A minimal, dependency-free list of the endpoints with their summaries."""
    items = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            summary = html.escape(operation.get("summary", ""))
            items.append(f"<li><code>{method.upper()} {html.escape(path)}</code> — {summary}</li>")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>livemetrics API</title>"
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}code{background:#f2f2f2;padding:0 .25rem}</style></head><body>"
        f"<h1>livemetrics API {html.escape(document['info']['version'])}</h1>"
        f"<p>{html.escape(document['info']['description'])}</p>"
        '<p>OpenAPI 3.1: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> · '
        'wall board: <a href="/wallboard">/wallboard</a></p>'
        f"<ul>{''.join(items)}</ul></body></html>"
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description; enums come from the code, so they cannot drift."""
    error = {"$ref": "#/components/responses/Error"}
    unauthorized = {"$ref": "#/components/responses/Unauthorized"}
    json_object = {"application/json": {"schema": {"type": "object"}}}
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    report_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}
    path_parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": "percent-encoded (a '/' in an id as %2F)",
        }
        for name in ("tenant", "conversation_id")
    ]
    range_parameter = {
        "name": "range",
        "in": "query",
        "schema": {"type": "string", "enum": list(RANGES), "default": "today"},
        "description": "named range of the report metrics, per tenant's local date",
    }
    report_parameters = [
        {
            "name": "by",
            "in": "query",
            "description": "group by, comma separated or repeated (default tenant)",
            "schema": {"type": "string"},
            "example": "tenant,team",
        },
        {
            "name": "preset",
            "in": "query",
            "description": "a ready-made report, as `livemetrics report --preset`: it sets "
            "`by` itself (so `by` is refused with it) and derives its columns from that "
            "report's rows; filters and dates apply as usual. "
            + "; ".join(f"{name}: {preset.title}" for name, preset in PRESETS.items()),
            "schema": {"type": "string", "enum": list(PRESETS)},
        },
        {
            "name": "where",
            "in": "query",
            "description": f"DIM=VALUE filter, repeatable; DIM one of {', '.join(DIMENSIONS)}",
            "schema": {"type": "array", "items": {"type": "string"}},
            "style": "form",
            "explode": True,
        },
        {
            "name": "tenant",
            "in": "query",
            "description": "shorthand for where=tenant=VALUE",
            "schema": {"type": "string"},
        },
        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
        {**range_parameter, "schema": {"type": "string", "enum": list(RANGES)}},
        {
            "name": "format",
            "in": "query",
            "schema": {"type": "string", "enum": list(FORMATS), "default": "json"},
        },
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "livemetrics worker API",
            "version": "1",
            "description": "Reports (SPEC §5), conversations, live gauges and the wall board "
            "of the livemetrics live store. Any worker answers for all partitions.",
        },
        "security": [{"bearer": []}, {}],
        "paths": {
            f"{API}/report": {
                "get": {
                    "summary": "Report from the live store (same options as `livemetrics report`)",
                    "parameters": report_parameters,
                    "responses": {
                        "200": {
                            "description": "the report: JSON {by, rows} (with a preset also "
                            "{preset, title, columns}) or a download",
                            "content": {
                                **report_content,
                                "text/csv": {"schema": {"type": "string"}},
                                _CONTENT_TYPES["xlsx"]: {
                                    "schema": {"type": "string", "contentEncoding": "binary"}
                                },
                                "text/plain": {"schema": {"type": "string"}},
                            },
                        },
                        "400": error,
                        "401": unauthorized,
                        "503": error,
                    },
                }
            },
            f"{API}/conversations/{{tenant}}/{{conversation_id}}": {
                "get": {
                    "summary": "One conversation: attributes and metrics over its whole life",
                    "parameters": path_parameters,
                    "responses": {
                        "200": {"description": "attributes and metrics", "content": json_object},
                        "401": unauthorized,
                        "404": error,
                        "503": error,
                    },
                }
            },
            f"{API}/live": {
                "get": {
                    "summary": "Live gauges per tenant and the event clock",
                    "responses": {
                        "200": {"description": "clock and tenants' gauges", "content": json_object},
                        "401": unauthorized,
                        "503": error,
                    },
                }
            },
            f"{API}/board": {
                "get": {
                    "summary": "Wall board data: per tenant, team and channel",
                    "security": [{"bearer": []}, {"query_token": []}, {}],
                    "parameters": [range_parameter],
                    "responses": {
                        "200": {"description": "one board snapshot", "content": json_object},
                        "400": error,
                        "401": unauthorized,
                        "503": error,
                    },
                }
            },
            f"{API}/stream": {
                "get": {
                    "summary": "Wall board data pushed every second (Server-Sent Events)",
                    "description": "`event: board` with the /api/v1/board JSON as data, one "
                    "a second; `event: problem` when the store cannot be read.",
                    "security": [{"bearer": []}, {"query_token": []}, {}],
                    "parameters": [range_parameter],
                    "responses": {
                        "200": {
                            "description": "an endless event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "400": error,
                        "401": unauthorized,
                    },
                }
            },
            f"{API}/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [{"bearer": []}, {"query_token": []}, {}],
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": json_object}},
                }
            },
            "/api/docs": {
                "get": {
                    "summary": "A page listing the endpoints",
                    "security": [{"bearer": []}, {"query_token": []}, {}],
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
            "/wallboard": {
                "get": {
                    "summary": "The wall board page (also at /)",
                    "security": [{"bearer": []}, {"query_token": []}, {}],
                    "parameters": [range_parameter],
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "query_token": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": {
                "Report": {
                    "type": "object",
                    "required": ["by", "rows"],
                    "properties": {
                        "by": {"type": "array", "items": {"enum": list(DIMENSIONS)}},
                        "rows": {"type": "array", "items": {"type": "object"}},
                        "preset": {"enum": list(PRESETS), "description": "with ?preset="},
                        "title": {"type": "string", "description": "with ?preset="},
                        "columns": {
                            "type": "array",
                            "description": "with ?preset=: key, label, unit, definition",
                            "items": {"type": "object"},
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
            },
            "responses": {
                "Error": {
                    "description": "what went wrong, in one line",
                    "content": error_content,
                },
                "Unauthorized": {
                    "description": "a token is configured and the request has none or a wrong one",
                    "content": error_content,
                },
            },
        },
    }
