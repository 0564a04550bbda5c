"""`python bench/incidents.py target/release/alarm-fanout`: AWS calls and time per alarm phase for
alarm-fanout with every destination (SNS, Slack webhook, Slack Web API channel, PagerDuty, Teams) and the dedupe table, in 5 fresh
processes against the local AWS behind the counting proxy of bench/run.py (the web sink is not
behind it: only AWS calls are counted). Not part of `make bench`; results in bench/RESULTS.md."""
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
proxy = CountingProxy(local["moto"])
routes = json.dumps([{"name": "all", "default_destinations": True,
                      "pagerduty_routing_key_secret_arns": [fleet["pagerduty_secret_arn"]],
                      "teams_webhook_secret_arns": [fleet["teams_secret_arn"]]}])
binary = sys.argv[1]
results = {"ALARM": [], "OK": [], "OK again": []}
for run in range(5):
    table = f"dedupe-{run}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "AWS_ENDPOINT_URL": proxy.url, "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
           "SNS_TOPIC_ARN": fleet["topic_arn"], "SLACK_WEBHOOK_SECRET_ARN": fleet["slack_webhook_secret_arn"],
           "SLACK_BOT_TOKEN_SECRET_ARN": fleet["slack_bot_token_secret_arn"], "SLACK_CHANNEL": "#fleet-ops",
           "SLACK_API_URL": local["slack"] + "/api/", "PAGERDUTY_EVENTS_URL": local["slack"] + "/v2/enqueue",
           "NOTIFY_ROUTES": routes, "DEDUPE_TABLE": table}
    events = [json.loads((ROOT / "events/alarms" / f).read_text()) for f in ("metric.json", "metric-ok.json", "metric-ok.json")]
    r = run_process([binary], env, events, [proxy])
    for name, inv in zip(results, r["invocations"]):
        ops = {}
        for _, op in inv["calls"]:
            ops[op] = ops.get(op, 0) + 1
        results[name].append((len(inv["calls"]), inv["ms"], ops, inv["error"]))
for name, rs in results.items():
    calls = [c for c, *_ in rs]
    ms = [m for _, m, *_ in rs]
    print(f"{name}: calls median {statistics.median(calls)} ({min(calls)}-{max(calls)}), ms median {statistics.median(ms):.1f} "
          f"(p90 {sorted(ms)[int(0.9*len(ms))-1]:.1f}), ops {rs[0][2]}, errors {[e for *_, e in rs if e]}")
local_proc.stdin.close()
local_proc.terminate()
