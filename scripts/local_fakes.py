"""The test fixtures of scripts/local_aws.py: what moto lacks, spoken in AWS's own protocols so
the real SDK clients reach them through `AWS_ENDPOINT_URL_<SERVICE>`.

- `LifecycleFake`: Auto Scaling's lifecycle actions (CompleteLifecycleAction,
  RecordLifecycleActionHeartbeat, the wait states, DescribeScalingActivities), per account, in
  front of moto; and the ECS agent's report of how a task's containers exited.
- `TrustFake`: STS AssumeRole refused as AWS refuses it when the role's trust policy does not
  allow the caller, in front of moto (which lets anyone assume anything).
"""

import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler

ASG_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


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
