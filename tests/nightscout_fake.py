"""A small fake Nightscout (API v1) for the upload tests: no real Nightscout can run here (it
needs MongoDB), so decocare's upload is tested against this, not against Nightscout itself.

It speaks the few routes the upload uses, the way Nightscout answers them:

* ``GET /api/v1/treatments.json?find[created_at][$gte]=..&find[created_at][$lte]=..&count=N``
  and ``GET /api/v1/entries.json?find[date][$gte]=..&find[date][$lte]=..&count=N``: newest
  first, at most ``count`` (default 10, as Nightscout); created_at bounds compare as strings,
  like MongoDB on Nightscout's stored strings, date bounds as numbers;
* ``POST`` of one document or a list: treatments get ``created_at`` normalised to UTC
  ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (Nightscout does so) and are upserted on created_at + eventType,
  entries on date + type (so a duplicate never shows up twice here either -- the tests count
  what was POSTed to see the duplicates the client sent);
* ``API-SECRET`` must be the sha1 hex of the secret, else 401 ``{"status": 401, ...}``.

Faults: ``fail_after_posts=K`` makes every POST after the first K fail -- ``fail_mode`` "drop"
closes the connection without an answer before storing, "store-then-drop" stores the batch and
then closes (the client cannot know it arrived), "500" answers an error; ``html=True`` answers
every request with an HTML page (a wrong URL, a captive portal); ``redirect=URL`` answers 301.
"""
import datetime
import hashlib
import http.server
import json
import threading
import urllib.parse

ROUTES = {"/api/v1/treatments.json": "treatments", "/api/v1/entries.json": "entries"}


def _utc_string(text):
    when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    when = when.astimezone(datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000)


class FakeNightscout:
    def __init__(self, secret="test-secret-1234"):
        self.secret_hash = hashlib.sha1(secret.encode()).hexdigest()
        self.docs = {"treatments": [], "entries": []}
        self.posts = 0              # POST requests answered (or failed)
        self.posted = []            # every document POSTed, in order (duplicates included)
        self.gets = []              # query dicts of the GETs
        self.fail_after_posts = None
        self.fail_mode = "drop"
        self.html = False
        self.redirect = None        # answer every request with a 301 to this URL
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # -- helpers for tests
    def keys(self, collection):
        if collection == "treatments":
            return [(d["created_at"], d.get("eventType")) for d in self.docs[collection]]
        return [(d["date"], d.get("type")) for d in self.docs[collection]]

    # -- the server side
    def _answer(self, handler, code, value):
        body = json.dumps(value).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _drop(self, handler):
        handler.close_connection = True
        handler.connection.close()

    def _handle(self, handler, method):
        parts = urllib.parse.urlsplit(handler.path)
        if self.redirect:
            handler.send_response(301)
            handler.send_header("Location", self.redirect + handler.path)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if self.html:
            body = b"<html><body>Welcome to nginx!</body></html>"
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        collection = ROUTES.get(parts.path)
        if collection is None:
            return self._answer(handler, 404, {"status": 404, "message": "Not found"})
        if handler.headers.get("API-SECRET") != self.secret_hash:
            return self._answer(handler, 401, {"status": 401, "message": "Unauthorized",
                                               "description": "Invalid/Missing"})
        if method == "GET":
            return self._get(handler, collection, urllib.parse.parse_qs(parts.query))
        length = int(handler.headers.get("Content-Length") or 0)
        try:
            value = json.loads(handler.rfile.read(length).decode())
        except ValueError:
            return self._answer(handler, 400, {"status": 400, "message": "bad JSON"})
        docs = value if isinstance(value, list) else [value]
        with self.lock:
            self.posts += 1
            failing = self.fail_after_posts is not None and self.posts > self.fail_after_posts
            if failing and self.fail_mode == "drop":
                return self._drop(handler)
            if failing and self.fail_mode == "500":
                return self._answer(handler, 500, {"status": 500, "message": "Mongo down"})
            stored = [self._store(collection, dict(d)) for d in docs]
        if failing:                                     # store-then-drop
            return self._drop(handler)
        return self._answer(handler, 200, stored)

    def _store(self, collection, doc):
        self.posted.append(doc)
        if collection == "treatments":
            doc["created_at"] = _utc_string(doc["created_at"])
            same = lambda d: d["created_at"] == doc["created_at"] and d.get("eventType") == doc.get("eventType")
        else:
            same = lambda d: d.get("date") == doc.get("date") and d.get("type") == doc.get("type")
        kept = self.docs[collection]
        for n, old in enumerate(kept):
            if same(old):
                doc["_id"] = old["_id"]
                kept[n] = doc                   # Nightscout's upsert: the old one is replaced
                return doc
        doc["_id"] = "%024x" % (len(self.posted))
        kept.append(doc)
        return doc

    def _get(self, handler, collection, query):
        self.gets.append(query)
        count = int(query.get("count", ["10"])[0])
        field = "created_at" if collection == "treatments" else "date"
        out = []
        for doc in self.docs[collection]:
            value = doc.get(field)
            ok = True
            for op, test in (("$gte", lambda a, b: a >= b), ("$lte", lambda a, b: a <= b)):
                bound = query.get("find[%s][%s]" % (field, op))
                if bound is None:
                    continue
                bound = bound[0] if field == "created_at" else float(bound[0])
                ok = ok and value is not None and test(value, bound)
            if ok:
                out.append(doc)
        out.sort(key=lambda d: d.get(field), reverse=True)
        return self._answer(handler, 200, out[:count])
