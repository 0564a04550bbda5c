"""`python bench/storm.py target/release/alarm-fanout`: an alarm storm through alarm-fanout.

1,000 alarm transitions in 60 seconds (500 alarms open within the first 30 s, and recover within
the next 30) on one route with every destination (SNS, a Slack webhook, a Slack Web API channel,
PagerDuty, Teams) and the dedupe table, served by 10 processes of the release binary at once (a
reserved concurrency of 10), each behind a fake Runtime API with alarm-fanout's 30 s deadline.
AWS is moto behind the counting proxy of bench/run.py; the web destinations are the local sink
with Slack's and PagerDuty's documented rates enforced (a request over them gets a 429).

It reports the messages each destination got, the peak rate per Slack pace (calls in any one
second), the 429s, the transitions lost (SNS must have all 1,000; every invocation must succeed),
DynamoDB calls per transition, and the time from the last transition's dispatch until the Slack
digest shows the storm over. `make bench` runs it on run.py's release binary; results in
bench/RESULTS.md (a hand-written section)."""
import json
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "bench")]
from lambda_harness import FakeRuntime  # noqa: E402
from run import CountingProxy  # noqa: E402
import boto3  # noqa: E402

ALARMS, SPAN, CONCURRENCY, THRESHOLD = 500, 60.0, 10, 10
binary = sys.argv[1]

local_proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/local_aws.py"), "serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
local = json.loads(local_proc.stdout.readline())
fleet = json.loads(subprocess.run([sys.executable, str(ROOT / "scripts/local_aws.py"), "seed", "--moto", local["moto"],
                                   "--slack", local["slack"]], check=True, capture_output=True, text=True).stdout)
kw = dict(endpoint_url=local["moto"], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ddb, sns, sqs = (boto3.client(n, **kw) for n in ("dynamodb", "sns", "sqs"))
ddb.create_table(TableName="dedupe-storm", BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
topic = sns.create_topic(Name="storm")["TopicArn"]
queue_url = sqs.create_queue(QueueName="storm")["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})


def post(path, body):
    req = urllib.request.Request(local["slack"] + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())


def get(path):
    return json.loads(urllib.request.urlopen(local["slack"] + path).read())


post("/_sink/rate", {"slack_per_second": 1, "pagerduty_per_minute": 120})
aws = CountingProxy(local["moto"])
routes = json.dumps([{"name": "az-failure", "default_destinations": True,
                      "pagerduty_routing_key_secret_arns": [fleet["pagerduty_secret_arn"]],
                      "teams_webhook_secret_arns": [fleet["teams_secret_arn"]],
                      "storm": {"sources": THRESHOLD}}])
env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "AWS_ENDPOINT_URL": aws.url, "AWS_REGION": "us-east-1",
       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_LAMBDA_FUNCTION_NAME": "alarm-fanout", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
       "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
       "SNS_TOPIC_ARN": topic, "SLACK_WEBHOOK_SECRET_ARN": fleet["slack_webhook_secret_arn"],
       "SLACK_BOT_TOKEN_SECRET_ARN": fleet["slack_bot_token_secret_arn"], "SLACK_CHANNEL": "#fleet-ops",
       "SLACK_API_URL": local["slack"] + "/api/", "PAGERDUTY_EVENTS_URL": local["slack"] + "/v2/enqueue",
       "NOTIFY_ROUTES": routes, "DEDUPE_TABLE": "dedupe-storm"}

base = json.loads((ROOT / "events/alarms/metric.json").read_text())


def event(i, state, at):
    e = json.loads(json.dumps(base))
    name = f"checkout-az1-{i:03d}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
    e["id"] = f"00000000-0000-4000-8000-{i * 2 + (state == 'OK'):012d}"
    e["time"] = stamp + "Z"
    e["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
    e["detail"]["alarmName"] = name
    e["detail"]["state"]["value"] = state
    e["detail"]["state"]["timestamp"] = stamp + ".000+0000"
    e["detail"]["previousState"]["value"] = "OK" if state == "ALARM" else "ALARM"
    return e


# The schedule: 500 openings over the first half, their recoveries over the second.
t0 = time.time() + 2
plan = [(t0 + SPAN / 2 * i / ALARMS, event(i, "ALARM", int(t0))) for i in range(ALARMS)]
plan += [(t0 + SPAN / 2 + SPAN / 2 * i / ALARMS, event(i, "OK", int(t0 + SPAN / 2))) for i in range(ALARMS)]
due = queue.Queue()
for p in plan:
    due.put(p)
errors, done_at, took, lock = [], [], [], threading.Lock()


def worker():
    rt = FakeRuntime(deadline_s=30)
    proc = subprocess.Popen([binary], env=dict(env, AWS_LAMBDA_RUNTIME_API=rt.addr),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rt.wait_ready(proc)
        while True:
            try:
                at, ev = due.get_nowait()
            except queue.Empty:
                return
            time.sleep(max(0.0, at - time.time()))
            started = time.time()
            rid = rt.invoke(ev)
            with lock:
                done_at.append(time.time())
                took.append(time.time() - started)
                if rid in rt.errors:
                    errors.append(rt.errors[rid][:300])
    finally:
        proc.kill()
        proc.wait()
        rt.close()


workers = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
for w in workers:
    w.start()
for w in workers:
    w.join()
last_dispatch = plan[-1][0]
served_by = max(done_at)

# The time until the digest shows the last transition: the storm over.
shown_at = None
while time.time() < served_by + 120:
    if any("Storm over" in (m.get("text") or "") for m in get("/_sink/slack/messages")):
        shown_at = time.time()
        break
    time.sleep(0.1)

requests = get("/_sink/requests")
by_path = {}
for r in requests:
    key = r["path"].split("/")[1] if not r["path"].startswith("/api/") else r["path"]
    key = {"services": "Slack webhook", "workflows": "Teams", "v2": "PagerDuty"}.get(key, key)
    by_path.setdefault(key, []).append(r)
published = 0
while True:
    got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    if not got:
        break
    published += len(got)
    sqs.delete_message_batch(QueueUrl=queue_url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]}
                                                           for m in got])


def peak(rs):
    times = sorted(r["time"] for r in rs if r["status"] != 429)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


ddb_calls = sum(1 for _, op in aws.calls if op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"))
alerts = get("/_sink/pagerduty/alerts")
messages = get("/_sink/slack/messages")
print(f"| transitions | {2 * ALARMS} in {SPAN:.0f} s, {CONCURRENCY} processes at once, threshold {THRESHOLD} |")
print("|---|---|")
print(f"| served | last transition dispatched at {last_dispatch - t0:.1f} s, all served by {served_by - t0:.1f} s |")
for name in ("/api/chat.postMessage", "/api/chat.update", "Slack webhook", "Teams", "PagerDuty"):
    rs = by_path.get(name, [])
    print(f"| {name} | {sum(1 for r in rs if r['status'] != 429)} calls, peak {peak(rs)} in one second, "
          f"{sum(1 for r in rs if r['status'] == 429)} answered 429 |")
print(f"| Slack messages in the channel | {len(messages)} ({THRESHOLD} of their own before the storm, "
      f"{len(messages) - THRESHOLD} digest) |")
print(f"| PagerDuty alerts | {len(alerts)} ({sum(1 for a in alerts if '|storm|' in a['dedup_key'])} for the storm), "
      f"{sum(1 for a in alerts if a['status'] != 'resolved')} still open |")
print(f"| SNS messages | {published} of {2 * ALARMS} |")
print(f"| transitions lost | {2 * ALARMS - published} (failed invocations: {len(errors)}) |")
print(f"| DynamoDB calls | {ddb_calls}, {ddb_calls / (2 * ALARMS):.1f} per transition |")
# Where the time went: the invocations' durations, and how long moto took to answer.
by_op = {}
for op, secs in aws.answered:
    n, total = by_op.get(op, (0, 0.0))
    by_op[op] = (n + 1, total + secs)
took.sort()
print(f"| invocations | median {took[len(took) // 2] * 1000:.0f} ms, p90 {took[len(took) * 9 // 10] * 1000:.0f} ms, "
      f"max {took[-1] * 1000:.0f} ms; {sum(took):.0f} s in all over {CONCURRENCY} processes |")
print("| AWS calls (moto) | " + ", ".join(
    f"{op} {n} ({total / n * 1000:.0f} ms each)" for op, (n, total) in sorted(by_op.items(), key=lambda kv: -kv[1][1])[:8])
    + f"; {sum(t for _, t in aws.answered):.0f} s answering in all |")
print(f"| digest shows the storm over | "
      + (f"{(shown_at - last_dispatch) * 1000:.0f} ms after the last transition was dispatched |" if shown_at
         else "never (within 120 s) |"))
for a in alerts:
    if a["status"] != "resolved":
        print(f"open: {a['dedup_key']} {a['events']}")
for e in errors[:3]:
    print(f"error: {e}")
local_proc.stdin.close()
local_proc.terminate()
