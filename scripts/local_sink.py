"""The web sink of scripts/local_aws.py: every service fleetguard posts to (Slack's incoming
webhooks and Web API, PagerDuty Events v2, Teams Workflows webhooks) on one port, answering as
each documents, errors and rate limits included. See `SlackSink`."""

import hashlib
import io
import json
import re
import socket
import threading
import time
import uuid

from local_fakes import Handler


def channel_id(channel):
    """A stable Slack channel ID for a channel name, as Slack resolves `#ops` to `C…`."""
    if re.fullmatch(r"[CGD][A-Z0-9]{6,}", channel):
        return channel
    digest = hashlib.sha256(channel.lstrip("#").encode()).hexdigest().upper()
    return "C" + digest[:9]


class SlackSink:
    """Every destination fleetguard posts to, on one port, by path:

    - `/services/…`: Slack incoming webhooks (answer `ok`).
    - `/api/chat.postMessage`, `/api/chat.update`: the subset of Slack's Web API fleetguard uses:
      a bot token as `Authorization: Bearer xoxb-…` (else `not_authed`), errors as HTTP 200 with
      `"ok": false` (`channel_not_found`, `message_not_found`, `no_text`), `chat.update` only by
      channel ID and an existing `ts`. `GET /_sink/slack/messages`: the messages as they are now,
      with their thread replies.
    - `/v2/enqueue`: PagerDuty Events API v2: 32-character routing keys, trigger/acknowledge/resolve,
      202 `{"status": "success", "dedup_key": …}` or 400 `invalid event`. `GET /_sink/pagerduty/alerts`.
    - `/workflows/…`: a Teams Workflows webhook: a `message` with an Adaptive Card attachment, 202.

    `POST /_sink/rate` `{"slack_per_second": 1, "pagerduty_per_minute": 120}`: from then on, a
    request over the service's documented rate answers 429 (recorded with status 429): Slack's with
    `Retry-After: 1`, per channel for the Web API and per webhook; PagerDuty's per routing key,
    with no Retry-After.

    `POST /_sink/fail` `{status, count, retry_after, path, slack_error, drop}`: the next `count`
    requests whose path starts with `path` (any when absent) answer `status` (429 with
    Retry-After), or, with `slack_error`, HTTP 200 `{"ok": false, "error": slack_error}`, or, with
    `drop`, are acted on as usual and then lose their answer: the connection closes unanswered,
    as when a client's timeout fires after the service did the work.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.failures = []  # dicts: status, retry_after, path, slack_error
        self.messages = {}  # (channel id, ts) -> message
        self.alerts = {}  # dedup_key -> alert
        self.seq = 0
        self.rates = {}  # slack_per_second, pagerduty_per_minute (POST /_sink/rate)
        self.calls = {}  # rate key -> recent request times

    def rate_limited(self, path, body):
        """Whether this request goes over the documented rate (when `POST /_sink/rate` turned it
        on): Slack's one message a second per channel (chat.postMessage) or per webhook, its
        chat.update (Tier 3, 50 a minute) at one a second, each over any two seconds (Slack
        allows short bursts); PagerDuty's 120 events a minute per routing key. Counts it when it
        does not. Called holding the lock."""
        if not self.rates:
            return False
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            req = {}
        if path.startswith("/api/chat.postMessage"):
            key, limit, window = ("slack", channel_id(str(req.get("channel") or ""))), self.rates.get("slack_per_second"), 2.0
        elif path.startswith("/api/chat.update"):
            # Tier 3: 50+ a minute per workspace; held to one a second here.
            key, limit, window = ("slack-update",), self.rates.get("slack_per_second"), 2.0
        elif path.startswith("/services/"):
            key, limit, window = ("webhook", path), self.rates.get("slack_per_second"), 2.0
        elif path.startswith("/v2/enqueue"):
            key, limit, window = ("pagerduty", str(req.get("routing_key"))), self.rates.get("pagerduty_per_minute"), 60.0
        else:
            return False
        if not limit:
            return False
        # Slack: "1 per second, short bursts >1 allowed": held to the rate over two seconds.
        limit = limit * window if window < 60 else limit
        now = time.time()
        recent = [t for t in self.calls.get(key, []) if t > now - window]
        if len(recent) >= limit:
            self.calls[key] = recent
            return True
        self.calls[key] = recent + [now]
        return False

    def take_failure(self, path):
        for i, f in enumerate(self.failures):
            if path.startswith(f.get("path") or ""):
                return self.failures.pop(i)
        return None

    def handler(sink):
        class H(Handler):
            def do_GET(self):
                with sink.lock:
                    if self.path == "/_sink/requests":
                        return self.reply_json(200, sink.requests)
                    if self.path == "/_sink/slack/messages":
                        return self.reply_json(200, list(sink.messages.values()))
                    if self.path == "/_sink/pagerduty/alerts":
                        return self.reply_json(200, list(sink.alerts.values()))
                self.reply(404, "not found")

            def do_POST(self):
                body = self.body()
                if self.path == "/_sink/reset":
                    with sink.lock:
                        sink.requests.clear()
                        sink.failures.clear()
                        sink.messages.clear()
                        sink.alerts.clear()
                        sink.rates.clear()
                        sink.calls.clear()
                    return self.reply_json(200, {"ok": True})
                if self.path == "/_sink/fail":
                    spec = json.loads(body or b"{}")
                    with sink.lock:
                        for _ in range(int(spec.get("count", 1))):
                            sink.failures.append({
                                "status": int(spec.get("status", 500)),
                                "retry_after": spec.get("retry_after"),
                                "path": spec.get("path"),
                                "slack_error": spec.get("slack_error"),
                                "drop": bool(spec.get("drop")),
                            })
                    return self.reply_json(200, {"queued": len(sink.failures)})
                if self.path == "/_sink/rate":
                    with sink.lock:
                        sink.rates = json.loads(body or b"{}")
                        sink.calls.clear()
                    return self.reply_json(200, sink.rates)
                with sink.lock:
                    if sink.rate_limited(self.path, body):
                        sink.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                              "body": body.decode("utf-8", "replace"), "status": 429, "time": time.time()})
                        if self.path.startswith("/api/"):
                            # Slack's Web API: HTTP 429 with Retry-After.
                            return self.reply(429, "ratelimited", "text/plain", {"Retry-After": "1"})
                        if self.path.startswith("/v2/"):
                            # PagerDuty: 429 with no Retry-After; the client backs off.
                            return self.reply_json(429, {"status": "throttle event",
                                                         "message": "Requests for this service are arriving too quickly."})
                        return self.reply(429, "rate_limited", "text/html", {"Retry-After": "1"})
                    failure = sink.take_failure(self.path)
                    if failure and failure.get("drop"):
                        return self.act_then_drop(body)
                    status = failure["status"] if failure and not failure.get("slack_error") else 200
                    sink.requests.append({
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body.decode("utf-8", "replace"),
                        "status": status,
                        "time": time.time(),
                    })
                    if failure and failure.get("slack_error"):
                        return self.reply_json(200, {"ok": False, "error": failure["slack_error"]})
                    if status == 429:
                        headers = {"Retry-After": str(failure["retry_after"])} if failure["retry_after"] is not None else {}
                        return self.reply(429, "rate_limited", "text/html", headers)
                    if status != 200:
                        return self.reply(status, "server_error" if status >= 500 else "invalid_payload", "text/html")
                    if self.path.startswith("/api/"):
                        return self.slack_api(body)
                    if self.path.startswith("/v2/enqueue"):
                        return self.pagerduty(body)
                    if self.path.startswith("/workflows/"):
                        return self.teams(body)
                    return self.reply(200, "ok", "text/html")

            def act_then_drop(self, body):
                """Do the work, then close the connection with no answer (called holding the lock)."""
                sink.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body.decode("utf-8", "replace"), "status": 200,
                                      "dropped": True, "time": time.time()})
                answer, self.wfile = self.wfile, io.BytesIO()  # the answer is lost
                if self.path.startswith("/api/"):
                    self.slack_api(body)
                elif self.path.startswith("/v2/enqueue"):
                    self.pagerduty(body)
                self.wfile = answer
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def slack_api(self, body):
                auth = self.headers.get("Authorization") or ""
                if not auth.startswith("Bearer xox"):
                    return self.reply_json(200, {"ok": False, "error": "not_authed"})
                try:
                    req = json.loads(body)
                except ValueError:
                    return self.reply_json(200, {"ok": False, "error": "invalid_json"})
                method = self.path[len("/api/"):]
                channel = req.get("channel") or ""
                if not channel:
                    return self.reply_json(200, {"ok": False, "error": "channel_not_found"})
                if method == "chat.postMessage":
                    if not (req.get("text") or req.get("blocks") or req.get("attachments")):
                        return self.reply_json(200, {"ok": False, "error": "no_text"})
                    cid = channel_id(channel)
                    sink.seq += 1
                    ts = f"{int(time.time())}.{sink.seq:06d}"
                    thread = req.get("thread_ts")
                    if thread:
                        parent = sink.messages.get((cid, thread))
                        if parent is None:
                            return self.reply_json(200, {"ok": False, "error": "thread_not_found"})
                        parent["replies"].append({"ts": ts, "text": req.get("text")})
                    else:
                        sink.messages[(cid, ts)] = {"channel": cid, "channel_name": channel, "ts": ts,
                                                     "text": req.get("text"), "attachments": req.get("attachments"),
                                                     "updates": 0, "replies": []}
                    return self.reply_json(200, {"ok": True, "channel": cid, "ts": ts, "message": {"text": req.get("text")}})
                if method == "chat.update":
                    msg = sink.messages.get((channel, req.get("ts")))
                    if not re.fullmatch(r"[CGD][A-Z0-9]{6,}", channel):
                        return self.reply_json(200, {"ok": False, "error": "channel_not_found"})
                    if msg is None:
                        return self.reply_json(200, {"ok": False, "error": "message_not_found"})
                    msg["text"] = req.get("text")
                    msg["attachments"] = req.get("attachments")
                    msg["updates"] += 1
                    return self.reply_json(200, {"ok": True, "channel": channel, "ts": req.get("ts")})
                return self.reply_json(200, {"ok": False, "error": "unknown_method"})

            def pagerduty(self, body):
                def invalid(why):
                    return self.reply_json(400, {"status": "invalid event", "message": "Event object is invalid",
                                                 "errors": [why]})
                try:
                    ev = json.loads(body)
                except ValueError:
                    return invalid("Could not parse JSON")
                key = ev.get("routing_key") or ""
                if len(key) != 32:
                    return invalid("Length of 'routing_key' is incorrect (should be 32 characters)")
                action = ev.get("event_action")
                if action not in ("trigger", "acknowledge", "resolve"):
                    return invalid("'event_action' is invalid")
                dedup = ev.get("dedup_key") or uuid.uuid4().hex
                if action == "trigger":
                    p = ev.get("payload") or {}
                    for field in ("summary", "source", "severity"):
                        if not p.get(field):
                            return invalid(f"'payload.{field}' is missing or blank")
                    if p["severity"] not in ("critical", "error", "warning", "info"):
                        return invalid("'payload.severity' is invalid")
                    if len(p["summary"]) > 1024 or len(dedup) > 255:
                        return invalid("'payload.summary' or 'dedup_key' is too long")
                    alert = sink.alerts.get(dedup)
                    if alert is None or alert["status"] == "resolved":
                        sink.alerts[dedup] = alert = {"dedup_key": dedup, "status": "triggered", "events": []}
                    alert["summary"] = p["summary"]
                    alert["severity"] = p["severity"]
                elif dedup in sink.alerts:
                    sink.alerts[dedup]["status"] = "resolved" if action == "resolve" else "acknowledged"
                if dedup in sink.alerts:
                    sink.alerts[dedup]["events"].append(action)
                return self.reply_json(202, {"status": "success", "message": "Event processed", "dedup_key": dedup})

            def teams(self, body):
                try:
                    msg = json.loads(body)
                    card = msg["attachments"][0]
                    ok = (msg.get("type") == "message"
                          and card.get("contentType") == "application/vnd.microsoft.card.adaptive"
                          and card["content"].get("type") == "AdaptiveCard")
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    ok = False
                if not ok:
                    return self.reply(400, "Bad Request: not a message with an Adaptive Card", "text/plain")
                if len(body) > 28 * 1024:
                    return self.reply(413, "Request Entity Too Large", "text/plain")
                return self.reply(202, "")
        return H
