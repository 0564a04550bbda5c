#!/usr/bin/env python3
"""IAM by enforcement: each function's real binary, run with the credentials of the role the
Terraform module created for it and with the environment the module gave it, through its main
paths, against moto with IAM authorization on. Driven by tests/tests/infra.rs after it applied the
module to the seeded demo fleet; prints a JSON report.

moto authorizes by action (scripts/local_aws.py says why); tests/tests/infra.rs's static check
evaluates the resources and condition keys."""

import argparse
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from lambda_harness import (FakeRuntime, boto, fake, health_event, sample,  # noqa: E402
                            scenario_events, seed_failed_deployment, stamp)

FUNCTIONS = ["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout", "instance-maintenance"]
# What a denied or unauthenticated call looks like in a function's error or log.
DENIALS = ("AccessDenied", "not authorized", "InvalidClientTokenId", "UnrecognizedClient")


def moto_api(local, path, data):
    # Not form-encoded: moto reads the raw body.
    req = urllib.request.Request(local["moto"] + path, data=data.encode(), method="POST",
                                 headers={"Content-Type": "text/plain"})
    return urllib.request.urlopen(req).read()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--local", required=True, help="local_aws.py's URLs, JSON")
    p.add_argument("--fleet", required=True, help="the seed's output, JSON file")
    p.add_argument("--bin-dir", required=True, help="where the function binaries are")
    p.add_argument("--prefix", default="fleetguard")
    p.add_argument("--work", required=True, help="a directory for the functions' logs")
    args = p.parse_args()
    local = json.loads(args.local)
    fleet = json.loads(Path(args.fleet).read_text())
    work = Path(args.work)

    # Before authorization is on: the events and the state they need, each function's
    # environment as the module set it, and a session of each function's role.
    urllib.request.urlopen(urllib.request.Request(
        local["moto"] + "/moto-api/state-manager/set-transition", method="POST",
        data=json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}).encode())).read()
    seed_failed_deployment(local, fleet)
    events, restore = scenario_events(local, fleet)
    restore()
    lam, sts = boto(local, "lambda"), boto(local, "sts")
    setup = {}
    for f in FUNCTIONS:
        conf = lam.get_function_configuration(FunctionName=f"{args.prefix}-{f}")
        creds = sts.assume_role(RoleArn=conf["Role"], RoleSessionName=f)["Credentials"]
        setup[f] = (conf["Environment"]["Variables"], creds)
    unique = {f: list({json.dumps(e, sort_keys=True): e for e in evs}.values()) for f, evs in events.items()}
    # A rebalance recommendation for an instance not yet draining: a drain with its mark (PutAttributes).
    unique["spot-interruption"].append(stamp(sample("spot/rebalance-recommendation.json"),
                                             **{"instance-id": fleet["ecs_instances"][2]["instance_id"]}))
    # A retirement ten minutes ahead of web instance 0: drained and replaced in its group
    # (TerminateInstanceInAutoScalingGroup), last, since the instance is gone after it.
    web0 = fleet["web_instances"][0]
    unique["instance-maintenance"].append(health_event("maintenance/health-retirement.json", web0, 600))
    # The harness's own key while authorization is on (moto then refuses "testing").
    iam = boto(local, "iam")
    iam.create_user(UserName="harness")
    iam.put_user_policy(UserName="harness", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="harness")["AccessKey"]

    def harness_ecs():
        import boto3
        return boto3.client("ecs", endpoint_url=local["moto"], region_name="us-east-1",
                            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])

    def tasks_stop(ci):
        """What the drain waits for: the tasks on the scale-in's container instance stop."""
        ecs = harness_ecs()
        for t in ecs.list_tasks(cluster=fleet["cluster"], containerInstance=ci["container_instance_arn"])["taskArns"]:
            ecs.stop_task(cluster=fleet["cluster"], task=t, reason="drained")

    # After its events, asg-lifecycle's drain finishes: the tasks stop, and the sweep completes the
    # lifecycle action.
    sweep = next(e for e in unique["asg-lifecycle"] if e.get("detail-type") == "Scheduled Event")
    then = {"asg-lifecycle": (lambda: tasks_stop(fleet["ecs_instances"][1]), [sweep])}

    report = {"functions": {}}
    moto_api(local, "/moto-api/reset-auth", "0")
    try:
        # Authorization is really on: a role is refused what its policy does not grant.
        import boto3
        env, creds = setup["alarm-fanout"]
        try:
            boto3.client("ecs", endpoint_url=local["moto"], region_name="us-east-1",
                         aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"]).list_clusters()
            report["control"] = "allowed"
        except Exception as e:  # botocore's ClientError
            report["control"] = type(e).__name__ + ": " + str(e)

        for f in FUNCTIONS:
            env, creds = setup[f]
            env = dict(env, PATH=os.environ["PATH"], HOME=os.environ.get("HOME", "/tmp"),
                       AWS_ENDPOINT_URL=local["moto"], AWS_ENDPOINT_URL_AUTO_SCALING=local["autoscaling"],
                       AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                       AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                       AWS_SESSION_TOKEN=creds["SessionToken"],
                       AWS_LAMBDA_FUNCTION_NAME=f"{args.prefix}-{f}", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                       AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128")
            rt = FakeRuntime()
            env["AWS_LAMBDA_RUNTIME_API"] = rt.addr
            log_path = work / f"{f}.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen([str(Path(args.bin_dir) / f)], env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    rt.wait_ready(proc)
                    errors = []
                    step, more = then.get(f, (None, []))
                    for i, e in enumerate(unique[f] + more):
                        if i == len(unique[f]) and step:
                            step()
                        rid = rt.invoke(e)
                        if rid in rt.errors:
                            errors.append({"detail-type": e.get("detail-type"), "error": rt.errors[rid][:400]})
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    rt.close()
            logs = log_path.read_text(errors="replace")
            report["functions"][f] = {
                "invocations": len(unique[f]) + len(then.get(f, (None, []))[1]),
                "errors": errors,
                "denials": [line[:400] for line in logs.splitlines() if any(d in line for d in DENIALS)],
            }
    finally:
        moto_api(local, "/moto-api/reset-auth", "inf")

    # What the main paths did.
    ecs = boto(local, "ecs")
    ci = ecs.describe_container_instances(cluster=fleet["cluster"], containerInstances=[
        i["container_instance_arn"] for i in fleet["ecs_instances"][:3]])["containerInstances"]
    report["container_instances"] = {c["ec2InstanceId"]: c["status"] for c in ci}
    report["drain_marks"] = {c["ec2InstanceId"]: a["value"] for c in ci for a in c.get("attributes", [])
                             if a["name"] == "fleetguard.drained-for"}
    report["lifecycle"] = fake(local, "/_fake/lifecycle-actions")
    asg = boto(local, "autoscaling")
    web = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[fleet["web_auto_scaling_group"]])["AutoScalingGroups"][0]
    report["web_group"] = {"desired": web["DesiredCapacity"], "instances": sorted(i["InstanceId"] for i in web["Instances"])}
    report["targets"] = sorted(t["Target"]["Id"] for t in boto(local, "elbv2").describe_target_health(
        TargetGroupArn=fleet["target_group_arn"])["TargetHealthDescriptions"])
    report["schedules"] = [s["Name"] for s in boto(local, "scheduler").list_schedules()["Schedules"]]
    report["slack_posts"] = len(json.loads(urllib.request.urlopen(local["slack"] + "/_sink/requests").read()))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
