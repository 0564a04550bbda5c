#!/usr/bin/env python3
"""An organization in the local AWS: a hub account and member accounts, for the tests and the demo.

    local_org.py seed --moto URL [--region R] [--out FILE]

moto serves many accounts: credentials from an assumed role act in that role's account. This
builds, in moto:
- the hub (123456789012): the role its functions run as (`fleetguard-hub`), a cluster with one
  container instance, and temporary credentials of that role (the functions' own, as Lambda
  gives them);
- two members, 111111111111 (payments-prod) and 222222222222 (search-prod): each the role the hub
  assumes (`fleetguard-member`, trusting only the hub's role, as `infra/modules/member` creates
  it), a managed Auto Scaling group of two instances with its lifecycle hooks, an ECS cluster
  whose container instances they are, and a target group they are registered in;
- a broken member, 333333333333 (legacy-prod): the same fleet, but its role trusts another
  principal, so the hub cannot assume it.

It prints (and writes) what it made as JSON.
"""

import argparse
import json

import boto3

HUB = "123456789012"
MEMBERS = {"111111111111": "payments-prod", "222222222222": "search-prod"}
BROKEN = {"333333333333": "legacy-prod"}
HUB_ROLE = "fleetguard-hub"
MEMBER_ROLE = "fleetguard-member"


def session(moto, region, account=None):
    """Clients acting in `account` (the hub, with moto's default keys, when None)."""
    kw = dict(endpoint_url=moto, region_name=region)
    base = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
    if account is None:
        return lambda svc: boto3.client(svc, **kw, **base), None
    creds = boto3.client("sts", **kw, **base).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="local-org-seed"
    )["Credentials"]
    keys = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"])
    return lambda svc: boto3.client(svc, **kw, **keys), creds


def fleet(client, region, account, size):
    """A managed group of `size` instances, each a container instance of cluster `fleet` and a
    target of `fleet-tg`."""
    ec2, asg, ecs, elbv2 = client("ec2"), client("autoscaling"), client("ecs"), client("elbv2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    zones = [s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=subnets[:2])["Subnets"]]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    cluster_arn = ecs.create_cluster(clusterName="fleet")["cluster"]["clusterArn"]
    tg = elbv2.create_target_group(Name="fleet-tg", Protocol="HTTP", Port=80, VpcId=vpc,
                                   TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    asg.create_launch_configuration(LaunchConfigurationName="fleet-lc", ImageId=image, InstanceType="m5.large")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="fleet-asg", LaunchConfigurationName="fleet-lc", MinSize=0, MaxSize=10,
        DesiredCapacity=size, AvailabilityZones=zones, VPCZoneIdentifier=",".join(subnets[:2]),
        TargetGroupARNs=[tg],
        Tags=[{"Key": "fleetguard:managed", "Value": "true", "PropagateAtLaunch": True, "ResourceId": "fleet-asg",
               "ResourceType": "auto-scaling-group"}])
    for hook, transition in (("fleetguard-drain", "autoscaling:EC2_INSTANCE_TERMINATING"),
                             ("fleetguard-join", "autoscaling:EC2_INSTANCE_LAUNCHING")):
        asg.put_lifecycle_hook(AutoScalingGroupName="fleet-asg", LifecycleHookName=hook,
                               LifecycleTransition=transition, HeartbeatTimeout=600, DefaultResult="CONTINUE",
                               NotificationMetadata=json.dumps({"ecs_cluster": "fleet"}))
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["fleet-asg"])["AutoScalingGroups"][0]
    instances = []
    for iid in sorted(i["InstanceId"] for i in group["Instances"]):
        doc = json.dumps({"instanceId": iid, "region": region, "availabilityZone": zones[0],
                          "instanceType": "m5.large", "accountId": account})
        ci = ecs.register_container_instance(cluster="fleet", instanceIdentityDocument=doc)
        instances.append({"instance_id": iid, "container_instance_arn": ci["containerInstance"]["containerInstanceArn"]})
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": i["instance_id"], "Port": 80} for i in instances])
    return {"cluster_arn": cluster_arn, "auto_scaling_group": "fleet-asg", "target_group_arn": tg,
            "terminate_hook": "fleetguard-drain", "instances": instances}


def member_role(client, trusted):
    """The role the hub assumes, trusting `trusted` only (as infra/modules/member writes it)."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}]}
    return client("iam").create_role(RoleName=MEMBER_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def seed(args):
    hub, _ = session(args.moto, args.region)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    hub_role = hub("iam").create_role(RoleName=HUB_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    out = {"region": args.region, "hub": {"account": HUB, "role_arn": hub_role, **fleet(hub, args.region, HUB, 1)},
           "members": {}, "broken": {}}
    # The hub's functions' own credentials: its role's, as Lambda gives them.
    creds = hub("sts").assume_role(RoleArn=hub_role, RoleSessionName="fleetguard")["Credentials"]
    out["hub"]["credentials"] = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                                 "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                                 "AWS_SESSION_TOKEN": creds["SessionToken"]}
    for accounts, key, trusted in ((MEMBERS, "members", hub_role),
                                   (BROKEN, "broken", f"arn:aws:iam::{HUB}:role/not-the-hub")):
        for account, name in accounts.items():
            client, _ = session(args.moto, args.region, account)
            role = member_role(client, trusted)
            out[key][account] = {"name": name, "role_arn": role, **fleet(client, args.region, account, 2)}
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("seed")
    d.add_argument("--moto", required=True)
    d.add_argument("--region", default="us-east-1")
    d.add_argument("--out")
    args = p.parse_args()
    {"seed": seed}[args.cmd](args)


if __name__ == "__main__":
    main()
