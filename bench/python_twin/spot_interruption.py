#!/usr/bin/env python3
"""The Python twin of `spot-interruption`, for `make bench` only: what users run today (a boto3
Lambda), doing the same work as the Rust function so the two can be compared in one run.

Clients (ECS, Auto Scaling, ELBv2, SNS) are built at init; then a minimal Lambda Runtime API loop
(what the Python runtime's bootstrap does): the same parse, the same calls in the same order
(find the group and its target groups, find the container instance in every cluster, drain,
deregister, count tasks, publish one message).
"""

import json
import os
import urllib.request

import boto3

ecs = boto3.client("ecs")
autoscaling = boto3.client("autoscaling")
elbv2 = boto3.client("elbv2")
sns = boto3.client("sns")
TOPIC = os.environ.get("SNS_TOPIC_ARN")
CLUSTERS = [c for c in os.environ.get("ECS_CLUSTERS", "").split(",") if c]
_cluster_cache = []


def clusters():
    if CLUSTERS:
        return CLUSTERS
    if not _cluster_cache:
        for page in ecs.get_paginator("list_clusters").paginate():
            _cluster_cache.extend(page["clusterArns"])
    return _cluster_cache


def find_container_instance(instance_id):
    for c in clusters():
        arns = ecs.list_container_instances(cluster=c, filter=f"ec2InstanceId == {instance_id}")["containerInstanceArns"]
        if not arns:
            continue
        for ci in ecs.describe_container_instances(cluster=c, containerInstances=arns)["containerInstances"]:
            if ci.get("ec2InstanceId") == instance_id:
                return c, ci
    return None, None


def handler(event):
    detail_type = event.get("detail-type")
    if detail_type not in ("EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"):
        return {"outcome": "ignored"}
    instance_id = event["detail"]["instance-id"]
    action = event["detail"].get("instance-action")
    groups = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    target_groups = []
    if groups:
        g = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[groups[0]["AutoScalingGroupName"]])
        target_groups = g["AutoScalingGroups"][0].get("TargetGroupARNs", []) if g["AutoScalingGroups"] else []
    cluster, ci = find_container_instance(instance_id)
    registrations = []
    for tg in target_groups:
        for d in elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]:
            if d["Target"]["Id"] == instance_id and d.get("TargetHealth", {}).get("State") != "unused":
                registrations.append((tg, d["Target"].get("Port")))
    if ci is None and not registrations:
        return {"outcome": "ignored: not managed"}
    if action is not None and ci is not None and ci["status"] != "DRAINING":
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[ci["containerInstanceArn"]], status="DRAINING")
    for tg in sorted({tg for tg, _ in registrations}) if action is not None else []:
        targets = [{"Id": instance_id, **({"Port": p} if p else {})} for t, p in registrations if t == tg]
        elbv2.deregister_targets(TargetGroupArn=tg, Targets=targets)
    tasks = {}
    if ci is not None:
        arns = []
        for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, containerInstance=ci["containerInstanceArn"], desiredStatus="RUNNING"):
            arns.extend(page["taskArns"])
        for i in range(0, len(arns), 100):
            for t in ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]:
                svc = (t.get("group") or "").removeprefix("service:") or "(standalone)"
                tasks[svc] = tasks.get(svc, 0) + 1
    message = {"kind": "spot-interruption", "instance": instance_id, "action": action, "tasks": tasks,
               "container_instance": ci and ci["containerInstanceArn"], "target_groups": [t for t, _ in registrations]}
    if TOPIC:
        what = f"Spot interruption ({action})" if action else "Rebalance recommendation"
        sns.publish(TopicArn=TOPIC, Subject=f"{what}: {instance_id}"[:99], Message=json.dumps(message))
    return {"outcome": "drained" if action else "notified"}


def main():
    api = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"
    while True:
        with urllib.request.urlopen(f"{api}/next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(r.read())
        try:
            body, path = json.dumps(handler(event)).encode(), f"{api}/{request_id}/response"
        except Exception as e:  # the runtime reports errors the same way
            body, path = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode(), f"{api}/{request_id}/error"
        urllib.request.urlopen(urllib.request.Request(path, data=body, method="POST")).read()


if __name__ == "__main__":
    main()
