"""`python bench/incidents.py target/release/alarm-fanout`: AWS calls and destination calls per alarm
transition for alarm-fanout with every destination (SNS, a Slack webhook, a Slack Web API channel,
PagerDuty, Teams) and the dedupe table, in 5 fresh processes. AWS calls go through the counting
proxy of bench/run.py; the web destinations through a second one in front of the local sink (the
webhook secrets are pointed at it), so both are counted per invocation. Each process serves, in
order: an alarm's ALARM (cold: the secrets are read), its OK, the OK again (a duplicate), then a
second alarm's ALARM and OK (warm). `make bench` runs it after run.py, on run.py's release binary;
results in bench/RESULTS.md (a hand-written section)."""
import json
import statistics
import subprocess
import sys
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "bench")]
from run import CountingProxy, run_process  # noqa
import boto3

local_proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/local_aws.py"), "serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
local = json.loads(local_proc.stdout.readline())
fleet = json.loads(subprocess.run([sys.executable, str(ROOT / "scripts/local_aws.py"), "seed", "--moto", local["moto"],
                                   "--slack", local["slack"]], check=True, capture_output=True, text=True).stdout)
kw = dict(endpoint_url=local["moto"], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ddb = boto3.client("dynamodb", **kw)
sm = boto3.client("secretsmanager", **kw)
aws = CountingProxy(local["moto"])
web = CountingProxy(local["slack"])
# The webhooks' secrets point at the sink through the counting proxy.
for arn in (fleet["slack_webhook_secret_arn"], fleet["teams_secret_arn"]):
    value = sm.get_secret_value(SecretId=arn)["SecretString"]
    sm.put_secret_value(SecretId=arn, SecretString=value.replace(local["slack"], web.url))
routes = json.dumps([{"name": "all", "default_destinations": True,
                      "pagerduty_routing_key_secret_arns": [fleet["pagerduty_secret_arn"]],
                      "teams_webhook_secret_arns": [fleet["teams_secret_arn"]]}])
binary = sys.argv[1]


def alarm(file, name):
    e = json.loads((ROOT / "events/alarms" / file).read_text())
    e["detail"]["alarmName"] = name
    e["resources"] = [e["resources"][0].rsplit(":", 1)[0] + ":" + name]
    return e


phases = ["ALARM (cold)", "OK", "OK again (duplicate)", "ALARM (warm)", "OK (warm)"]
events = [alarm("metric.json", "a"), alarm("metric-ok.json", "a"), alarm("metric-ok.json", "a"),
          alarm("metric.json", "b"), alarm("metric-ok.json", "b")]
results = {p: [] for p in phases}
for run in range(5):
    table = f"dedupe-{run}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "AWS_ENDPOINT_URL": aws.url, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
           "SNS_TOPIC_ARN": fleet["topic_arn"], "SLACK_WEBHOOK_SECRET_ARN": fleet["slack_webhook_secret_arn"],
           "SLACK_BOT_TOKEN_SECRET_ARN": fleet["slack_bot_token_secret_arn"], "SLACK_CHANNEL": "#fleet-ops",
           "SLACK_API_URL": web.url + "/api/", "PAGERDUTY_EVENTS_URL": web.url + "/v2/enqueue",
           "NOTIFY_ROUTES": routes, "DEDUPE_TABLE": table}
    r = run_process([binary], env, events, [aws])
    for name, inv in zip(phases, r["invocations"]):
        ops = {}
        for _, op in inv["calls"]:
            ops[op] = ops.get(op, 0) + 1
        dest = {}
        for _, op in web.between(inv["start"], inv["start"] + int(inv["ms"] * 1e6)):
            dest[op] = dest.get(op, 0) + 1
        results[name].append((len(inv["calls"]), inv["ms"], ops, inv["error"], sum(dest.values()), dest))
print("| transition | AWS calls | by operation | destination calls | by call | time |")
print("|---|---|---|---|---|---|")
for name, rs in results.items():
    calls = [c for c, *_ in rs]
    ms = [m for _, m, *_ in rs]
    dcalls = [d for *_, d, _ in rs]
    ops = ", ".join(f"{k} {v}" for k, v in sorted(rs[0][2].items(), key=lambda kv: -kv[1]))
    dops = ", ".join(f"{k.split(' ', 1)[-1]} {v}" for k, v in sorted(rs[0][5].items(), key=lambda kv: -kv[1]))
    errors = [e for _, _, _, e, *_ in rs if e]
    print(f"| {name} | {statistics.median(calls)} ({min(calls)}-{max(calls)}) | {ops} | "
          f"{statistics.median(dcalls)} | {dops} | {statistics.median(ms):.0f} ms |" + (f" errors: {errors}" if errors else ""))
local_proc.stdin.close()
local_proc.terminate()
