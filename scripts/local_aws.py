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
- TEST FIXTURE (local_fakes.py): an Auto Scaling lifecycle fake. moto lacks CompleteLifecycleAction and
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
- TEST FIXTURE (local_fakes.py): STS in front of moto that refuses AssumeRole as AWS does when the role's trust
  policy does not allow the caller (moto lets anyone assume anything). See `TrustFake`.
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import ThreadingHTTPServer

from local_fakes import Handler, LifecycleFake, TrustFake
from local_sink import SlackSink

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------- serving, and the patches moto needs


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


def serve_in_child(srv):
    """Serve `srv` from a forked child process, which stops when this process goes away."""
    import ctypes
    import multiprocessing

    def run():
        try:
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        srv.serve_forever()

    child = multiprocessing.get_context("fork").Process(target=run, daemon=True)
    child.start()
    return child


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
    children = []
    for h in (sink.handler(), fake.handler(), trust.handler()):
        srv = ThreadingHTTPServer((HOST, 0), h)
        srv.daemon_threads = True
        if not servers:
            # The sink in a process of its own: with moto in this one (one interpreter lock),
            # its answers and the arrival times it records would wait on moto's work, and a
            # test of a service's pace would measure moto instead.
            children.append(serve_in_child(srv))
        else:
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
    for c in children:
        c.terminate()
    for s in servers[len(children):]:
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
