"""`make demo`, part two: one hub serving two member accounts (and failing a third alone).

Called by scripts/demo.py with the local AWS it started. The same five functions, run by a
second `cargo lambda watch` with a hub's environment: the hub role's credentials, its members
(MEMBER_ACCOUNTS), their names (ACCOUNT_NAMES), and STS through the trust fake, which refuses an
AssumeRole the member role's trust policy does not allow (moto would allow any)."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"
A, B, BROKEN = "111111111111", "222222222222", "333333333333"


def say(msg=""):
    print(msg, flush=True)


def run(info, fleet, work, env, free_port, wait_port, procs):
    """Returns the number of failed checks."""
    import boto3

    failures = 0
    say(f"\n{BOLD}6. Organization-wide: one hub, two member accounts{RESET} "
        f"{DIM}(moto serves every account; assumed-role credentials act in the role's account){RESET}")
    org = json.loads(subprocess.run(
        [sys.executable, str(ROOT / "scripts/local_org.py"), "seed", "--moto", info["moto"]],
        check=True, capture_output=True, text=True).stdout)
    names = {a: m["name"] for a, m in {**org["members"], **org["broken"]}.items()}
    for account, m in {**org["members"], **org["broken"]}.items():
        trust = "trusts the hub's role" if account in org["members"] else "trusts ANOTHER principal"
        say(f"   member {m['name']} ({account}): cluster fleet with {len(m['instances'])} container instances, "
            f"group {m['auto_scaling_group']}, role fleetguard-member ({trust})")
    say(f"   hub {org['hub']['account']}: the functions run as {org['hub']['role_arn']}")

    creds = org["hub"]["credentials"]
    env_file = work / "hub.env"
    lines = [
        f"AWS_ENDPOINT_URL={info['moto']}",
        f"AWS_ENDPOINT_URL_AUTO_SCALING={info['autoscaling']}",
        f"AWS_ENDPOINT_URL_STS={info['sts']}",
        "AWS_REGION=us-east-1",
        *(f"{k}={v}" for k, v in creds.items()),
        "RUST_LOG=info",
        f"MEMBER_ACCOUNTS={A},{B},{BROKEN}",
        f"HUB_ACCOUNT_ID={org['hub']['account']}",
        f"ACCOUNT_NAMES={json.dumps(names)}",
        f"SLACK_WEBHOOK_SECRET_ARN={fleet['slack_webhook_secret_arn']}",
        "DEDUPE_TABLE=fleetguard-dedupe",
        "SCHEDULER_ROLE_ARN=arn:aws:iam::123456789012:role/fleetguard-scheduler-us-east-1",
        "SCHEDULE_TARGET_ARN=arn:aws:lambda:us-east-1:123456789012:function:instance-maintenance",
    ]
    env_file.write_text("\n".join(
        (lambda k, v: f"{k}='{v}'" if '"' in v else f'{k}="{v}"')(*line.split("=", 1)) for line in lines) + "\n")
    port = free_port()
    log = open(work / "hub-watch.log", "w")
    say(f"   cargo lambda watch (the hub) on 127.0.0.1:{port} (logs: {work / 'hub-watch.log'})")
    watch = subprocess.Popen(
        ["cargo", "lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", str(port), "--env-file", str(env_file)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append((watch, True))
    wait_port(port, watch, 120)

    def invoke(function, payload, expect_error=False):
        path = work / f"hub-event-{time.time_ns()}.json"
        path.write_text(json.dumps(payload))
        r = subprocess.run(["cargo", "lambda", "invoke", function, "--data-file", str(path), "-A", "127.0.0.1",
                            "-P", str(port), "--output-format", "json"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        text = (r.stdout + r.stderr).strip()
        if expect_error:
            # cargo lambda frames the error in a box: the text without it.
            flat = " ".join(l.strip(" │╭╰─×") for l in text.splitlines() if l.strip(" │╭╰─×"))
            line = flat[flat.find("cannot act in account"):] if "cannot act in account" in flat else flat[-200:]
            say(f"   {GREEN if r.returncode else RED}{'✓' if r.returncode else '✗'}{RESET} {function}: "
                f"error: {line.strip()[:240]}")
            return r.returncode != 0
        if r.returncode != 0:
            say(f"   {RED}✗{RESET} {function}: {text.splitlines()[0] if text else r.returncode}")
            return False
        out = json.loads(r.stdout)
        say(f"   {GREEN}✓{RESET} {function}: {out.get('outcome')}")
        for a in out.get("actions", []):
            say(f"       {DIM}{a}{RESET}")
        return True

    def clients(account):
        kw = dict(endpoint_url=info["moto"], region_name="us-east-1")
        c = boto3.client("sts", aws_access_key_id="testing", aws_secret_access_key="testing", **kw).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="demo")["Credentials"]
        return lambda s: boto3.client(s, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                      aws_session_token=c["SessionToken"], **kw)

    def status(account, i):
        m = org["members"].get(account) or org["broken"][account]
        return clients(account)("ecs").describe_container_instances(
            cluster="fleet", containerInstances=[m["instances"][i]["container_instance_arn"]])["containerInstances"][0]["status"]

    seen = [len(json.loads(urllib.request.urlopen(info["slack"] + "/_sink/requests").read()))]

    def slack_lines():
        posts = json.loads(urllib.request.urlopen(info["slack"] + "/_sink/requests").read())
        new, seen[0] = posts[seen[0]:], len(posts)
        for p in new:
            if not p["path"].startswith("/services/"):
                continue
            att = json.loads(p["body"])["attachments"][0]
            header = next((b["text"]["text"] for b in att["blocks"] if b["type"] == "header"), "")
            context = next((" · ".join(e["text"] for e in b["elements"]) for b in att["blocks"] if b["type"] == "context"), "")
            say(f"       {DIM}slack{RESET} {header}  {DIM}[{context[:120]}]{RESET}")
            yield header + " " + context

    def now():
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def spot(account, i):
        m = org["members"].get(account) or org["broken"][account]
        iid = m["instances"][i]["instance_id"]
        e = json.loads((ROOT / "events/spot/interruption-terminate.json").read_text())
        e.update(time=now(), region="us-east-1", account=account, id=f"hub-demo-{account}-{iid}",
                 resources=[f"arn:aws:ec2:us-east-1:{account}:instance/{iid}"])
        e["detail"]["instance-id"] = iid
        return e

    say(f"\n   {BOLD}A Spot warning in {names[A]} ({A}){RESET}")
    failures += not invoke("spot-interruption", spot(A, 0))
    a0, b0, hub = status(A, 0), status(B, 0), None
    say(f"       moto: {names[A]}'s container instance {a0}; {names[B]}'s {b0}")
    texts = list(slack_lines())
    if a0 != "DRAINING" or b0 != "ACTIVE" or not any(f"{names[A]} ({A})" in t for t in texts):
        failures += 1

    say(f"\n   {BOLD}A scale-in in {names[B]} ({B}){RESET}: its terminate hook, completed in {names[B]}")
    b1 = org["members"][B]["instances"][1]["instance_id"]
    req = urllib.request.Request(info["autoscaling"] + "/_fake/lifecycle-actions", method="POST", data=json.dumps({
        "EC2InstanceId": b1, "AutoScalingGroupName": "fleet-asg", "LifecycleHookName": "fleetguard-drain",
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "Account": B}).encode(),
        headers={"content-type": "application/json"})
    action = json.loads(urllib.request.urlopen(req).read())
    hook = json.loads((ROOT / "events/asg/terminate-lifecycle-action.json").read_text())
    hook.update(time=now(), region="us-east-1", account=B, resources=[])
    hook["detail"].update({"EC2InstanceId": b1, "AutoScalingGroupName": "fleet-asg", "LifecycleHookName": "fleetguard-drain",
                           "LifecycleActionToken": action["LifecycleActionToken"],
                           "NotificationMetadata": json.dumps({"ecs_cluster": "fleet"})})
    failures += not invoke("asg-lifecycle", hook)
    done = json.loads(urllib.request.urlopen(info["autoscaling"] + "/_fake/lifecycle-actions").read())["completed"]
    mine = [d for d in done if d["EC2InstanceId"] == b1]
    say(f"       lifecycle action completed in account {mine[0]['Account'] if mine else 'none'}")
    list(slack_lines())
    if not mine or mine[0]["Account"] != B:
        failures += 1

    say(f"\n   {BOLD}An alarm in {names[A]}{RESET}: its message names the account")
    alarm = json.loads((ROOT / "events/alarms/metric.json").read_text())
    alarm.update(time=now(), account=A, id="hub-demo-alarm",
                 resources=[f"arn:aws:cloudwatch:eu-west-1:{A}:alarm:checkout-api-cpu-high"])
    failures += not invoke("alarm-fanout", alarm)
    if not any(f"{names[A]} ({A})" in t for t in slack_lines()):
        failures += 1

    say(f"\n   {BOLD}A Spot warning in {names[BROKEN]} ({BROKEN}){RESET}, whose role does not trust the hub")
    failures += not invoke("spot-interruption", spot(BROKEN, 0), expect_error=True)
    if not any("cannot act in account" in t for t in slack_lines()):
        failures += 1
    say(f"   {DIM}and the other members are still served:{RESET}")
    failures += not invoke("spot-interruption", spot(B, 0))
    if status(B, 0) != "DRAINING":
        failures += 1
    list(slack_lines())
    return failures
