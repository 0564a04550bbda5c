"""Running the functions' real binaries locally: a fake Lambda Runtime API that serves events one
at a time, the demo fleet's events for each function, and the helpers they need. Shared by
`make bench` (bench/run.py) and the IAM enforcement test (tests/infra/iam_enforce.py)."""

import json
import re
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
now_ns = time.perf_counter_ns


class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a function process killed mid-request (the end of each run) is expected


def serve(handler):
    srv = Server(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class FakeRuntime:
    """Serves events one at a time and records when the function asked and answered."""

    def __init__(self, deadline_s=60):
        self.deadline_s = deadline_s
        self.cv = threading.Condition()
        self.pending = []
        self.first_next = None
        self.served = {}
        self.done = {}
        self.errors = {}
        self.init_error = None
        rt = self

        class H(Quiet):
            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.send(404)
                with rt.cv:
                    if rt.first_next is None:
                        rt.first_next = now_ns()
                    while not rt.pending:
                        rt.cv.wait()
                    rid, event = rt.pending.pop(0)
                    rt.served[rid] = now_ns()
                body = json.dumps(event).encode()
                self.send(200, body, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": rid,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + rt.deadline_s * 1000),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                })

            def do_POST(self):
                body = self.body()
                m = re.search(r"/invocation/([^/]+)/(response|error)$", self.path)
                with rt.cv:
                    if m:
                        rt.done[m.group(1)] = now_ns()
                        if m.group(2) == "error":
                            rt.errors[m.group(1)] = body.decode(errors="replace")
                    elif self.path.endswith("/init/error"):
                        rt.init_error = body.decode(errors="replace")
                    rt.cv.notify_all()
                self.send(202, b"{}", {"Content-Type": "application/json"})

        self.srv = serve(H)
        self.addr = f"127.0.0.1:{self.srv.server_address[1]}"

    def invoke(self, event, timeout=120):
        rid = str(uuid.uuid4())
        with self.cv:
            self.pending.append((rid, event))
            self.cv.notify_all()
            end = time.time() + timeout
            while rid not in self.done:
                if self.init_error or time.time() > end:
                    raise RuntimeError(f"no response: {self.init_error or 'timeout'}")
                self.cv.wait(0.5)
        return rid

    def wait_ready(self, proc, timeout=60):
        end = time.time() + timeout
        while self.first_next is None:
            if proc.poll() is not None or self.init_error or time.time() > end:
                raise RuntimeError(f"the function did not start: {self.init_error or proc.returncode}")
            time.sleep(0.0005)

    def close(self):
        self.srv.shutdown()


def boto(local, name):
    import boto3
    return boto3.client(name, endpoint_url=local["moto"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def fake(local, path, body=None):
    req = urllib.request.Request(local["autoscaling"] + path, method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())


def stamp(e, **detail):
    e = json.loads(json.dumps(e))
    e["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    e["region"], e["account"] = "us-east-1", "123456789012"
    e["detail"].update(detail)
    return e


def sample(name):
    return json.loads((ROOT / "events" / name).read_text())


def rfc2822_in(seconds):
    """A time `seconds` from now as AWS Health writes it (RFC 2822, GMT)."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + seconds))


def health_event(name, instance, start_in, end_in=None, **detail):
    """A sample Health event about `instance`, its window `start_in` seconds from now."""
    e = stamp(sample(name), startTime=rfc2822_in(start_in), eventRegion="us-east-1", **detail)
    if end_in is not None:
        e["detail"]["endTime"] = rfc2822_in(end_in)
    e["detail"]["affectedEntities"] = [{"entityValue": instance, "status": "PENDING"}]
    e["resources"] = [instance]
    return e


def maintenance_due(step, instance, event, targets=()):
    """The payload of one of instance-maintenance's schedules, as the schedule would carry it."""
    d = event["detail"]
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1800))
    return stamp(sample("maintenance/scheduled-out-of-service.json"), step=step, instanceId=instance,
                 eventArn=d["eventArn"], eventTypeCode=d["eventTypeCode"], windowStart=start,
                 targets=[{"targetGroupArn": tg, "port": 80} for tg in targets])


def scenario_events(local, fleet):
    """Per function, the events of one run, and a function restoring the state they change."""
    ecs, elbv2 = boto(local, "ecs"), boto(local, "elbv2")
    ci0 = fleet["ecs_instances"][0]
    ci1 = fleet["ecs_instances"][1]
    web = fleet["web_instances"][0]
    spot = sample("spot/interruption-terminate.json")
    spot_ecs = stamp(spot, **{"instance-id": ci0["instance_id"]})
    spot_ecs["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{ci0['instance_id']}"]
    spot_web = stamp(spot, **{"instance-id": web})
    rebalance = stamp(sample("spot/rebalance-recommendation.json"), **{"instance-id": ci0["instance_id"]})
    terminate = stamp(sample("asg/terminate-lifecycle-action.json"), EC2InstanceId=ci1["instance_id"],
                      AutoScalingGroupName=fleet["ecs_auto_scaling_group"], LifecycleHookName=fleet["terminate_hook"],
                      NotificationMetadata=json.dumps({"ecs_cluster": fleet["cluster"]}))
    ci_event = stamp(sample("ecs/container-instance-draining.json"), clusterArn=fleet["cluster_arn"],
                     containerInstanceArn=ci1["container_instance_arn"], ec2InstanceId=ci1["instance_id"], runningTasksCount=2)
    sweep = stamp(sample("asg/scheduled-sweep.json"))
    service = f"arn:aws:ecs:us-east-1:123456789012:service/{fleet['cluster']}/{fleet['service']}"
    failed = stamp(sample("ecs/deployment-failed.json"), deploymentId="ecs-svc/7301958264019283746")
    failed["resources"] = [service]
    impaired = stamp(sample("ecs/service-task-start-impaired.json"))
    impaired["resources"] = [service]
    fargate = sample("ecs/task-stopped-fargate-spot.json")
    alarms = [sample(f"alarms/{n}.json") for n in ("metric", "metric-ok", "composite", "anomaly-detection", "multi-time-series")]
    # instance-maintenance: a reboot three days ahead (a schedule), its due payload (drain, and a
    # schedule to put it back), the return (registered again), the event closed (schedules gone),
    # and an instance stopping behind the target group.
    web1 = fleet["web_instances"][1]
    reboot = health_event("maintenance/health-reboot.json", web1, 3 * 86400, 3 * 86400 + 7200)
    closed = json.loads(json.dumps(reboot))
    closed["detail"]["statusCode"] = "closed"
    stopping = stamp(sample("maintenance/instance-stopping.json"), **{"instance-id": web1})
    maintenance = [reboot, maintenance_due("out-of-service", web1, reboot),
                   maintenance_due("return", web1, reboot, [fleet["target_group_arn"]]), closed, stopping]

    def restore():
        arns = [i["container_instance_arn"] for i in fleet["ecs_instances"]]
        ecs.update_container_instances_state(cluster=fleet["cluster"], containerInstances=arns, status="ACTIVE")
        elbv2.register_targets(TargetGroupArn=fleet["target_group_arn"], Targets=[{"Id": i, "Port": 80} for i in fleet["web_instances"]])
        scheduler = boto(local, "scheduler")
        for sch in scheduler.list_schedules()["Schedules"]:
            scheduler.delete_schedule(Name=sch["Name"], GroupName=sch.get("GroupName", "default"))
        fake(local, "/_fake/reset", {})
        fake(local, "/_fake/lifecycle-actions", {"EC2InstanceId": ci1["instance_id"], "AutoScalingGroupName": fleet["ecs_auto_scaling_group"],
                                                 "LifecycleHookName": fleet["terminate_hook"],
                                                 "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"})

    def ten(first, rest):
        out = [first]
        while len(out) < 10:
            out.extend(rest)
        return out[:10]

    return {
        "spot-interruption": ten(spot_ecs, [spot_web, rebalance, spot_ecs]),
        "asg-lifecycle": ten(terminate, [ci_event, sweep]),
        "ecs-deployment": ten(failed, [impaired, fargate, failed]),
        "alarm-fanout": ten(alarms[0], alarms[1:] + alarms[:1]),
        "instance-maintenance": ten(maintenance[0], maintenance[1:] + maintenance[:1]),
    }, restore


def seed_failed_deployment(local, fleet):
    ecs = boto(local, "ecs")
    ecs.register_task_definition(family="checkout-api", containerDefinitions=[{
        "name": "app", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout-api:2026.11.21-1",
        "memory": 512, "cpu": 256, "essential": True,
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/checkout-api", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app"}}}])
    for _ in range(2):
        t = ecs.start_task(cluster=fleet["cluster"], taskDefinition="checkout-api:3",
                           containerInstances=[fleet["ecs_instances"][2]["container_instance_arn"]],
                           startedBy="ecs-svc/7301958264019283746", group=f"service:{fleet['service']}")["tasks"][0]
        fake(local, "/_fake/ecs/task-stopped", {"cluster": fleet["cluster"], "task": t["taskArn"], "stopCode": "EssentialContainerExited",
                                                "stoppedReason": "Essential container in task exited",
                                                "containers": [{"name": "app", "exitCode": 137, "reason": "OutOfMemoryError"}]})
