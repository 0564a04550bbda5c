#!/usr/bin/env python3
"""IAM of a hub and its members, by enforcement: after tests/tests/infra.rs applied
infra/examples/organization against moto, each hub function's real binary runs with the
credentials of the role the root module created for it and the environment it was given, and
acts in member A through the role infra/modules/member created there, with moto's IAM
authorization on. STS goes through the trust fake (scripts/local_aws.py), which refuses an
AssumeRole the member role's trust policy does not allow; moto then checks the hub role's
sts:AssumeRole grant, and every call in the member against the member role's policy. Prints a
JSON report.

Events (Region eu-west-1, account A): a Spot warning for A's instance 0; a scale-in's terminate
lifecycle action for A's instance 1, then A's forwarded minute schedule (the sweep); a failed
deployment of A's service; an alarm of A."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from lambda_harness import FakeRuntime, fake, sample  # noqa: E402

REGION = "eu-west-1"
HUB = "123456789012"
DENIALS = ("AccessDenied", "not authorized", "InvalidClientTokenId", "UnrecognizedClient")


def moto_api(local, path, data):
    req = urllib.request.Request(local["moto"] + path, data=data.encode(), method="POST",
                                 headers={"Content-Type": "text/plain"})
    return urllib.request.urlopen(req).read()


def clients(local, account=None, creds=None):
    import boto3
    kw = dict(endpoint_url=local["moto"], region_name=REGION)
    if creds is None and account is not None:
        creds = boto3.client("sts", aws_access_key_id="testing", aws_secret_access_key="testing", **kw).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="harness")["Credentials"]
    keys = dict(aws_access_key_id="testing", aws_secret_access_key="testing") if creds is None else dict(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"])
    return lambda name: boto3.client(name, **kw, **keys)


def event(name, account, **fields):
    e = sample(name)
    e.update(fields)
    e["account"], e["region"] = account, REGION
    e["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return e


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--local", required=True, help="local_aws.py's URLs, JSON")
    p.add_argument("--member", required=True, help="member A's account id")
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--work", required=True)
    args = p.parse_args()
    local = json.loads(args.local)
    a = args.member
    work = Path(args.work)

    # Member A's fleet: the example's group scaled out to two instances, each a container
    # instance of `workers`, one with a service's task; its service's failed deployment.
    member = clients(local, a)
    asg, ecs = member("autoscaling"), member("ecs")
    asg.set_desired_capacity(AutoScalingGroupName="workers", DesiredCapacity=2)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["workers"])["AutoScalingGroups"][0]
    instances = sorted(i["InstanceId"] for i in group["Instances"])
    cis = []
    for iid in instances:
        doc = json.dumps({"instanceId": iid, "region": REGION, "availabilityZone": f"{REGION}a",
                          "instanceType": "m6i.large", "accountId": a})
        cis.append(ecs.register_container_instance(cluster="workers", instanceIdentityDocument=doc)
                   ["containerInstance"]["containerInstanceArn"])
    ecs.register_task_definition(family="api", containerDefinitions=[
        {"name": "app", "image": "busybox", "memory": 128, "essential": True}])
    ecs.create_service(cluster="workers", serviceName="api", taskDefinition="api:1", desiredCount=1)
    deployment = ecs.describe_services(cluster="workers", services=["api"])["services"][0]["deployments"][0]["id"]
    ecs.start_task(cluster="workers", taskDefinition="api:1", containerInstances=[cis[0]],
                   startedBy=deployment, group="service:api")
    fake(local, "/_fake/lifecycle-actions", {
        "EC2InstanceId": instances[1], "AutoScalingGroupName": "workers", "LifecycleHookName": "fleetguard-drain",
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "LifecycleActionToken": "5f6e7d8c-0000-4000-8000-00000000a001",
        "Account": a})

    spot = event("spot/interruption-terminate.json", a,
                 resources=[f"arn:aws:ec2:{REGION}:{a}:instance/{instances[0]}"])
    spot["detail"]["instance-id"] = instances[0]
    hook = event("asg/terminate-lifecycle-action.json", a, resources=[])
    hook["detail"] = {"LifecycleActionToken": "5f6e7d8c-0000-4000-8000-00000000a001", "AutoScalingGroupName": "workers",
                      "LifecycleHookName": "fleetguard-drain", "EC2InstanceId": instances[1],
                      "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}
    sweep = event("asg/scheduled-sweep.json", a, resources=[f"arn:aws:events:{REGION}:{a}:rule/fleetguard-to-hub-sweep"])
    failed = event("ecs/deployment-failed.json", a, resources=[f"arn:aws:ecs:{REGION}:{a}:service/workers/api"])
    failed["detail"]["deploymentId"] = deployment
    alarm = event("alarms/metric.json", a, resources=[f"arn:aws:cloudwatch:{REGION}:{a}:alarm:checkout-api-cpu-high"])
    events = {"spot-interruption": [spot], "asg-lifecycle": [hook, sweep], "ecs-deployment": [failed],
              "alarm-fanout": [alarm]}

    hub = clients(local)
    lam, sts = hub("lambda"), hub("sts")
    setup = {}
    for f in events:
        conf = lam.get_function_configuration(FunctionName=f"fleetguard-{f}")
        creds = sts.assume_role(RoleArn=conf["Role"], RoleSessionName=f)["Credentials"]
        setup[f] = (conf["Environment"]["Variables"], creds, conf["Role"])

    report = {"functions": {}}
    moto_api(local, "/moto-api/reset-auth", "0")
    try:
        # Authorization is really on: alarm-fanout's role may not list the hub's clusters. And
        # the trust is the member's: it may not assume the member role (it acts in no member).
        import boto3
        env, creds, _ = setup["alarm-fanout"]
        keys = dict(region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
        for name, call in (
                ("control", lambda: boto3.client("ecs", endpoint_url=local["moto"], **keys).list_clusters()),
                ("control_trust", lambda: boto3.client("sts", endpoint_url=local["sts"], **keys).assume_role(
                    RoleArn=f"arn:aws:iam::{a}:role/fleetguard-member", RoleSessionName="control"))):
            try:
                call()
                report[name] = "allowed"
            except Exception as e:  # botocore's ClientError
                report[name] = type(e).__name__ + ": " + str(e)

        for f, evs in events.items():
            env, creds, _ = setup[f]
            env = dict(env, PATH=os.environ["PATH"], HOME=os.environ.get("HOME", "/tmp"),
                       AWS_ENDPOINT_URL=local["moto"], AWS_ENDPOINT_URL_AUTO_SCALING=local["autoscaling"],
                       AWS_ENDPOINT_URL_STS=local["sts"], AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                       AWS_ACCESS_KEY_ID=creds["AccessKeyId"], AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                       AWS_SESSION_TOKEN=creds["SessionToken"],
                       AWS_LAMBDA_FUNCTION_NAME=f"fleetguard-{f}", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                       AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128")
            rt = FakeRuntime()
            env["AWS_LAMBDA_RUNTIME_API"] = rt.addr
            log_path = work / f"org-{f}.log"
            errors = []
            with open(log_path, "wb") as log:
                proc = subprocess.Popen([str(Path(args.bin_dir) / f)], env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    rt.wait_ready(proc)
                    for e in evs:
                        rid = rt.invoke(e)
                        if rid in rt.errors:
                            errors.append({"detail-type": e.get("detail-type"), "error": rt.errors[rid][:600]})
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    rt.close()
            logs = log_path.read_text(errors="replace")
            report["functions"][f] = {
                "invocations": len(evs), "errors": errors,
                "denials": [line[:400] for line in logs.splitlines() if any(d in line for d in DENIALS)],
            }
    finally:
        moto_api(local, "/moto-api/reset-auth", "inf")

    ecs = clients(local, a)("ecs")
    described = ecs.describe_container_instances(cluster="workers", containerInstances=cis)["containerInstances"]
    report["container_instances"] = {c["ec2InstanceId"]: c["status"] for c in described}
    report["instances"] = instances
    report["lifecycle"] = fake(local, "/_fake/lifecycle-actions")
    report["assume_role"] = [c for c in json.loads(urllib.request.urlopen(local["sts"] + "/_fake/calls").read())
                             if c["action"] == "AssumeRole" and "fleetguard-member" in (c["role"] or "")]
    report["hub_roles"] = {f: s[2] for f, s in setup.items()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
