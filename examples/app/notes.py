"""notes: a small JSON API on Postgres with a Redis read-through cache (Python stdlib + Debian's
psycopg2 and redis-py).

    POST /notes        {"text": "..."}  -> 201 {"id": 1}          (400 on a bad body)
    GET  /notes/<id>                    -> 200 {"id": 1, "text": "..."} with X-Cache: hit|miss
                                           (404 when there is no such note)
    GET  /notes/<id>/words              -> 200 {"id": 1, "words": 2} once the worker counted them,
                                           202 {"id": 1, "words": null} before
    GET  /health                        -> 200 when Postgres and Redis both answer, else 503

``notes.py worker`` is the worker: it takes new notes' ids from the Redis list ``words`` and
writes each note's word count into Postgres.

Configuration from the environment: DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME,
REDIS_HOST, REDIS_PORT, REDIS_DB, CACHE_TTL (seconds), PORT.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg2
import redis

DB = {
    "host": os.environ.get("DB_HOST", "localhost"),
    "port": int(os.environ.get("DB_PORT", "5432")),
    "user": os.environ.get("DB_USER", "postgres"),
    "password": os.environ.get("DB_PASSWORD", ""),
    "dbname": os.environ.get("DB_NAME", "postgres"),
    "connect_timeout": 2,
}
CACHE = redis.Redis(host=os.environ.get("REDIS_HOST", "localhost"), port=int(os.environ.get("REDIS_PORT", "6379")),
                    db=int(os.environ.get("REDIS_DB", "0")), socket_connect_timeout=1, socket_timeout=2)
QUEUE = "words"
CACHE_TTL = int(os.environ.get("CACHE_TTL", "300"))
PORT = int(os.environ.get("PORT", "8080"))
MAX_BODY = 64 * 1024

SCHEMA = """CREATE TABLE IF NOT EXISTS notes (
    id         bigserial PRIMARY KEY,
    text       text NOT NULL,
    words      int,
    created_at timestamptz NOT NULL DEFAULT now()
)"""
schema_ready = threading.Event()


def query(sql: str, args: tuple[Any, ...] = ()) -> Any:
    """Run one statement in its own connection and transaction; the first row, if any. (A
    connection per request keeps the example short; a real service would use a pool.)"""
    conn = psycopg2.connect(**DB)
    try:
        with conn, conn.cursor() as cur:  # commits, or rolls back on an error
            cur.execute(sql, args)
            return cur.fetchone() if cur.description else None
    finally:
        conn.close()


def cache_key(note_id: int) -> str:
    return f"note:{note_id}"


def create_schema() -> None:
    """At start, in the background: the server answers /health (503) while the database is not
    there yet, rather than not listening at all."""
    pause = 0.05
    while True:
        try:
            query(SCHEMA)
            schema_ready.set()
            print("schema ready")
            return
        except psycopg2.Error as exc:
            print(f"waiting for the database at {DB['host']}:{DB['port']}: {str(exc).strip()}")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


class BadRequest(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    server_version = "notes/1"
    protocol_version = "HTTP/1.1"

    def send_json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def error(self, status: HTTPStatus, message: str) -> None:
        self.send_json(status, {"error": message})

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        m = re.fullmatch(r"/notes/(\d{1,18})(/words)?", self.path)
        if self.path == "/health":
            self.health()
        elif m and m.group(2):
            self.guarded(self.get_words, int(m.group(1)))
        elif m:
            self.guarded(self.get_note, int(m.group(1)))
        else:
            self.error(HTTPStatus.NOT_FOUND, f"no route GET {self.path}")

    def do_POST(self) -> None:
        if self.path == "/notes":
            self.guarded(self.create_note)
        else:
            self.error(HTTPStatus.NOT_FOUND, f"no route POST {self.path}")

    def guarded(self, route: Any, *args: Any) -> None:
        try:
            route(*args)
        except psycopg2.Error as exc:
            self.log_message("database error: %s", str(exc).strip())
            self.error(HTTPStatus.SERVICE_UNAVAILABLE, "the database is unavailable")

    def health(self) -> None:
        checks = {"db": "starting" if not schema_ready.is_set() else "ok", "redis": "ok"}
        if schema_ready.is_set():
            try:
                query("SELECT 1")
            except psycopg2.Error as exc:
                checks["db"] = str(exc).strip()
        try:
            CACHE.ping()
        except redis.RedisError as exc:
            checks["redis"] = str(exc)
        ok = all(v == "ok" for v in checks.values())
        self.send_json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, checks)

    def create_note(self) -> None:
        try:
            text = self.read_note()
        except BadRequest as exc:
            return self.error(HTTPStatus.BAD_REQUEST, str(exc))
        if not schema_ready.is_set():
            return self.error(HTTPStatus.SERVICE_UNAVAILABLE, "database not ready")
        (note_id,) = query("INSERT INTO notes (text) VALUES (%s) RETURNING id", (text,))
        try:
            CACHE.rpush(QUEUE, note_id)  # for the worker
        except redis.RedisError as exc:
            self.log_message("word count not queued: %s", exc)
        self.send_json(HTTPStatus.CREATED, {"id": note_id}, {"Location": f"/notes/{note_id}"})

    def read_note(self) -> str:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if not 0 < length <= MAX_BODY:
            raise BadRequest(f"the body must be a JSON object of 1 to {MAX_BODY} bytes")
        try:
            doc = json.loads(self.rfile.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str) or not doc["text"].strip():
            raise BadRequest('the body must be {"text": "<a non-empty string>"}')
        return doc["text"]

    def get_note(self, note_id: int) -> None:
        key = cache_key(note_id)
        try:
            cached = CACHE.get(key)
        except redis.RedisError:
            cached = None  # the cache is an optimisation: serve from the database
        if cached is not None:
            return self.send_json(HTTPStatus.OK, json.loads(cached), {"X-Cache": "hit"})
        row = query("SELECT id, text FROM notes WHERE id = %s", (note_id,))
        if row is None:
            return self.error(HTTPStatus.NOT_FOUND, f"no note {note_id}")
        note = {"id": row[0], "text": row[1]}
        try:
            CACHE.set(key, json.dumps(note), ex=CACHE_TTL)
        except redis.RedisError:
            pass
        self.send_json(HTTPStatus.OK, note, {"X-Cache": "miss"})

    def get_words(self, note_id: int) -> None:
        row = query("SELECT words FROM notes WHERE id = %s", (note_id,))
        if row is None:
            return self.error(HTTPStatus.NOT_FOUND, f"no note {note_id}")
        status = HTTPStatus.OK if row[0] is not None else HTTPStatus.ACCEPTED
        self.send_json(status, {"id": note_id, "words": row[0]})

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.address_string()} {format % args}")


def worker() -> None:
    """Count the words of each new note (a job through Redis, the result in Postgres)."""
    create_schema()
    print("worker ready")
    while True:
        try:
            job = CACHE.blpop([QUEUE], timeout=1)
        except redis.RedisError as exc:
            print(f"waiting for redis: {exc}")
            time.sleep(0.5)
            continue
        if job is None:
            continue
        note_id = int(job[1])
        row = query("SELECT text FROM notes WHERE id = %s", (note_id,))
        if row is not None:
            query("UPDATE notes SET words = %s WHERE id = %s", (len(row[0].split()), note_id))
            print(f"counted the words of note {note_id}")


def main() -> None:
    if sys.argv[1:] == ["worker"]:
        return worker()
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=create_schema, name="schema", daemon=True).start()
    print(f"listening on {PORT}")
    server.serve_forever()


if __name__ == "__main__":
    main()
