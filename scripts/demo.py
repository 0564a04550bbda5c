#!/usr/bin/env python3
"""`make demo`: every fleetguard function, invoked locally with its sample events, against a local AWS.

Starts moto + the web sink (Slack webhooks and Web API, PagerDuty, Teams) + the Auto Scaling lifecycle fake (scripts/local_aws.py), seeds the demo
fleet, runs `cargo lambda watch` with the functions pointed at that local AWS, invokes each function
with `cargo lambda invoke --data-file` for every sample event that feeds it, prints what happened, and
stops everything it started (also on Ctrl-C or failure).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout", "instance-maintenance"]
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() else ("",) * 5


def say(msg=""):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"cargo lambda watch exited early (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"cargo lambda watch did not listen on port {port} within {timeout}s")


def sample_events():
    manifest = json.loads((ROOT / "events/manifest.json").read_text())
    per_function = {f: [] for f in FUNCTIONS}
    for name, spec in sorted(manifest.items()):
        for f in spec.get("functions", []):
            per_function[f].append((name, spec))
    return per_function


def main():
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    if not shutil.which("cargo-lambda", path=env["PATH"]):
        raise SystemExit("cargo-lambda not found: run scripts/ensure-tools.sh --demo")

    work = Path(tempfile.mkdtemp(prefix="fleetguard-demo-"))
    procs = []

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        say(f"{BOLD}1. Local AWS{RESET} (moto server, Slack sink, Auto Scaling lifecycle fake) on 127.0.0.1")
        local = subprocess.Popen([sys.executable, str(ROOT / "scripts/local_aws.py"), "serve"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append((local, False))
        info = json.loads(local.stdout.readline() or "{}")
        if "moto" not in info:
            raise SystemExit("local AWS did not start")
        say(f"   moto {info['moto']}   slack sink {info['slack']}   auto scaling (fake) {info['autoscaling']}   "
            f"sts (trust fake) {info['sts']}")

        say(f"{BOLD}2. Seed the demo fleet{RESET}")
        fleet = json.loads(subprocess.run(
            [sys.executable, str(ROOT / "scripts/local_aws.py"), "seed", "--moto", info["moto"], "--slack", info["slack"]],
            check=True, capture_output=True, text=True).stdout)
        say(f"   ECS cluster {fleet['cluster']}: {len(fleet['ecs_instances'])} container instances "
            f"({', '.join(i['instance_id'] for i in fleet['ecs_instances'])}), "
            f"{sum(len(i['tasks']) for i in fleet['ecs_instances'])} {fleet['service']} tasks")
        say(f"   Auto Scaling groups {fleet['ecs_auto_scaling_group']} and {fleet['web_auto_scaling_group']}, "
            f"hooks {fleet['terminate_hook']} (terminate) and {fleet['launch_hook']} (launch)")
        say(f"   target group demo-web-tg: {', '.join(fleet['web_instances'])}")
        say(f"   SNS topic {fleet['topic_arn']} -> SQS; Slack webhook in {fleet['slack_webhook_secret_arn']}")

        # Incidents: the dedupe table keeps which Slack message and PagerDuty alert each incident has.
        import boto3
        boto3.client("dynamodb", endpoint_url=info["moto"], region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_table(
            TableName="fleetguard-dedupe", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        routes = json.dumps([{
            "name": "alarms-page-and-teams", "match": {"kinds": ["alarm"]}, "default_destinations": True,
            "pagerduty_routing_key_secret_arns": [fleet["pagerduty_secret_arn"]],
            "teams_webhook_secret_arns": [fleet["teams_secret_arn"]],
            "mention": "<!here>", "mention_severities": ["critical", "high"]}])
        say(f"   Slack bot token in {fleet['slack_bot_token_secret_arn']} (Web API, #fleet-ops); PagerDuty and "
            f"Teams for alarms (NOTIFY_ROUTES); dedupe table fleetguard-dedupe")

        env_file = work / "lambda.env"
        # Values are quoted: the dotenv parser rejects a bare `=` inside a value; JSON (with its
        # double quotes) goes in single quotes, which dotenv takes literally.
        def quoted(line):
            k, v = line.split("=", 1)
            return f"{k}='{v}'" if '"' in v else f'{k}="{v}"'
        env_file.write_text("\n".join(quoted(line) for line in [
            f"AWS_ENDPOINT_URL={info['moto']}",
            f"AWS_ENDPOINT_URL_AUTO_SCALING={info['autoscaling']}",
            "AWS_REGION=us-east-1",
            "AWS_ACCESS_KEY_ID=testing",
            "AWS_SECRET_ACCESS_KEY=testing",
            "RUST_LOG=info,fleetguard=debug",
            "MANAGED_ASG_TAG=fleetguard:managed=true",
            f"SNS_TOPIC_ARN={fleet['topic_arn']}",
            f"SLACK_WEBHOOK_SECRET_ARN={fleet['slack_webhook_secret_arn']}",
            f"SLACK_BOT_TOKEN_SECRET_ARN={fleet['slack_bot_token_secret_arn']}",
            "SLACK_CHANNEL=#fleet-ops",
            f"SLACK_API_URL={info['slack']}/api/",
            f"PAGERDUTY_EVENTS_URL={info['slack']}/v2/enqueue",
            f"NOTIFY_ROUTES={routes}",
            "DEDUPE_TABLE=fleetguard-dedupe",
            # instance-maintenance's one-time schedules: moto's EventBridge Scheduler keeps them (it
            # never fires them; the demo invokes a schedule's payload itself).
            "SCHEDULER_ROLE_ARN=arn:aws:iam::123456789012:role/fleetguard-scheduler-us-east-1",
            "SCHEDULE_TARGET_ARN=arn:aws:lambda:us-east-1:123456789012:function:instance-maintenance",
        ]) + "\n")
        sqs = boto3.client("sqs", endpoint_url=info["moto"], region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        seen_slack = [0]

        def slack_since():
            import urllib.request
            posts = json.loads(urllib.request.urlopen(info["slack"] + "/_sink/requests").read())
            new = posts[seen_slack[0]:]
            seen_slack[0] = len(posts)
            return new

        def sns_since():
            out = []
            while True:
                got = sqs.receive_message(QueueUrl=fleet["queue_url"], MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    return out
                for m in got:
                    out.append(json.loads(m["Body"]))
                    sqs.delete_message(QueueUrl=fleet["queue_url"], ReceiptHandle=m["ReceiptHandle"])

        def show_deliveries(first_full):
            for post in slack_since():
                body = json.loads(post["body"])
                path = post["path"]
                if path.startswith("/api/"):
                    method = path[len("/api/"):]
                    if body.get("thread_ts"):
                        say(f"       {DIM}slack api{RESET} {method} reply in thread {body['thread_ts']}: {body.get('text', '')[:90]}")
                    elif method == "chat.update":
                        say(f"       {DIM}slack api{RESET} chat.update {body['channel']} ts {body['ts']} → "
                            f"{body['attachments'][0]['color']} {body['attachments'][0]['blocks'][0]['text']['text'][:70]}")
                    else:
                        say(f"       {DIM}slack api{RESET} {method} {body['channel']}: {body.get('text', '')[:90]}")
                    continue
                if path.startswith("/v2/enqueue"):
                    say(f"       {DIM}pagerduty{RESET} {body['event_action']} dedup_key {body['dedup_key'][:70]}"
                        + (f" severity {body['payload']['severity']}" if "payload" in body else ""))
                    continue
                if path.startswith("/workflows/"):
                    card = body["attachments"][0]["content"]
                    say(f"       {DIM}teams{RESET} Adaptive Card: {card['body'][0]['text'][:90]}")
                    continue
                att = body["attachments"][0]
                header = next((b["text"]["text"] for b in att["blocks"] if b["type"] == "header"), "")
                fields = [f["text"].replace("\n", ": ", 1) for b in att["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
                say(f"       {DIM}slack{RESET} {att['color']} {header}  ({post['headers'].get('content-type')}, {len(att['blocks'])} blocks)")
                for f in fields[:4]:
                    say(f"       {DIM}      {f[:110]}{RESET}")
                if first_full:
                    say(f"{DIM}" + "\n".join("         " + l for l in json.dumps(body, indent=2, ensure_ascii=False).splitlines()[:60]) + f"{RESET}")
            for msg in sns_since():
                attrs = " ".join(f"{k}={v['Value']}" for k, v in sorted(msg.get("MessageAttributes", {}).items()))
                say(f"       {DIM}sns  {RESET} subject {msg.get('Subject')!r}  attributes {attrs}")
        shown_full = [False]
        port = free_port()
        log = open(work / "watch.log", "w")
        say(f"{BOLD}3. cargo lambda watch{RESET} on 127.0.0.1:{port} (function logs: {work / 'watch.log'})")
        watch = subprocess.Popen(
            ["cargo", "lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", str(port), "--env-file", str(env_file)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append((watch, True))
        wait_port(port, watch, 120)

        say(f"{BOLD}4. Invoke every function with its sample events{RESET}")
        failures = 0
        for function, events in sample_events().items():
            say(f"\n   {BOLD}{function}{RESET} {DIM}(the first invoke builds it; a cold debug build takes a few minutes){RESET}")
            for name, spec in events:
                started = time.time()
                r = subprocess.run(
                    ["cargo", "lambda", "invoke", function, "--data-file", str(ROOT / "events" / name),
                     "-A", "127.0.0.1", "-P", str(port), "--output-format", "json"],
                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
                ms = (time.time() - started) * 1000
                if r.returncode != 0:
                    failures += 1
                    err = [l for l in (r.stdout + r.stderr).strip().splitlines() if l.strip()]
                    say(f"   {RED}✗{RESET} {name}: {err[0] if err else 'failed'}")
                    show_deliveries(first_full=False)
                    continue
                try:
                    out = json.loads(r.stdout)
                except json.JSONDecodeError:
                    out = {"outcome": r.stdout.strip()}
                say(f"   {GREEN}✓{RESET} {name:<42} {out.get('kind', '?'):<30} {out.get('outcome', '?'):<10} "
                    f"{out.get('subject', '')[:60]} {DIM}{ms:.0f} ms{RESET}")
                show_deliveries(first_full=function == "alarm-fanout" and not shown_full[0] and out.get("outcome") == "notified")
                shown_full[0] = shown_full[0] or (function == "alarm-fanout" and out.get("outcome") == "notified")
        say(f"\n   {BOLD}bad input{RESET} {DIM}(a clear error, so Lambda retries and the on-failure destination keeps it){RESET}")
        for name in ("invalid/missing-instance-id.json", "invalid/bad-lifecycle-token.json", "invalid/sns-two-records.json"):
            function = "asg-lifecycle" if "lifecycle" in name else "spot-interruption"
            r = subprocess.run(
                ["cargo", "lambda", "invoke", function, "--data-file", str(ROOT / "events" / name),
                 "-A", "127.0.0.1", "-P", str(port), "--output-format", "json"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            text = (r.stdout + r.stderr).strip()
            if r.returncode == 0:
                failures += 1
                say(f"   {RED}✗{RESET} {name}: accepted, expected an error")
                continue
            message = next((l for l in text.splitlines() if "invalid event" in l or "unrecognised" in l), text.splitlines()[-1] if text else "")
            say(f"   {GREEN}✓{RESET} {name:<42} rejected: {message.strip()[:110]}")
        say()
        say(f"{BOLD}5. Scenarios against the seeded fleet{RESET} {DIM}(sample events re-addressed to seeded instances, stamped now){RESET}")
        kw = dict(endpoint_url=info["moto"], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
        ecs, elbv2 = boto3.client("ecs", **kw), boto3.client("elbv2", **kw)

        def invoke(function, payload):
            path = work / f"event-{time.time_ns()}.json"
            path.write_text(json.dumps(payload))
            r = subprocess.run(
                ["cargo", "lambda", "invoke", function, "--data-file", str(path),
                 "-A", "127.0.0.1", "-P", str(port), "--output-format", "json"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                err = [l for l in (r.stdout + r.stderr).strip().splitlines() if l.strip()]
                raise SystemExit(f"{function} failed: {err[0] if err else r.returncode}")
            out = json.loads(r.stdout)
            say(f"   {GREEN}✓{RESET} {function}: {out.get('outcome')}")
            for a in out.get("actions", []):
                say(f"       {DIM}{a}{RESET}")
            return out

        def event(name, instance_id):
            e = json.loads((ROOT / "events" / name).read_text())
            e["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            e["region"], e["account"] = "us-east-1", "123456789012"
            e["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"]
            e["detail"]["instance-id"] = instance_id
            return e

        def container_instance_status(arn):
            ci = ecs.describe_container_instances(cluster=fleet["cluster"], containerInstances=[arn])["containerInstances"][0]
            return ci["status"]

        spot_ci = fleet["ecs_instances"][0]
        say(f"\n   {BOLD}Spot warning for ECS instance {spot_ci['instance_id']}{RESET} "
            f"(container instance {container_instance_status(spot_ci['container_instance_arn'])})")
        invoke("spot-interruption", event("spot/interruption-terminate.json", spot_ci["instance_id"]))
        status = container_instance_status(spot_ci["container_instance_arn"])
        say(f"       moto: container instance is now {status}")
        if status != "DRAINING":
            failures += 1
        show_deliveries(first_full=False)
        web = fleet["web_instances"][0]
        before = [t["Target"]["Id"] for t in elbv2.describe_target_health(TargetGroupArn=fleet["target_group_arn"])["TargetHealthDescriptions"]]
        say(f"\n   {BOLD}Spot warning for web instance {web}{RESET} (demo-web-tg targets: {', '.join(before)})")
        invoke("spot-interruption", event("spot/interruption-terminate.json", web))
        after = [t["Target"]["Id"] for t in elbv2.describe_target_health(TargetGroupArn=fleet["target_group_arn"])["TargetHealthDescriptions"]]
        say(f"       moto: demo-web-tg targets are now {', '.join(after) or 'none'}")
        if web in after:
            failures += 1
        show_deliveries(first_full=False)

        import urllib.request

        def fake(path, body=None):
            req = urllib.request.Request(info["autoscaling"] + path, method="POST" if body is not None else "GET",
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"content-type": "application/json"})
            return json.loads(urllib.request.urlopen(req).read())

        def lifecycle(name, instance, group, hook, metadata, action=None):
            e = json.loads((ROOT / "events" / name).read_text())
            e["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            e["region"], e["account"] = "us-east-1", "123456789012"
            e["detail"].update({"EC2InstanceId": instance, "AutoScalingGroupName": group,
                                "LifecycleHookName": hook, "NotificationMetadata": metadata})
            if action:
                # The event carries its action's token (completion is by token).
                e["detail"]["LifecycleActionToken"] = action["LifecycleActionToken"]
            return e

        drain = fleet["ecs_instances"][1]
        iid, ci_arn = drain["instance_id"], drain["container_instance_arn"]
        tasks = ecs.list_tasks(cluster=fleet["cluster"], containerInstance=ci_arn)["taskArns"]
        say(f"\n   {BOLD}Scale-in of ECS instance {iid}{RESET} ({len(tasks)} tasks; Auto Scaling puts it in "
            f"Terminating:Wait: the local lifecycle fake stands in for that)")
        action = fake("/_fake/lifecycle-actions", {"EC2InstanceId": iid, "AutoScalingGroupName": fleet["ecs_auto_scaling_group"],
                                          "LifecycleHookName": fleet["terminate_hook"],
                                          "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"})
        metadata = json.dumps({"ecs_cluster": fleet["cluster"]})
        invoke("asg-lifecycle", lifecycle("asg/terminate-lifecycle-action.json", iid, fleet["ecs_auto_scaling_group"],
                                          fleet["terminate_hook"], metadata, action))
        say(f"       moto: container instance {container_instance_status(ci_arn)}; "
            f"lifecycle actions completed: {len(fake('/_fake/lifecycle-actions')['completed'])}")
        show_deliveries(first_full=False)
        say(f"   {DIM}ECS reschedules the tasks elsewhere and stops them here (moto: StopTask){RESET}")
        for t in tasks:
            ecs.stop_task(cluster=fleet["cluster"], task=t)
        ci_event = json.loads((ROOT / "events/ecs/container-instance-draining.json").read_text())
        ci_event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ci_event["region"], ci_event["account"] = "us-east-1", "123456789012"
        ci_event["resources"] = [ci_arn]
        ci_event["detail"].update({"clusterArn": fleet["cluster_arn"], "containerInstanceArn": ci_arn,
                                   "ec2InstanceId": iid, "runningTasksCount": 0})
        invoke("asg-lifecycle", ci_event)
        done = fake("/_fake/lifecycle-actions")["completed"]
        say(f"       lifecycle action completed: {', '.join(d['EC2InstanceId'] + ' ' + d['Result'] for d in done) or 'none'}")
        if not any(d["EC2InstanceId"] == iid and d["Result"] == "CONTINUE" for d in done):
            failures += 1
        show_deliveries(first_full=False)
        say(f"   {DIM}the same event again (EventBridge delivers at least once){RESET}")
        invoke("asg-lifecycle", ci_event)
        if len(fake("/_fake/lifecycle-actions")["completed"]) != len(done):
            failures += 1

        web = fleet["web_instances"][1]
        say(f"\n   {BOLD}Scale-in of web instance {web}{RESET} (behind demo-web-tg, no ECS)")
        action = fake("/_fake/lifecycle-actions", {"EC2InstanceId": web, "AutoScalingGroupName": fleet["web_auto_scaling_group"],
                                          "LifecycleHookName": fleet["terminate_hook"],
                                          "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"})
        invoke("asg-lifecycle", lifecycle("asg/terminate-lifecycle-action.json", web, fleet["web_auto_scaling_group"],
                                          fleet["terminate_hook"], None, action))
        show_deliveries(first_full=False)

        slow = fleet["ecs_instances"][2]
        say(f"\n   {BOLD}The minute sweep{RESET}: {slow['instance_id']} has been in Terminating:Wait for 2 h "
            f"(its lifecycle event was lost) with tasks still running; MAX_DRAIN_SECONDS is 3600")
        fake("/_fake/lifecycle-actions", {"EC2InstanceId": slow["instance_id"],
                                          "AutoScalingGroupName": fleet["ecs_auto_scaling_group"],
                                          "LifecycleHookName": fleet["terminate_hook"],
                                          "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                                          "StartTime": time.time() - 7200})
        sweep = json.loads((ROOT / "events/asg/scheduled-sweep.json").read_text())
        sweep["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sweep["region"], sweep["account"] = "us-east-1", "123456789012"
        invoke("asg-lifecycle", sweep)
        show_deliveries(first_full=False)

        sched = boto3.client("scheduler", **kw)
        asg = boto3.client("autoscaling", **kw)
        web = fleet["web_instances"][0]

        def group_of(name):
            g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
            return g["DesiredCapacity"], sorted(i["InstanceId"] for i in g["Instances"])

        def rfc2822(seconds):
            return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + seconds))

        # The Spot and scale-in scenarios above took the web instances out: back in, as before them.
        elbv2.register_targets(TargetGroupArn=fleet["target_group_arn"], Targets=[{"Id": i, "Port": 80} for i in fleet["web_instances"]])
        say(f"\n   {BOLD}AWS Health: instance retirement of web instance {web} in three days{RESET} "
            f"{DIM}(demo-web-tg targets registered again after the scenarios above){RESET}")
        health = json.loads((ROOT / "events/maintenance/health-retirement.json").read_text())
        health["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        health["region"], health["account"] = "us-east-1", "123456789012"
        # An event of its own: the sample's ARN was closed by the sample run above, and after the
        # close nothing acts (updates apply in order, per event ARN).
        arn = health["detail"]["eventArn"] + "-demo"
        health["detail"].update({"eventArn": arn, "startTime": rfc2822(3 * 86400), "eventRegion": "us-east-1",
                                 "lastUpdatedTime": rfc2822(0),
                                 "affectedEntities": [{"entityValue": web, "status": "PENDING"}]})
        health["resources"] = [web]
        invoke("instance-maintenance", health)
        show_deliveries(first_full=False)
        listed = sched.list_schedules()["Schedules"]
        say(f"       moto: {len(listed)} schedule(s): " + ", ".join(x["Name"] for x in listed))
        say(f"   {DIM}the same event again (EventBridge delivers at least once){RESET}")
        invoke("instance-maintenance", health)
        if len(sched.list_schedules()["Schedules"]) != 1:
            failures += 1
        show_deliveries(first_full=False)
        if listed:
            got = sched.get_schedule(Name=listed[0]["Name"])
            say(f"   {BOLD}Three days later{RESET}: the schedule {got['ScheduleExpression']} invokes the function "
                f"with its payload (moto keeps schedules but never fires them: the demo does)")
            desired, before = group_of(fleet["web_auto_scaling_group"])
            invoke("instance-maintenance", json.loads(got["Target"]["Input"]))
            desired_after, after = group_of(fleet["web_auto_scaling_group"])
            targets = [t["Target"]["Id"] for t in elbv2.describe_target_health(TargetGroupArn=fleet["target_group_arn"])["TargetHealthDescriptions"]]
            say(f"       moto: {web} {'deregistered' if web not in targets else 'STILL REGISTERED'}; "
                f"group {fleet['web_auto_scaling_group']} desired {desired} → {desired_after}, "
                f"instances {', '.join(before)} → {', '.join(after)}")
            if web in targets or web in after or desired_after != desired:
                failures += 1
            show_deliveries(first_full=False)
        else:
            failures += 1
        stopping_web = fleet["web_instances"][1]
        say(f"\n   {BOLD}Someone stops web instance {stopping_web}{RESET} (outside any hook)")
        stop = json.loads((ROOT / "events/maintenance/instance-stopping.json").read_text())
        stop["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        stop["region"], stop["account"] = "us-east-1", "123456789012"
        stop["detail"]["instance-id"] = stopping_web
        invoke("instance-maintenance", stop)
        targets = [t["Target"]["Id"] for t in elbv2.describe_target_health(TargetGroupArn=fleet["target_group_arn"])["TargetHealthDescriptions"]]
        say(f"       moto: demo-web-tg targets are now {', '.join(targets) or 'none'}")
        if stopping_web in targets:
            failures += 1
        show_deliveries(first_full=False)

        say(f"\n   {BOLD}A failed deployment of {fleet['service']}{RESET}: revision 3 ships a new image whose tasks "
            f"are OOM-killed (exit 137; the exit codes are set by a fixture standing in for the ECS agent)")
        ecs.register_task_definition(family="checkout-api", containerDefinitions=[{
            "name": "app", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout-api:2026.11.21-1",
            "memory": 512, "cpu": 256, "essential": True,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/checkout-api", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app"}}}])
        new_deployment = "ecs-svc/7301958264019283746"
        for _ in range(2):
            t = ecs.start_task(cluster=fleet["cluster"], taskDefinition="checkout-api:3",
                               containerInstances=[fleet["ecs_instances"][2]["container_instance_arn"]],
                               startedBy=new_deployment, group=f"service:{fleet['service']}")["tasks"][0]
            fake("/_fake/ecs/task-stopped", {"cluster": fleet["cluster"], "task": t["taskArn"],
                                             "stopCode": "EssentialContainerExited",
                                             "stoppedReason": "Essential container in task exited",
                                             "containers": [{"name": "app", "exitCode": 137,
                                                             "reason": "OutOfMemoryError: Container killed due to memory usage"}]})
        failed = json.loads((ROOT / "events/ecs/deployment-failed.json").read_text())
        failed["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        failed["region"], failed["account"] = "us-east-1", "123456789012"
        failed["resources"] = [f"arn:aws:ecs:us-east-1:123456789012:service/{fleet['cluster']}/{fleet['service']}"]
        failed["detail"]["deploymentId"] = new_deployment
        out = invoke("ecs-deployment", failed)
        if out.get("outcome") != "notified: deployment-failed":
            failures += 1
        show_deliveries(first_full=True)

        say(f"\n   {BOLD}An alarm fires, then recovers{RESET}: one Slack message updated in place (#fleet-ops, Web API), "
            f"one PagerDuty alert triggered then resolved, one Teams card per phase")
        slack_since()
        alarm_at = time.time() - 300

        def alarm_event(name, at, previous_at):
            e = json.loads((ROOT / "events/alarms" / name).read_text())
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
            if e["detail"].get("previousState"):
                e["detail"]["previousState"]["timestamp"] = time.strftime(
                    "%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(previous_at))
            e["id"] = f"demo-{name}-{int(at)}"
            e["time"] = stamp + "Z"
            e["region"], e["account"] = "us-east-1", "123456789012"
            arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:demo-checkout-latency"
            e["resources"] = [arn]
            e["detail"]["alarmName"] = "demo-checkout-latency"
            e["detail"]["state"]["timestamp"] = stamp + ".000+0000"
            return e
        invoke("alarm-fanout", alarm_event("metric.json", alarm_at, alarm_at - 3600))
        show_deliveries(first_full=False)
        invoke("alarm-fanout", alarm_event("metric-ok.json", alarm_at + 272, alarm_at))
        show_deliveries(first_full=False)
        say(f"   {DIM}the OK again (EventBridge delivers at least once){RESET}")
        invoke("alarm-fanout", alarm_event("metric-ok.json", alarm_at + 272, alarm_at))
        show_deliveries(first_full=False)
        messages = [m for m in json.loads(urllib.request.urlopen(info["slack"] + "/_sink/slack/messages").read())
                    if "demo-checkout-latency" in json.dumps(m["attachments"])]
        alerts = [a for a in json.loads(urllib.request.urlopen(info["slack"] + "/_sink/pagerduty/alerts").read())
                  if "demo-checkout-latency" in a["dedup_key"]]
        say(f"       slack: {len(messages)} message(s) for the incident"
            + (f", updated {messages[0]['updates']} time(s), {len(messages[0]['replies'])} thread reply(ies), "
               f"colour now {messages[0]['attachments'][0]['color']}" if messages else ""))
        say(f"       pagerduty: {len(alerts)} alert(s)" + (f", {alerts[0]['status']} after {', '.join(alerts[0]['events'])}" if alerts else ""))
        if len(messages) != 1 or messages[0]["updates"] != 1 or len(alerts) != 1 or alerts[0]["status"] != "resolved":
            failures += 1
        sys.path.insert(0, str(ROOT / "scripts"))
        import demo_hub
        failures += demo_hub.run(info, fleet, work, env, free_port, wait_port, procs)
        say()
        if failures:
            raise SystemExit(f"{failures} invocation(s) or check(s) failed; see {work / 'watch.log'}")
        say(f"\n{GREEN}demo complete{RESET}")
    except KeyboardInterrupt:
        say("\ninterrupted")
        sys.exit(130)
    finally:
        for p, group in reversed(procs):
            if p.poll() is not None:
                continue
            try:
                # cargo lambda watch runs the functions as children: stop its whole process group.
                os.killpg(p.pid, signal.SIGTERM) if group else p.terminate()
                p.wait(timeout=10)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL) if group else p.kill()
        say(f"{DIM}stopped the local AWS and cargo lambda watch{RESET}")


if __name__ == "__main__":
    main()
