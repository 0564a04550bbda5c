"""`python bench/hub.py target/release/spot-interruption`: what acting in a member account costs a
hub. spot-interruption's release binary runs as a hub (MEMBER_ACCOUNTS, the hub role's
credentials) under the fake Lambda Runtime API, against moto holding a hub and two members
(scripts/local_org.py), in RUNS (default 10) fresh processes. STS (the trust fake) and AWS are
each behind a counting proxy. Each process serves, in order:

1. a Spot warning in member A: the cold start's first event, which assumes A's role;
2. a second warning in A: its credentials are kept;
3. a warning in the hub's own account: no role;
4. a warning in member B: a warm process's first event in B, which assumes B's role.

Per event: the time from serving the event to the drain call (`UpdateContainerInstancesState`),
the invocation's whole time, and the AssumeRole calls made, with the time from AssumeRole to the
next AWS call (what the drain waited for the credentials). The container instances are set ACTIVE
and the targets registered again between processes. `make bench` runs it after run.py; results
in bench/RESULTS.md ("Hub", a hand-written section)."""
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "bench")]
from run import CountingProxy, run_process  # noqa: E402
import boto3  # noqa: E402

A, B, HUB = "111111111111", "222222222222", "123456789012"
binary = sys.argv[1]
runs = int(os.environ.get("RUNS", 10))

local_proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/local_aws.py"), "serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
local = json.loads(local_proc.stdout.readline())
org = json.loads(subprocess.run([sys.executable, str(ROOT / "scripts/local_org.py"), "seed", "--moto", local["moto"]],
                                check=True, capture_output=True, text=True).stdout)
aws, sts, asg = CountingProxy(local["moto"]), CountingProxy(local["sts"]), CountingProxy(local["autoscaling"])


def clients(account):
    kw = dict(endpoint_url=local["moto"], region_name="us-east-1")
    base = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
    if account == HUB:
        return lambda s: boto3.client(s, **kw, **base)
    c = boto3.client("sts", **kw, **base).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="bench")["Credentials"]
    return lambda s: boto3.client(s, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                  aws_session_token=c["SessionToken"], **kw)


fleets = {HUB: org["hub"], A: org["members"][A], B: org["members"][B]}
admin = {a: clients(a) for a in fleets}


def restore():
    for account, f in fleets.items():
        ecs, elb = admin[account]("ecs"), admin[account]("elbv2")
        ecs.update_container_instances_state(cluster="fleet", containerInstances=[
            i["container_instance_arn"] for i in f["instances"]], status="ACTIVE")
        elb.register_targets(TargetGroupArn=f["target_group_arn"],
                             Targets=[{"Id": i["instance_id"], "Port": 80} for i in f["instances"]])


def warning(account, i):
    iid = fleets[account]["instances"][i]["instance_id"]
    e = json.loads((ROOT / "events/spot/interruption-terminate.json").read_text())
    e.update(time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), region="us-east-1", account=account,
             id=f"bench-{account}-{iid}-{time.time_ns()}", resources=[f"arn:aws:ec2:us-east-1:{account}:instance/{iid}"])
    e["detail"]["instance-id"] = iid
    return e


env = {
    "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
    "AWS_ENDPOINT_URL": aws.url, "AWS_ENDPOINT_URL_STS": sts.url, "AWS_ENDPOINT_URL_AUTO_SCALING": asg.url,
    "AWS_REGION": "us-east-1", **org["hub"]["credentials"],
    "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "MANAGED_ASG_TAG": "fleetguard:managed=true", "MEMBER_ACCOUNTS": f"{A},{B}", "HUB_ACCOUNT_ID": HUB,
}
labels = ["A, cold process (assumes A's role)", "A again (credentials kept)", "hub's own account", "B, warm process (assumes B's role)"]
# Warm moto up (its first call per service is slow), so no process pays for it.
restore()
run_process([binary], env, [warning(A, 0), warning(HUB, 0)], [aws, sts, asg])
per = [[] for _ in labels]
inits = []
for _ in range(runs):
    restore()
    r = run_process([binary], env, [warning(A, 0), warning(A, 1), warning(HUB, 0), warning(B, 0)], [aws, sts, asg])
    inits.append(r["init_ms"])
    for k, inv in enumerate(r["invocations"]):
        calls = inv["calls"]
        drain = next((t for t, op in calls if op == "UpdateContainerInstancesState"), None)
        assume = [k2 for k2, (_, op) in enumerate(calls) if op == "AssumeRole"]
        waited = [(calls[k2 + 1][0] - calls[k2][0]) / 1e6 for k2 in assume if k2 + 1 < len(calls)]
        per[k].append({"to_drain": (drain - inv["start"]) / 1e6 if drain else None, "ms": inv["ms"],
                       "assume": len(assume), "assume_ms": sum(waited) if waited else 0.0, "error": inv["error"]})
local_proc.stdin.close()
local_proc.wait(timeout=30)


def med(xs):
    xs = [x for x in xs if x is not None]
    return f"{statistics.median(xs):.1f} ms ({min(xs):.1f}–{max(xs):.1f})" if xs else "–"


errors = [x["error"] for p in per for x in p if x["error"]]
print(f"cold start (exec → ready): {med(inits)}, {runs} processes")
print("| event | AssumeRole calls | AssumeRole → next call | event served → drain call | invocation |")
print("|---|---|---|---|---|")
for label, p in zip(labels, per):
    print(f"| {label} | {statistics.median(x['assume'] for x in p):.0f} | {med([x['assume_ms'] for x in p if x['assume']])} "
          f"| {med([x['to_drain'] for x in p])} | {med([x['ms'] for x in p])} |")
cold = [i + x["to_drain"] for i, x in zip(inits, per[0]) if x["to_drain"] is not None]
print(f"\nA member's Spot warning on a cold start, exec → drain call issued: {med(cold)}; "
      f"of the warning's 120 s, {120 - max(cold) / 1000:.1f} s are left at the slowest run "
      "(before Lambda's own cold start and EventBridge's cross-account delivery, which are not measured here)")
if errors:
    print("ERRORS:", json.dumps(errors)[:2000])
    sys.exit(1)
