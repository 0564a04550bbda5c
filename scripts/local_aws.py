#!/usr/bin/env python3
"""A local AWS for fleetguard's tests and demo, all on 127.0.0.1, on free ports.

    local_aws.py serve [--state FILE]   start the three servers below; print one JSON line with
                                        their URLs (and write it to FILE); run until stdin closes,
                                        SIGTERM or SIGINT
    local_aws.py seed --moto URL --slack URL [--out FILE]
                                        build the demo fleet in moto and print what was created

The servers:
- moto server (ECS, EC2, Auto Scaling, ELBv2, SNS, SQS, Secrets Manager, DynamoDB, EventBridge, ...).
- A web sink for every notification destination (Slack webhooks and the Web API subset fleetguard
  uses, PagerDuty Events v2, Teams Workflows webhooks): records every POST (path, headers, body);
  `POST /_sink/fail` makes the next N requests (of a path) answer 429 with Retry-After, 500, or
  Slack's `"ok": false`; `GET /_sink/requests`; `POST /_sink/reset`. See `SlackSink`.
- TEST FIXTURE: an Auto Scaling lifecycle fake. moto lacks CompleteLifecycleAction and
  RecordLifecycleActionHeartbeat and never puts instances into Pending:Wait/Terminating:Wait. The
  fake speaks the real Auto Scaling Query/XML protocol, so the real SDK client talks to it through
  AWS_ENDPOINT_URL_AUTO_SCALING: it answers those two calls itself, forwards every other call to
  moto, and reports `Pending:Wait`/`Terminating:Wait` for instances with a pending lifecycle action
  in DescribeAutoScalingInstances and DescribeAutoScalingGroups, and answers DescribeScalingActivities
  with the activity each action belongs to (its start time is when the launch or termination began;
  moto records none for actions it never runs). Control endpoints:
  `POST /_fake/lifecycle-actions` (start a pending action), `POST /_fake/ecs/task-stopped` (a task's
  containers exit with given codes, as the ECS agent would report; moto has no agent),
  `GET /_fake/calls` (every call, for
  assertions), `GET /_fake/lifecycle-actions`, `POST /_fake/fail` (next N calls of an action fail,
  e.g. with Throttling), `POST /_fake/reset`. Each lifecycle action belongs to an account
  (`Account`, default 123456789012): only calls signed with that account's keys see it.
- TEST FIXTURE: STS in front of moto that refuses AssumeRole as AWS does when the role's trust
  policy does not allow the caller (moto lets anyone assume anything). See `TrustFake`.
"""

import argparse
import hashlib
import io
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
ASG_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", content_type="text/plain", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, status, obj):
        self.reply(status, json.dumps(obj), "application/json")


# ---------------------------------------------------------------- Web sink (Slack, PagerDuty, Teams)


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
                with sink.lock:
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


# ---------------------------------------------------- Auto Scaling lifecycle fake (TEST FIXTURE)


class LifecycleFake:
    def __init__(self, moto_url):
        self.moto_url = moto_url
        self.lock = threading.Lock()
        self.calls = []
        self.pending = {}  # instance id -> action
        self.done = []
        self.failures = {}  # action -> list of (status, code, message)

    def state_of(self, action):
        # A warm-pool transition waits in `Warmed:Pending:Wait` (given as "LifecycleState").
        if action.get("LifecycleState"):
            return action["LifecycleState"]
        return "Pending:Wait" if action["LifecycleTransition"].endswith("LAUNCHING") else "Terminating:Wait"

    def handler(fake):
        class H(Handler):
            def do_GET(self):
                if self.path == "/_fake/calls":
                    with fake.lock:
                        return self.reply_json(200, fake.calls)
                if self.path == "/_fake/lifecycle-actions":
                    with fake.lock:
                        return self.reply_json(200, {"pending": list(fake.pending.values()), "completed": fake.done})
                self.reply(404, "not found")

            def do_POST(self):
                body = self.body()
                if self.path.startswith("/_fake/"):
                    return self.control(self.path, json.loads(body or b"{}"))
                params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
                action = params.get("Action", "")
                account = caller_account(self.headers)
                with fake.lock:
                    fake.calls.append({"action": action, "params": params, "time": time.time(), "account": account})
                    queued = fake.failures.get(action) or []
                    failure = queued.pop(0) if queued else None
                if failure:
                    return self.error(*failure)
                if action in ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat", "DescribeScalingActivities") \
                        and self.denied(body, action, params):
                    return
                params["_account"] = account
                if action == "CompleteLifecycleAction":
                    return self.complete(params)
                if action == "RecordLifecycleActionHeartbeat":
                    return self.heartbeat(params)
                if action == "DescribeScalingActivities":
                    return self.activities(params)
                del params["_account"]
                self.forward(body, action, params)

            def control(self, path, spec):
                if path == "/_fake/lifecycle-actions":
                    action = {
                        "EC2InstanceId": spec["EC2InstanceId"],
                        "AutoScalingGroupName": spec["AutoScalingGroupName"],
                        "LifecycleHookName": spec["LifecycleHookName"],
                        "LifecycleTransition": spec.get("LifecycleTransition", "autoscaling:EC2_INSTANCE_TERMINATING"),
                        "LifecycleActionToken": spec.get("LifecycleActionToken") or str(uuid.uuid4()),
                        "StartTime": spec.get("StartTime", time.time()),
                        "Heartbeats": 0,
                        # The account whose group it is: only that account's calls see it.
                        "Account": spec.get("Account", "123456789012"),
                    }
                    if spec.get("LifecycleState"):
                        action["LifecycleState"] = spec["LifecycleState"]
                    with fake.lock:
                        fake.pending[action["EC2InstanceId"]] = action
                    return self.reply_json(200, action)
                if path == "/_fake/ecs/task-stopped":
                    return self.reply_json(200, ecs_task_stopped(spec))
                if path == "/_fake/fail":
                    with fake.lock:
                        q = fake.failures.setdefault(spec["action"], [])
                        for _ in range(int(spec.get("count", 1))):
                            q.append((int(spec.get("status", 400)), spec.get("code", "Throttling"), spec.get("message", "Rate exceeded")))
                    return self.reply_json(200, {"ok": True})
                if path == "/_fake/reset":
                    with fake.lock:
                        fake.calls.clear(); fake.pending.clear(); fake.done.clear(); fake.failures.clear()
                    return self.reply_json(200, {"ok": True})
                self.reply(404, "not found")

            def denied(self, body, action, params):
                """The actions the fake answers itself, authorised by moto's IAM as moto authorises
                its own when a test turns authorization on (`/moto-api/reset-auth`)."""
                from moto import settings
                from moto.core.authorization import ActionAuthenticatorMixin
                from moto.iam.access_control import IAMRequest
                from werkzeug.datastructures import Headers
                from werkzeug.exceptions import HTTPException

                if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
                    return False
                try:
                    request = IAMRequest(account_id=caller_account(self.headers), method="POST", path=self.path, data=params,
                                         body=body, headers=Headers(list(self.headers.items())), action=action)
                    request.check_action_permitted("*")
                except HTTPException as e:
                    self.reply(e.code, e.description, "text/xml")
                    return True
                return False

            def xml(self, action, result_inner=""):
                body = (f'<{action}Response xmlns="{ASG_NS}"><{action}Result>{result_inner}</{action}Result>'
                        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>")
                self.reply(200, body, "text/xml")

            def error(self, status, code, message):
                body = (f'<ErrorResponse xmlns="{ASG_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
                        f"<Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
                self.reply(status, body, "text/xml")

            def find(self, params):
                iid, token = params.get("InstanceId"), params.get("LifecycleActionToken")
                if not iid and not token:
                    return None, "Either InstanceId or LifecycleActionToken must be specified"
                with fake.lock:
                    for a in fake.pending.values():
                        if ((iid and a["EC2InstanceId"] == iid) or (token and a["LifecycleActionToken"] == token)) \
                                and a["Account"] == params.get("_account") \
                                and a["AutoScalingGroupName"] == params.get("AutoScalingGroupName") \
                                and a["LifecycleHookName"] == params.get("LifecycleHookName"):
                            return a, None
                what = f"instance ID {iid}" if iid else f"token {token}"
                return None, f"No active Lifecycle Action found with {what}"

            def complete(self, params):
                result = params.get("LifecycleActionResult")
                if result not in ("CONTINUE", "ABANDON"):
                    return self.error(400, "ValidationError", "LifecycleActionResult must be CONTINUE or ABANDON")
                action, err = self.find(params)
                if err:
                    return self.error(400, "ValidationError", err)
                with fake.lock:
                    fake.pending.pop(action["EC2InstanceId"], None)
                    fake.done.append(dict(action, Result=result, CompletedAt=time.time()))
                self.xml("CompleteLifecycleAction")

            def activities(self, params):
                # moto records no activity for lifecycle actions it never runs: the fake answers with
                # the activity Auto Scaling starts for each action (newest first, paginated), whose
                # start time is when the termination or launch began.
                group = params.get("AutoScalingGroupName")
                size = int(params.get("MaxRecords") or 100)
                start = int(params.get("NextToken") or 0)
                with fake.lock:
                    acts = [a for a in list(fake.pending.values()) + fake.done
                            if a["AutoScalingGroupName"] == group and a["Account"] == params.get("_account")]
                acts.sort(key=lambda a: -a["StartTime"])
                page, more = acts[start:start + size], start + size < len(acts)
                members = []
                for a in page:
                    launching = a["LifecycleTransition"].endswith("LAUNCHING")
                    what = "Launching a new EC2 instance" if launching else "Terminating EC2 instance"
                    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a["StartTime"]))
                    status = "Successful" if "Result" in a else "InProgress"
                    members.append(
                        f"<member><ActivityId>{uuid.uuid5(uuid.NAMESPACE_OID, a['LifecycleActionToken'])}</ActivityId>"
                        f"<AutoScalingGroupName>{group}</AutoScalingGroupName>"
                        f"<Description>{what}: {a['EC2InstanceId']}</Description>"
                        f"<Cause>At {when} an instance was {'started' if launching else 'taken out of service'}.</Cause>"
                        f"<StartTime>{when}</StartTime><StatusCode>{status}</StatusCode><Progress>50</Progress></member>")
                token = f"<NextToken>{start + size}</NextToken>" if more else ""
                self.xml("DescribeScalingActivities", f"<Activities>{''.join(members)}</Activities>{token}")

            def heartbeat(self, params):
                action, err = self.find(params)
                if err:
                    return self.error(400, "ValidationError", err)
                with fake.lock:
                    action["Heartbeats"] += 1
                    action["LastHeartbeat"] = time.time()
                self.xml("RecordLifecycleActionHeartbeat")

            def forward(self, body, action, params):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(fake.moto_url + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        status, text, ctype = r.status, r.read().decode(), r.headers.get("Content-Type", "text/xml")
                except urllib.error.HTTPError as e:
                    status, text, ctype = e.code, e.read().decode(), e.headers.get("Content-Type", "text/xml")
                if status == 200 and action in ("DescribeAutoScalingInstances", "DescribeAutoScalingGroups"):
                    text = self.rewrite(text, action, params)
                self.reply(status, text, ctype)

            def rewrite(self, text, action, params):
                account = caller_account(self.headers)
                with fake.lock:
                    pending = {i: a for i, a in fake.pending.items() if a["Account"] == account}
                seen = set()

                def fix(m):
                    block = m.group(0)
                    iid = re.search(r"<InstanceId>([^<]+)</InstanceId>", block)
                    if not iid or "<LifecycleState>" not in block:
                        return block
                    seen.add(iid.group(1))
                    a = pending.get(iid.group(1))
                    if not a:
                        return block
                    return re.sub(r"<LifecycleState>[^<]*</LifecycleState>",
                                  f"<LifecycleState>{fake.state_of(a)}</LifecycleState>", block)

                text = re.sub(r"<member>(?:(?!<member>).)*?</member>", fix, text, flags=re.S)
                if action == "DescribeAutoScalingInstances":
                    # Instances asked for by id that moto no longer knows but that have a pending action.
                    asked = [v for k, v in params.items() if k.startswith("InstanceIds.member.")]
                    extra = "".join(
                        f"<member><InstanceId>{i}</InstanceId><AutoScalingGroupName>{pending[i]['AutoScalingGroupName']}"
                        f"</AutoScalingGroupName><AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>"
                        f"{fake.state_of(pending[i])}</LifecycleState><HealthStatus>HEALTHY</HealthStatus>"
                        f"<ProtectedFromScaleIn>false</ProtectedFromScaleIn><InstanceType>t3.medium</InstanceType></member>"
                        for i in asked if i in pending and i not in seen)
                    if extra:
                        if "<AutoScalingInstances/>" in text:
                            text = text.replace("<AutoScalingInstances/>", f"<AutoScalingInstances>{extra}</AutoScalingInstances>")
                        else:
                            text = text.replace("</AutoScalingInstances>", extra + "</AutoScalingInstances>")
                return text
        return H


def caller_account(headers):
    """The account a signed request acts in, as moto decides it: the account of its access key
    (an assumed role's keys act in the role's account)."""
    from moto.iam.models import get_account_id_from

    m = re.search(r"Credential=([^/]+)/", headers.get("Authorization", ""))
    return get_account_id_from(m.group(1)) if m else "123456789012"


class TrustFake:
    """TEST FIXTURE: STS AssumeRole as AWS authorises it. moto lets anyone assume any role, even
    one that does not exist. In front of moto, this refuses AssumeRole (403 AccessDenied, as STS
    answers) unless the role exists in its account and its trust policy allows the caller: an
    Allow statement for sts:AssumeRole whose Principal.AWS names the caller's role ARN, the
    caller's account (`arn:aws:iam::<id>:root` or the bare id), or `*`. Conditions are not
    evaluated. Every other call, and an allowed AssumeRole, goes to moto."""

    def __init__(self, moto_url):
        self.moto_url = moto_url
        self.lock = threading.Lock()
        self.calls = []

    @staticmethod
    def caller(headers):
        from moto.sts.models import sts_backends

        m = re.search(r"Credential=([^/]+)/", headers.get("Authorization", ""))
        akid = m.group(1) if m else ""
        account = caller_account(headers)
        for partitions in list(sts_backends.values()):
            for backend in list(partitions.values()):
                role = backend.get_assumed_role_from_access_key(akid)
                if role is not None:
                    return account, role.role_arn
        return account, f"arn:aws:iam::{account}:user/{akid or 'anonymous'}"

    @staticmethod
    def trusts(role_arn, caller_account_id, caller_arn):
        from moto.iam.models import iam_backends

        parts = role_arn.split(":")
        if len(parts) < 6 or not parts[5].startswith("role/"):
            return False
        account, name = parts[4], parts[5].split("/")[-1]
        try:
            role = iam_backends[account]["aws"].get_role(name)
        except Exception:
            return False
        doc = role.assume_role_policy_document
        doc = json.loads(urllib.parse.unquote(doc)) if isinstance(doc, str) else doc
        statements = doc.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        accepted = {caller_arn, caller_account_id, f"arn:aws:iam::{caller_account_id}:root", "*"}
        for st in statements:
            actions = st.get("Action", [])
            actions = actions if isinstance(actions, list) else [actions]
            principal = st.get("Principal") or {}
            aws = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
            aws = aws if isinstance(aws, list) else [aws]
            if st.get("Effect") == "Allow" and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions) \
                    and accepted.intersection(aws):
                return True
        return False

    def handler(fake):
        class H(Handler):
            def do_GET(self):
                if self.path == "/_fake/calls":
                    with fake.lock:
                        return self.reply_json(200, fake.calls)
                self.reply(404, "not found")

            def do_POST(self):
                body = self.body()
                params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
                action = params.get("Action", "")
                account, caller = fake.caller(self.headers)
                role = params.get("RoleArn", "")
                with fake.lock:
                    fake.calls.append({"action": action, "role": role, "session": params.get("RoleSessionName"),
                                       "caller": caller, "time": time.time()})
                if action == "AssumeRole" and not fake.trusts(role, account, caller):
                    message = f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role}"
                    body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                            f"<Code>AccessDenied</Code><Message>{message}</Message></Error>"
                            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
                    return self.reply(403, body, "text/xml")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(fake.moto_url + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        status, text, ctype = r.status, r.read(), r.headers.get("Content-Type", "text/xml")
                except urllib.error.HTTPError as e:
                    status, text, ctype = e.code, e.read(), e.headers.get("Content-Type", "text/xml")
                self.reply(status, text, ctype)
        return H


def ecs_task_stopped(spec):
    """TEST FIXTURE: what the ECS agent reports when a task's containers exit (moto has no agent and
    no SubmitTaskStateChange): stop the task in moto's in-process backend with a stop code, a
    stopped reason and each container's exit code and reason, as DescribeTasks then shows them."""
    from moto.ecs.models import ecs_backends
    from moto.core.utils import utcnow

    backend = ecs_backends[spec.get("account", "123456789012")][spec.get("region", "us-east-1")]
    cluster = spec["cluster"].split("/")[-1]
    task = next((t for arn, t in backend.tasks.get(cluster, {}).items() if arn.endswith(spec["task"].split("/")[-1])), None)
    if task is None:
        return {"error": "no such task"}
    backend.stop_task(cluster, task.task_arn, spec.get("stoppedReason", ""))
    task.stop_code = spec.get("stopCode")
    task.stopped_at = utcnow()
    exits = {c["name"]: c for c in spec.get("containers", [])}
    for c in task.containers:
        e = exits.get(c.name)
        c.last_status = "STOPPED"
        if e:
            c.exit_code = c.exitCode = e.get("exitCode")
            c.reason = e.get("reason")
    return {"task": task.task_arn, "stopCode": task.stop_code}


# ---------------------------------------------------------------- serve


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"moto did not answer at {url} within {timeout}s")


def patch_moto():
    """Compatibility patches for moto bugs that break the real AWS SDK clients, each an exact
    correction towards what AWS sends (never new behaviour)."""
    from moto.ecs import models as ecs_models

    # moto returns a task's container `cpu`/`memory` as JSON numbers; the ECS API has strings,
    # and the Rust SDK rejects the whole DescribeTasks response ("expected string").
    original = ecs_models.Container.__init__

    def container_init(self, task_def):
        original(self, task_def)
        for attr in ("cpu", "memory"):
            value = getattr(self, attr, None)
            if value is not None and not isinstance(value, str):
                setattr(self, attr, str(value))

    ecs_models.Container.__init__ = container_init

    # moto answers a service without awsvpc networking with `"networkConfiguration": {}`; AWS
    # omits it, and the Terraform AWS provider crashes on the empty object (applying an example
    # with a bridge-mode service).
    original_service = ecs_models.Service.__init__

    def service_init(self, *args, **kwargs):
        original_service(self, *args, **kwargs)
        if not self.network_configuration:
            self.network_configuration = None

    ecs_models.Service.__init__ = service_init

    # moto drops a lifecycle hook's NotificationMetadata; AWS keeps it and DescribeLifecycleHooks
    # returns it (asg-lifecycle reads the ECS cluster a launch must join from it).
    from moto.autoscaling import responses as asg_responses

    original_put = asg_responses.AutoScalingResponse.put_lifecycle_hook

    def put_lifecycle_hook(self):
        result = original_put(self)
        metadata = self._get_param("NotificationMetadata")
        key = f"{self._get_param('AutoScalingGroupName')}_{self._get_param('LifecycleHookName')}"
        hook = self.autoscaling_backend.lifecycle_hooks.get(key)
        if hook is not None and metadata is not None:
            hook.notification_metadata = metadata
        return result

    asg_responses.AutoScalingResponse.put_lifecycle_hook = put_lifecycle_hook

    # DynamoDB applies a conditional write atomically; moto's threaded server checks the
    # condition and writes in two steps, so two concurrent conditional puts can both succeed
    # (seen under load: two invocations both claimed one message). One lock per backend call
    # restores AWS's atomicity.
    import functools
    import threading
    from moto.dynamodb import models as ddb_models

    ddb_lock = threading.RLock()

    def atomic(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            with ddb_lock:
                return method(*args, **kwargs)
        return wrapper

    for name in ("put_item", "update_item", "delete_item", "get_item", "transact_write_items"):
        if hasattr(ddb_models.DynamoDBBackend, name):
            setattr(ddb_models.DynamoDBBackend, name, atomic(getattr(ddb_models.DynamoDBBackend, name)))

    # ECS custom attributes (fleetguard's drain mark). AWS deletes a custom attribute by name and
    # target, with no value ("don't specify the value"); moto deletes only when a value is given
    # and equal. And moto's ListAttributes with an attribute name and no value filters on a value
    # of None, so it finds nothing; AWS lists every value of that name.
    original_delete = ecs_models.EC2ContainerServiceBackend._delete_attribute

    def _delete_attribute(self, cluster_name, name, value=None, target_id=None, target_type=None):
        if value is None and target_id is not None:
            short = target_id.rsplit("/", 1)[-1]
            instance = self.container_instances.get(cluster_name, {}).get(short)
            if instance is not None and name in instance.attributes:
                value = instance.attributes[name]
        return original_delete(self, cluster_name, name, value, target_id, target_type)

    ecs_models.EC2ContainerServiceBackend._delete_attribute = _delete_attribute

    original_list = ecs_models.EC2ContainerServiceBackend.list_attributes

    def list_attributes(self, target_type, cluster_name=None, attr_name=None, attr_value=None):
        if cluster_name:
            cluster_name = cluster_name.rsplit("/", 1)[-1]  # AWS takes a name or an ARN
        found = original_list(self, target_type, cluster_name, None, None)
        return [a for a in found if (not attr_name or a[2] == attr_name)
                and (attr_value is None or a[3] == attr_value)]

    ecs_models.EC2ContainerServiceBackend.list_attributes = list_attributes

    # IAM authorization (off unless a test turns it on): moto evaluates most services' calls
    # against the resource "*" (it does not know the resource ARN) and treats a condition key the
    # request does not carry as unmet, so every statement scoped to resources or conditions would
    # deny. When moto knows neither, it decides by the action alone: the enforcement test then
    # proves every call's action is granted, and the static IAM test (iam-simulate) checks the
    # resources and condition keys.
    from moto.iam import access_control

    original_permitted = access_control.IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
        statement = self._statement
        if resource == "*" and not incoming_condition_values and statement.get("Resource") \
                and "Principal" not in statement:
            relaxed = {k: v for k, v in statement.items() if k != "Condition"}
            relaxed["Resource"] = "*"
            return original_permitted(access_control.IAMPolicyStatement(relaxed), action, resource,
                                      principal, incoming_condition_values)
        return original_permitted(self, action, resource, principal, incoming_condition_values)

    access_control.IAMPolicyStatement.is_action_permitted = is_action_permitted

    # The caller is still known by its access key (an unknown one is refused), but its signature is
    # not checked: moto recomputes it from the body as it re-encoded it, which differs from what
    # the Rust SDK signed for an SNS message with non-ASCII text, and from what reached the
    # lifecycle fake.
    access_control.IAMRequestBase.check_signature = lambda self: None


def serve(args):
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise SystemExit("moto is not installed: run scripts/ensure-tools.sh (pip install 'moto[server]')")
    patch_moto()
    # AWS managed policies exist in every account; moto loads them only when asked (Terraform
    # examples attach e.g. AmazonECSTaskExecutionRolePolicy).
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address=HOST, port=moto_port, verbose=False)
    moto.start()
    moto_url = f"http://{HOST}:{moto_port}"
    wait_http(moto_url)

    servers = []
    sink = SlackSink()
    fake = LifecycleFake(moto_url)
    trust = TrustFake(moto_url)
    for h in (sink.handler(), fake.handler(), trust.handler()):
        srv = ThreadingHTTPServer((HOST, 0), h)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    info = {
        "moto": moto_url,
        "slack": f"http://{HOST}:{servers[0].server_address[1]}",
        "autoscaling": f"http://{HOST}:{servers[1].server_address[1]}",
        "sts": f"http://{HOST}:{servers[2].server_address[1]}",
        "pid": os.getpid(),
    }
    if args.state:
        tmp = args.state + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, args.state)
    print(json.dumps(info), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not args.no_stdin:
        # The parent (a test) holds our stdin: when it exits, for whatever reason, we stop too.
        def watch_stdin():
            try:
                while sys.stdin.buffer.read(1):
                    pass
            except Exception:
                pass
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    for s in servers:
        s.shutdown()
    moto.stop()
    if args.state:
        try:
            os.remove(args.state)
        except OSError:
            pass


# ---------------------------------------------------------------- seed


def seed(args):
    import boto3

    kw = dict(endpoint_url=args.moto, region_name=args.region, aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2, asg, ecs = boto3.client("ec2", **kw), boto3.client("autoscaling", **kw), boto3.client("ecs", **kw)
    elbv2, sns, sqs = boto3.client("elbv2", **kw), boto3.client("sns", **kw), boto3.client("sqs", **kw)
    sm = boto3.client("secretsmanager", **kw)

    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    zones = [s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=subnets[:2])["Subnets"]]
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def group(name, lc, size, tag_value, tg=None, cluster=None):
        asg.create_launch_configuration(LaunchConfigurationName=lc, ImageId=image, InstanceType="m5.large")
        extra = {"TargetGroupARNs": [tg]} if tg else {}
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchConfigurationName=lc, MinSize=0, MaxSize=10, DesiredCapacity=size,
            AvailabilityZones=zones, VPCZoneIdentifier=",".join(subnets[:2]),
            Tags=[{"Key": "fleetguard:managed", "Value": tag_value, "PropagateAtLaunch": True, "ResourceId": name,
                   "ResourceType": "auto-scaling-group"}], **extra)
        for hook, transition in (("fleetguard-drain", "autoscaling:EC2_INSTANCE_TERMINATING"),
                                 ("fleetguard-join", "autoscaling:EC2_INSTANCE_LAUNCHING")):
            # The ECS group's hooks name the cluster its instances must join (see docs/functions.md).
            extra_hook = {"NotificationMetadata": json.dumps({"ecs_cluster": cluster})} if cluster else {}
            asg.put_lifecycle_hook(AutoScalingGroupName=name, LifecycleHookName=hook, LifecycleTransition=transition,
                                   HeartbeatTimeout=300, DefaultResult="CONTINUE", **extra_hook)
        g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return sorted(i["InstanceId"] for i in g["Instances"])

    # ECS on EC2: a cluster whose container instances are the ASG's instances, with service tasks.
    cluster = "demo-ecs"
    cluster_arn = ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"]
    ecs_instances = group("demo-ecs-asg", "demo-ecs-lc", 3, "true", cluster=cluster)
    for rev_image in ("checkout-api:2026.11.19-1", "checkout-api:2026.11.20-3"):
        ecs.register_task_definition(family="checkout-api", containerDefinitions=[{
            "name": "app", "image": f"123456789012.dkr.ecr.{args.region}.amazonaws.com/{rev_image}",
            "memory": 512, "cpu": 256, "essential": True,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/checkout-api", "awslogs-region": args.region, "awslogs-stream-prefix": "app"}}}])
    ecs.create_service(cluster=cluster, serviceName="checkout-api", taskDefinition="checkout-api:2", desiredCount=6)
    deployment = ecs.describe_services(cluster=cluster, services=["checkout-api"])["services"][0]["deployments"][0]["id"]
    fleet = []
    for iid in ecs_instances:
        doc = json.dumps({"instanceId": iid, "region": args.region, "availabilityZone": zones[0],
                          "instanceType": "m5.large", "accountId": "123456789012"})
        ci = ecs.register_container_instance(
            cluster=cluster, instanceIdentityDocument=doc,
            totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 2048},
                            {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680}])["containerInstance"]["containerInstanceArn"]
        tasks = ecs.start_task(cluster=cluster, taskDefinition="checkout-api:2", containerInstances=[ci],
                               startedBy=deployment, group="service:checkout-api")["tasks"]
        tasks += ecs.start_task(cluster=cluster, taskDefinition="checkout-api:2", containerInstances=[ci],
                                startedBy=deployment, group="service:checkout-api")["tasks"]
        fleet.append({"instance_id": iid, "container_instance_arn": ci, "tasks": [t["taskArn"] for t in tasks]})

    # Plain EC2 behind a load balancer: a target group with the group's instances registered.
    tg = elbv2.create_target_group(Name="demo-web-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance",
                                   HealthCheckPath="/health")["TargetGroups"][0]["TargetGroupArn"]
    web_instances = group("demo-web-asg", "demo-web-lc", 2, "true", tg)
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": i, "Port": 80} for i in web_instances])
    elbv2.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}])

    # Notifications: an SNS topic read back through an SQS subscriber, and the Slack webhook secret.
    topic = sns.create_topic(Name="fleetguard-notifications")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="fleetguard-notifications-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    webhook = f"{args.slack}/services/T0DEMO000/B0DEMO000/demo-webhook-token"
    secret = sm.create_secret(Name="fleetguard/slack-webhook", SecretString=json.dumps({"url": webhook}))["ARN"]

    # The Web API destinations: a bot token, a PagerDuty routing key (32 characters) and a Teams
    # Workflows webhook, each in its own secret as the Terraform module expects.
    bot = sm.create_secret(Name="fleetguard/slack-bot-token",
                           SecretString="xoxb-000000000000-0000000000000-demoBotTokenValue00")["ARN"]
    pagerduty = sm.create_secret(Name="fleetguard/pagerduty",
                                 SecretString=json.dumps({"routing_key": "R0DEMO0ROUTING0KEY0000000000000A"}))["ARN"]
    teams = sm.create_secret(Name="fleetguard/teams",
                             SecretString=f"{args.slack}/workflows/0d1e2m3o/triggers/manual/paths/invoke?sig=demo-teams-sig")["ARN"]

    out = {
        "region": args.region,
        "cluster": cluster, "cluster_arn": cluster_arn, "service": "checkout-api", "deployment_id": deployment,
        "ecs_auto_scaling_group": "demo-ecs-asg", "ecs_instances": fleet,
        "web_auto_scaling_group": "demo-web-asg", "web_instances": web_instances, "target_group_arn": tg,
        "terminate_hook": "fleetguard-drain", "launch_hook": "fleetguard-join",
        "topic_arn": topic, "queue_url": queue_url, "slack_webhook_secret_arn": secret,
        "slack_bot_token_secret_arn": bot, "pagerduty_secret_arn": pagerduty, "teams_secret_arn": teams,
    }
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--state", help="also write the URLs to this JSON file (removed on exit)")
    s.add_argument("--no-stdin", action="store_true", help="do not stop when stdin closes (background use)")
    d = sub.add_parser("seed")
    d.add_argument("--moto", required=True)
    d.add_argument("--slack", required=True)
    d.add_argument("--region", default="us-east-1")
    d.add_argument("--out")
    args = p.parse_args()
    {"serve": serve, "seed": seed}[args.cmd](args)


if __name__ == "__main__":
    main()
