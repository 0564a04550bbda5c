#!/usr/bin/env python3
"""Helpers for tests/tests/infra.rs, against a running moto server.

  moto_tool.py route --moto URL --patterns FILE --events DIR
      One EventBridge rule per pattern (FILE: {"rule": "<pattern JSON>"}), each with its own SQS
      queue as target; every EventBridge-form sample under DIR put with PutEvents; prints
      {"sample path": ["rule", ...]} for every sample put: which rules matched it.
  moto_tool.py inventory --moto URL --region R
      Prints the Lambda functions, EventBridge rules, SQS queues, DynamoDB tables, SNS topics,
      CloudWatch alarms, log groups and IAM roles in moto.
"""

import argparse
import json
import pathlib
import sys

import boto3


def client(args, name, region=None):
    return boto3.client(name, endpoint_url=args.moto, region_name=region or args.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def canonical(event):
    return json.dumps([event.get("detail-type"), event.get("source"), event.get("resources", []),
                       event.get("detail")], sort_keys=True)


def route(args):
    patterns = json.loads(pathlib.Path(args.patterns).read_text())
    events, sqs = client(args, "events"), client(args, "sqs")
    queues = {}
    for rule, pattern in patterns.items():
        url = sqs.create_queue(QueueName=f"route-{rule.replace('_', '-')}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=rule, EventPattern=pattern)
        events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
        queues[rule] = url
    samples = {}
    for path in sorted(pathlib.Path(args.events).rglob("*.json")):
        if "invalid" in path.parts:
            continue
        try:
            e = json.loads(path.read_text())
        except ValueError:
            continue
        if not isinstance(e, dict) or "detail-type" not in e or "source" not in e or not isinstance(e.get("detail"), dict):
            continue  # SNS bodies, SQS records, direct alarm actions: not EventBridge events
        rel = str(path.relative_to(args.events))
        samples.setdefault(canonical(e), []).append(rel)
        entry = {"Source": e["source"], "DetailType": e["detail-type"], "Detail": json.dumps(e["detail"]),
                 "Resources": [r for r in e.get("resources", []) if isinstance(r, str)]}
        out = events.put_events(Entries=[entry])
        if out.get("FailedEntryCount"):
            sys.exit(f"PutEvents failed for {rel}: {out}")
    matched = {rel: [] for rels in samples.values() for rel in rels}
    for rule, url in queues.items():
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            for m in got:
                body = json.loads(m["Body"])
                for rel in samples.get(canonical(body), []):
                    matched[rel].append(rule)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    print(json.dumps({k: sorted(v) for k, v in matched.items()}, indent=1, sort_keys=True))


def inventory(args):
    lam, ev, sqs = client(args, "lambda"), client(args, "events"), client(args, "sqs")
    ddb, sns, cw = client(args, "dynamodb"), client(args, "sns"), client(args, "cloudwatch")
    logs, iam = client(args, "logs"), client(args, "iam")
    print(json.dumps({
        "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]),
        "rules": sorted(r["Name"] for r in ev.list_rules()["Rules"]),
        "queues": sorted(u.rsplit("/", 1)[-1] for u in sqs.list_queues().get("QueueUrls", [])),
        "tables": sorted(ddb.list_tables()["TableNames"]),
        "topics": sorted(t["TopicArn"].rsplit(":", 1)[-1] for t in sns.list_topics()["Topics"]),
        "alarms": sorted(a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]),
        "log_groups": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "alarm_dimensions": sorted(f"{a['AlarmName']}/{d['Name']}" for a in cw.describe_alarms()["MetricAlarms"]
                                   for d in a.get("Dimensions", [])),
        "dashboards": sorted(d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"]),
        "schedule_groups": sorted(g["Name"] for g in client(args, "scheduler").list_schedule_groups()["ScheduleGroups"]),
        "secrets": sorted(x["Name"] for x in client(args, "secretsmanager").list_secrets()["SecretList"]),
        # `function/VARIABLE=value` for every function's environment (values are ARNs and names).
        "function_env": sorted(f"{f['FunctionName']}/{k}={v}" for f in lam.list_functions()["Functions"]
                               for k, v in f.get("Environment", {}).get("Variables", {}).items()),
        # `role/action/resource` of every inline policy statement.
        "grants": sorted(f"{r['RoleName']}/{a}/{res}" for r in iam.list_roles()["Roles"]
                         for n in iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]
                         for st in iam.get_role_policy(RoleName=r["RoleName"], PolicyName=n)["PolicyDocument"]["Statement"]
                         for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
                         for res in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])),
        **fleet(args),
    }, indent=1))


def fleet(args):
    asg, ecs, elb = client(args, "autoscaling"), client(args, "ecs"), client(args, "elbv2")
    groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    clusters = ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"] if ecs.list_clusters()["clusterArns"] else []
    lbs = elb.describe_load_balancers()["LoadBalancers"]
    return {
        "hooks": sorted(f"{g['AutoScalingGroupName']}/{h['LifecycleHookName']}" for g in groups
                        for h in asg.describe_lifecycle_hooks(AutoScalingGroupName=g["AutoScalingGroupName"])["LifecycleHooks"]),
        "spot_groups": sorted(g["AutoScalingGroupName"] for g in groups
                              if g.get("MixedInstancesPolicy", {}).get("InstancesDistribution", {}).get("OnDemandPercentageAboveBaseCapacity", 100) < 100),
        "capacity_providers": sorted(f"{c['clusterName']}/{p}" for c in clusters for p in c.get("capacityProviders", [])),
        "services": sorted(f"{c['clusterName']}/{s.rsplit('/', 1)[-1]}" for c in clusters
                           for s in ecs.list_services(cluster=c["clusterArn"])["serviceArns"]),
        "load_balancers": sorted(lb["LoadBalancerName"] for lb in lbs),
        "listeners": sorted(f"{lb['LoadBalancerName']}:{li['Port']}" for lb in lbs
                            for li in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]),
    }


def network(args):
    """What the examples take from outside: a VPC with two subnets, an AMI, a Slack secret."""
    ec2, sm = client(args, "ec2"), client(args, "secretsmanager")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{args.region}{az}")["Subnet"]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    secret = sm.create_secret(Name="examples/slack-webhook", SecretString="https://hooks.slack.example/services/T/B/x")["ARN"]
    print(json.dumps({"vpc_id": vpc, "subnet_ids": subnets, "image_id": image, "slack_webhook_secret_arn": secret}))


def policies(args):
    """Role name => the inline policy documents attached to it."""
    iam = client(args, "iam")
    out = {}
    for role in args.roles.split(","):
        names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        out[role] = [iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names]
    if args.key:
        out["key_policy"] = json.loads(client(args, "kms").get_key_policy(KeyId=args.key, PolicyName="default")["Policy"])
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("route")
    r.add_argument("--moto", required=True)
    r.add_argument("--region", default="us-east-1")
    r.add_argument("--patterns", required=True)
    r.add_argument("--events", required=True)
    i = sub.add_parser("inventory")
    i.add_argument("--moto", required=True)
    i.add_argument("--region", default="eu-west-1")
    n = sub.add_parser("network")
    n.add_argument("--moto", required=True)
    n.add_argument("--region", default="eu-west-1")
    q = sub.add_parser("policies")
    q.add_argument("--moto", required=True)
    q.add_argument("--region", default="eu-west-1")
    q.add_argument("--roles", required=True)
    q.add_argument("--key", help="also the key policy of this KMS key")
    args = p.parse_args()
    {"route": route, "inventory": inventory, "network": network, "policies": policies}[args.cmd](args)


if __name__ == "__main__":
    main()
