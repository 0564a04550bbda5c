#!/usr/bin/env python3
"""`make bench`: cold start, memory, size and AWS calls of the five functions, side by side with a
Python twin of spot-interruption, measured in one run on this machine. Writes bench/RESULTS.md.

Method (also written into RESULTS.md):
- Each function runs as its real release binary under a fake Lambda Runtime API on 127.0.0.1
  (this script): the process is started, and its cold start is the time from `exec` to its first
  `GET /2018-06-01/runtime/invocation/next`, with every client built. Then it is served its sample
  events one at a time; the first is the first invocation, the rest are warm. The duration of an
  invocation is the time from serving the event to receiving the response. Peak RSS is the
  process's own VmHWM (from /proc) after a cold start and 10 invocations.
- AWS is moto plus the Auto Scaling lifecycle fake (scripts/local_aws.py), behind a counting
  proxy: every AWS call is counted by operation, per invocation, with its time.
- The Python twin (bench/python_twin/spot_interruption.py, boto3, the same calls) runs under the
  same fake runtime with the same events.
- Medians of RUNS (default 10) fresh processes, with min and max; state is restored between runs.
- Each function is built on its own (`-p <function>`), so it links only the SDK crates it calls
  (a workspace build would unify the shared crate's features across functions).
- Zip sizes: `cargo lambda build --release --arm64 --output-format zip -p <function>`.
- Init profile: one cold start of each function under `strace -f`, counting the files it opens
  (and how many are certificates) and its syscalls before the first `GET …/invocation/next`.
- Build times (BENCH_BUILD_TIMES=1, the default): `cargo test -p spot-interruption` after a
  one-line change in its handler, in a clone sharing the warm target directory; and `make test`
  in a fresh clone with an empty target directory, as CI's first run on a new machine.
- Scale: the asg-lifecycle sweep over SCALE (default 1000) container instances in
  Terminating:Wait: AWS calls made and wall time.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ["spot-interruption", "asg-lifecycle", "ecs-deployment", "alarm-fanout", "instance-maintenance"]
now_ns = time.perf_counter_ns

sys.path.insert(0, str(ROOT / "scripts"))
from lambda_harness import (FakeRuntime, Quiet, boto, fake, sample, scenario_events,  # noqa: E402
                            seed_failed_deployment, serve, stamp)


def say(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------- fake Lambda Runtime API


# ---------------------------------------------------------------- counting proxy in front of AWS


def rest_op(method, path):
    """The operation of a REST-JSON call (EventBridge Scheduler's `/schedules/<name>`)."""
    path = path.split("?")[0]
    if path.startswith("/schedules/"):
        return {"POST": "CreateSchedule", "PUT": "UpdateSchedule", "GET": "GetSchedule",
                "DELETE": "DeleteSchedule"}.get(method, f"{method} /schedules")
    return f"{method} {path}"


class CountingProxy:
    """Forwards to `upstream`, recording (time, operation) of every AWS call."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.calls = []
        # (operation, seconds until the upstream answered), for where a run's time goes.
        self.answered = []
        self.lock = threading.Lock()
        px = self

        class H(Quiet):
            def handle_any(self):
                body = self.body()
                op = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                if not op:
                    m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
                    op = m.group(1).decode() if m else rest_op(self.command, self.path)
                with px.lock:
                    px.calls.append((now_ns(), op))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                req = urllib.request.Request(px.upstream + self.path, data=body if body else None,
                                             headers=headers, method=self.command)
                started = time.monotonic()
                try:
                    with urllib.request.urlopen(req, timeout=120) as r:
                        status, data, rh = r.status, r.read(), r.headers
                except urllib.error.HTTPError as e:
                    status, data, rh = e.code, e.read(), e.headers
                with px.lock:
                    px.answered.append((op, time.monotonic() - started))
                self.send(status, data, {k: v for k, v in rh.items()
                                         if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date")})

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        self.srv = serve(H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def between(self, start, end):
        with self.lock:
            return [(t, op) for t, op in self.calls if start <= t <= end]


# ---------------------------------------------------------------- helpers


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s, unit="ms", digits=1):
    if not s:
        return "–"
    return f"{s['median']:.{digits}f} {unit} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def vm_hwm_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None


def machine():
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{platform.machine()}, {os.cpu_count()} cores, {cpu or 'unknown CPU'}, Linux {platform.release()}, {rustc}, Python {platform.python_version()}"


# ---------------------------------------------------------------- scenarios


def run_process(cmd, env, events, proxies):
    rt = FakeRuntime()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=rt.addr)
    t0 = now_ns()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rt.wait_ready(proc)
        init_ms = (rt.first_next - t0) / 1e6
        invocations = []
        for ev in events:
            rid = rt.invoke(ev)
            start, end = rt.served[rid], rt.done[rid]
            calls = sorted(c for p in proxies for c in p.between(start, end))
            invocations.append({"ms": (end - start) / 1e6, "error": rt.errors.get(rid), "calls": calls, "start": start,
                                "detail_type": ev.get("detail-type")})
        hwm = vm_hwm_kb(proc.pid)
        return {"init_ms": init_ms, "invocations": invocations, "rss_mb": hwm / 1024 if hwm else None}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rt.close()


def drain_timing(inv):
    """For a spot warning: calls before the first drain call, and ms from event to that call."""
    for i, (t, op) in enumerate(inv["calls"]):
        if op in ("UpdateContainerInstancesState", "DeregisterTargets"):
            return i, (t - inv["start"]) / 1e6, [o for _, o in inv["calls"][:i]]
    return None, None, []


def scale_sweep(local, fleet, binary, env, proxies, n):
    """The sweep over n container instances in Terminating:Wait, each still running a task."""
    asg, ecs = boto(local, "autoscaling"), boto(local, "ecs")
    group = "bench-scale-asg"
    say(f"   seeding {n} draining container instances in Terminating:Wait (moto) …")
    lt = asg.describe_launch_configurations()["LaunchConfigurations"][0]["LaunchConfigurationName"]
    zones = [z for z in ("us-east-1a", "us-east-1b")]
    asg.create_auto_scaling_group(AutoScalingGroupName=group, LaunchConfigurationName=lt, MinSize=0, MaxSize=n,
                                  DesiredCapacity=n, AvailabilityZones=zones,
                                  Tags=[{"Key": "fleetguard:managed", "Value": "true", "PropagateAtLaunch": False,
                                         "ResourceId": group, "ResourceType": "auto-scaling-group"}])
    asg.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="fleetguard-drain",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=300,
                           DefaultResult="CONTINUE", NotificationMetadata=json.dumps({"ecs_cluster": "bench-scale"}))
    ecs.create_cluster(clusterName="bench-scale")
    ids = []
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=[group]):
        for g in page["AutoScalingGroups"]:
            ids.extend(i["InstanceId"] for i in g["Instances"])
    arns = []
    for iid in ids:
        doc = json.dumps({"instanceId": iid, "region": "us-east-1", "availabilityZone": "us-east-1a", "instanceType": "m5.large", "accountId": "123456789012"})
        arn = ecs.register_container_instance(cluster="bench-scale", instanceIdentityDocument=doc,
                                              totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 2048},
                                                              {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680}])["containerInstance"]["containerInstanceArn"]
        ecs.start_task(cluster="bench-scale", taskDefinition="checkout-api:2", containerInstances=[arn], group="service:worker")
        arns.append(arn)
        fake(local, "/_fake/lifecycle-actions", {"EC2InstanceId": iid, "AutoScalingGroupName": group, "LifecycleHookName": "fleetguard-drain",
                                                 "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "StartTime": time.time() - 30})
    for i in range(0, len(arns), 10):
        ecs.update_container_instances_state(cluster="bench-scale", containerInstances=arns[i:i + 10], status="DRAINING")
    sweep = stamp(sample("asg/scheduled-sweep.json"))
    env = dict(env, AUTO_SCALING_GROUPS=group, ECS_CLUSTERS="bench-scale")
    # Every drain just started under a 300 s heartbeat timeout: every instance is heartbeated.
    out = run_process([str(binary)], env, [sweep], proxies)
    result = {"instances": len(ids), **summarize(out["invocations"][0])}
    # The steady state: the default one-hour timeout, drains 10 minutes old (outside their
    # heartbeat window), two sweeps a minute apart in one execution environment. The first
    # reads the scaling activities; the second is a steady-state minute.
    asg.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName="fleetguard-drain",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=3600,
                           DefaultResult="CONTINUE", NotificationMetadata=json.dumps({"ecs_cluster": "bench-scale"}))
    for iid in ids:
        fake(local, "/_fake/lifecycle-actions", {"EC2InstanceId": iid, "AutoScalingGroupName": group, "LifecycleHookName": "fleetguard-drain",
                                                 "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "StartTime": time.time() - 600})
    out = run_process([str(binary)], env, [sweep, stamp(sample("asg/scheduled-sweep.json"))], proxies)
    result["first"] = summarize(out["invocations"][0])
    result["steady"] = summarize(out["invocations"][1])
    return result


def summarize(inv):
    """Calls of one invocation, by operation."""
    ops = {}
    for _, op in inv["calls"]:
        ops[op] = ops.get(op, 0) + 1
    return {"calls": len(inv["calls"]), "ops": ops, "ms": inv["ms"], "error": inv["error"]}


def init_profile(binary, env):
    """One cold start under strace: files opened (certificates among them) and syscalls made
    before the first `GET /next`."""
    import tempfile
    rt = FakeRuntime()
    out = Path(tempfile.mkdtemp()) / "strace.txt"
    proc = subprocess.Popen(["strace", "-f", "-qq", "-o", str(out), str(binary)],
                            env=dict(env, AWS_LAMBDA_RUNTIME_API=rt.addr), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        rt.wait_ready(proc)
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rt.close()
    lines = out.read_text(errors="replace").splitlines()
    shutil.rmtree(out.parent, ignore_errors=True)
    opened = [ln for ln in lines if re.search(r"\bopen(at)?\(", ln) and "= -1" not in ln]
    certs = [ln for ln in opened if re.search(r"/etc/(ssl|pki)|\.pem|\.crt|certs/", ln)]
    calls = {}
    for ln in lines:
        m = re.match(r"^\d+\s+([a-z_0-9]+)\(", ln)
        if m:
            calls[m.group(1)] = calls.get(m.group(1), 0) + 1
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
    return {"syscalls": sum(calls.values()), "files_opened": len(opened), "certificate_files": len(certs),
            "top": ", ".join(f"{k} {v}" for k, v in top)}


def build_times(target):
    """`cargo test -p spot-interruption` after a one-line change in its handler (warm target), and
    `make test` from a fresh clone with an empty target directory."""
    import tempfile
    out = {}
    work = Path(tempfile.mkdtemp(prefix="fleetguard-build-"))
    try:
        clone = work / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = dict(os.environ, CARGO_TARGET_DIR=str(target))
        subprocess.run(["cargo", "test", "-q", "-p", "spot-interruption", "--no-run"], cwd=clone, env=env,
                       check=True, capture_output=True)
        handler = clone / "functions/spot-interruption/src/handler.rs"
        handler.write_text(handler.read_text() + "\n// a one-line change\n")
        t = time.time()
        r = subprocess.run(["cargo", "test", "-q", "-p", "spot-interruption"], cwd=clone, env=env, capture_output=True, text=True)
        out["incremental"] = {"s": time.time() - t, "ok": r.returncode == 0}
        fresh = work / "fresh"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(fresh)], check=True)
        env = dict(os.environ, CARGO_TARGET_DIR=str(work / "fresh-target"), CARGO_INCREMENTAL="0")
        t = time.time()
        r = subprocess.run(["bash", ".ci/run"], cwd=fresh, env=env, capture_output=True, text=True)
        summary = [ln for ln in r.stdout.splitlines() if ln.startswith("fleetguard:")]
        out["fresh"] = {"s": time.time() - t, "ok": r.returncode == 0, "summary": summary[-1] if summary else ""}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", 10)))
    ap.add_argument("--scale", type=int, default=int(os.environ.get("SCALE", 1000)))
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    ap.add_argument("--skip-zip", action="store_true", help="do not build the arm64 zips")
    ap.add_argument("--bin-dir", help="use the binaries in this folder, do not build (for trying the harness)")
    args = ap.parse_args()
    target = Path(args.target_dir)
    started = time.time()

    if args.bin_dir:
        binaries = {f: Path(args.bin_dir) / f for f in FUNCTIONS}
    else:
        say("1. Release binaries for the host (cargo build --release)")
        for f in FUNCTIONS:
            subprocess.run(["cargo", "build", "--release", "--quiet", "-p", f],
                           cwd=ROOT, check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(target)))
        binaries = {f: target / "release" / f for f in FUNCTIONS}
    sizes = {f: binaries[f].stat().st_size for f in FUNCTIONS}
    # Other profiles to compare, on spot-interruption (BENCH_PROFILES=release-small).
    variants = {}
    for prof in [p for p in os.environ.get("BENCH_PROFILES", "").split(",") if p and p != "release"]:
        say(f"   and spot-interruption with the `{prof}` profile")
        subprocess.run(["cargo", "build", "--profile", prof, "--quiet", "-p", "spot-interruption"],
                       cwd=ROOT, check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(target)))
        name = f"spot-interruption [{prof}]"
        variants[name] = target / prof / "spot-interruption"
        sizes[name] = variants[name].stat().st_size

    zips = {}
    if not args.skip_zip:
        say("2. arm64 zips (cargo lambda build --release --arm64 --output-format zip)")
        venv_bin = str(Path(sys.executable).parent)
        for f in FUNCTIONS:
            subprocess.run(["cargo", "lambda", "build", "--release", "--arm64", "--output-format", "zip", "-p", f,
                            "--lambda-dir", str(target / "lambda-arm64")],
                           cwd=ROOT, check=True, env=dict(os.environ, PATH=f"{venv_bin}:{os.environ['PATH']}", CARGO_TARGET_DIR=str(target)))
        zips = {f: (target / "lambda-arm64" / f / "bootstrap.zip").stat().st_size for f in FUNCTIONS}

    sdk_crates = {}
    for f in FUNCTIONS:
        tree = subprocess.run(["cargo", "tree", "-p", f, "-e", "normal", "--prefix", "none"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
        sdk_crates[f] = sorted({m.group(1) for m in re.finditer(r"^(aws-sdk-[a-z0-9]+) ", tree, re.M)})

    say("3. Local AWS (moto, lifecycle fake) behind a counting proxy; demo fleet seeded")
    local_proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/local_aws.py"), "serve"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    local = json.loads(local_proc.stdout.readline())
    fleet = json.loads(subprocess.run([sys.executable, str(ROOT / "scripts/local_aws.py"), "seed", "--moto", local["moto"], "--slack", local["slack"]],
                                      check=True, capture_output=True, text=True).stdout)
    urllib.request.urlopen(urllib.request.Request(local["moto"] + "/moto-api/state-manager/set-transition", method="POST",
                                                  data=json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}).encode())).read()
    seed_failed_deployment(local, fleet)
    proxy, proxy_asg = CountingProxy(local["moto"]), CountingProxy(local["autoscaling"])
    proxies = [proxy, proxy_asg]
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": proxy.url, "AWS_ENDPOINT_URL_AUTO_SCALING": proxy_asg.url,
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "SNS_TOPIC_ARN": fleet["topic_arn"], "MANAGED_ASG_TAG": "fleetguard:managed=true",
        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/fleetguard-scheduler-us-east-1",
        "SCHEDULE_TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:fleetguard-instance-maintenance",
    }
    events, restore = scenario_events(local, fleet)
    # Warm moto up (its first call per service is slow), so no process pays for it.
    restore()
    run_process([str(binaries["spot-interruption"])], env, events["spot-interruption"][:2], proxies)
    run_process([str(binaries["ecs-deployment"])], env, events["ecs-deployment"][:2], proxies)
    run_process([str(binaries["alarm-fanout"])], env, events["alarm-fanout"][:1], proxies)

    say(f"4. {args.runs} cold starts and 10 invocations per function, and the Python twin")
    results = {}
    twin = [sys.executable, str(ROOT / "bench/python_twin/spot_interruption.py")]
    system_roots = "spot-interruption [TLS_ROOTS=system]"
    variants[system_roots] = binaries["spot-interruption"]
    subjects = [(f, [str(binaries[f]), ], {}) for f in FUNCTIONS] \
        + [(n, [str(b)], {"TLS_ROOTS": "system"} if n == system_roots else {}) for n, b in variants.items()] \
        + [("python twin of spot-interruption", twin, {})]
    for name, cmd, extra_env in subjects:
        evs = events["spot-interruption" if name.startswith(("python", "spot")) else name]
        runs = []
        for _ in range(args.runs):
            restore()
            runs.append(run_process(cmd, dict(env, **extra_env), evs, proxies))
        errors = [i["error"] for r in runs for i in r["invocations"] if i["error"]]
        results[name] = {
            "init": stats([r["init_ms"] for r in runs]),
            "first": stats([r["invocations"][0]["ms"] for r in runs]),
            "warm": stats([i["ms"] for r in runs for i in r["invocations"][1:]]),
            "rss": stats([r["rss_mb"] for r in runs]),
            "runs": runs,
            "errors": errors,
        }
        say(f"   {name:<34} init {fmt(results[name]['init'])}  first {fmt(results[name]['first'])}  "
            f"warm {fmt(results[name]['warm'])}  rss {fmt(results[name]['rss'], 'MB')}" + (f"  ERRORS {len(errors)}" if errors else ""))

    # Calls per event, by operation (first run), and the spot drain timing.
    calls = {}
    for name in FUNCTIONS + ["python twin of spot-interruption"]:
        per = []
        for inv in results[name]["runs"][0]["invocations"][:4]:
            ops = {}
            for _, op in inv["calls"]:
                ops[op] = ops.get(op, 0) + 1
            per.append((inv["detail_type"], len(inv["calls"]), ops))
        calls[name] = per
    drain = {}
    for name in ("spot-interruption", "python twin of spot-interruption"):
        before, ms, ops = [], [], None
        for r in results[name]["runs"]:
            n, t, o = drain_timing(r["invocations"][0])
            before.append(n)
            ms.append(t)
            ops = ops or o
        drain[name] = {"calls_before": stats(before), "ms": stats(ms), "ops": ops}

    say("5. Init profile: one cold start of each function under strace")
    profiles = {f: init_profile(binaries[f], env) for f in FUNCTIONS}
    profiles[system_roots] = init_profile(binaries["spot-interruption"], dict(env, TLS_ROOTS="system"))
    for name, prof in profiles.items():
        say(f"   {name:<40} {prof}")

    say(f"6. Scale: the asg-lifecycle sweep over {args.scale} draining container instances")
    scale = scale_sweep(local, fleet, binaries["asg-lifecycle"], env, proxies, args.scale)
    say(f"   {scale['calls']} AWS calls, {scale['ms']:.0f} ms: {scale['ops']}")
    local_proc.stdin.close()
    local_proc.wait(timeout=30)

    builds = {}
    if os.environ.get("BENCH_BUILD_TIMES", "1") != "0":
        say("7. Build times: an incremental cargo test after a one-line change; make test from a fresh clone")
        builds = build_times(target)
        say(f"   {builds}")

    write_results(args, results, calls, drain, scale, sizes, zips, time.time() - started, list(variants),
                  sdk_crates, profiles, builds)


# The sections this script writes; every other `## ` section of RESULTS.md is hand-written
# (readings, the simulator's long runs, incidents.py's and hub.py's tables) and is kept.
GENERATED = ("## Cold start", "## What each binary links", "## What init spends", "## spot-interruption: calls before",
             "## AWS calls per event", "## Scale:", "## Build times", "## Method", "## Errors")


def kept_sections():
    path = ROOT / "bench/RESULTS.md"
    old = path.read_text() if path.exists() else ""
    return [sec.rstrip("\n") + "\n" for sec in re.split(r"(?m)^(?=## )", old)
            if sec.startswith("## ") and not sec.startswith(GENERATED)]


def write_results(args, results, calls, drain, scale, sizes, zips, took, variants, sdk_crates, profiles, builds):
    r, py = results["spot-interruption"], results["python twin of spot-interruption"]
    ratio = lambda a, b: (b["median"] / a["median"]) if a and b and a["median"] else None
    lines = [
        "# fleetguard benchmark",
        "",
        f"Measured by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, in one run of {took / 60:.0f} min.",
        f"Machine: {machine()}.",
        "",
        "## Cold start, invocations, memory, size",
        "",
        f"Medians of {args.runs} fresh processes (min–max). Cold start: process start to its first `GET …/invocation/next`, every client built. "
        "First and warm: event served to response received, against moto on loopback. Peak RSS: the process's VmHWM after a cold start and 10 invocations.",
        "",
        "| function | cold start | × faster than the twin | first invocation | warm invocation | peak RSS | release binary (x86_64) | arm64 zip |",
        "|---|---|---|---|---|---|---|---|",
    ]
    q = lambda a, b: f"{ratio(a, b):.1f}×" if ratio(a, b) else "–"
    for name in FUNCTIONS + variants + ["python twin of spot-interruption"]:
        x = results[name]
        size = f"{sizes[name] / 1e6:.2f} MB" if name in sizes else "–"
        z = f"{zips[name] / 1e6:.2f} MB" if name in zips else "–"
        faster = q(x["init"], py["init"]) if not name.startswith("python") else "–"
        lines.append(f"| {name} | {fmt(x['init'])} | {faster} | {fmt(x['first'])} | {fmt(x['warm'])} | {fmt(x['rss'], 'MB')} | {size} | {z} |")
    lines += [
        "",
        f"Rust spot-interruption against its Python twin, same run: cold start {q(r['init'], py['init'])} faster, "
        f"first invocation {q(r['first'], py['first'])}, warm {q(r['warm'], py['warm'])}, peak RSS {q(r['rss'], py['rss'])} smaller.",
        "",
        f"alarm-fanout's release binary is {sizes['alarm-fanout'] / sizes['spot-interruption'] * 100:.0f} % of spot-interruption's."
        if "alarm-fanout" in sizes and "spot-interruption" in sizes else "",
        "",
        "## What each binary links",
        "",
        "AWS SDK crates in `cargo tree -p <function> -e normal` (`aws-sdk-sts` comes with `aws-config`'s credential providers):",
        "",
        "| function | SDK crates |",
        "|---|---|",
    ]
    for f in FUNCTIONS:
        lines.append(f"| {f} | {', '.join(sdk_crates.get(f, []))} |")
    lines += [
        "",
        "## What init spends its time on",
        "",
        "One cold start of each under `strace -f`, up to its first `GET …/invocation/next`:",
        "",
        "| function | syscalls | files opened | of which certificates | most frequent syscalls |",
        "|---|---|---|---|---|",
    ]
    for name, p in profiles.items():
        lines.append(f"| {name} | {p['syscalls']} | {p['files_opened']} | {p['certificate_files']} | {p['top']} |")
    lines += [
        "",
        "## spot-interruption: calls before the drain",
        "",
        "| | AWS calls before the drain call | of which ECS calls per searched cluster | event served → drain call issued | calls before it |",
        "|---|---|---|---|---|",
    ]
    for name, d in drain.items():
        ops = d["ops"] or []
        per_cluster = sum(1 for o in ops if o in ("ListContainerInstances", "DescribeContainerInstances"))
        lines.append(f"| {name} | {fmt(d['calls_before'], '', 0)} | {per_cluster} | {fmt(d['ms'])} | {', '.join(ops)} |")
    lines += ["", "One cluster in the account. The group lookup (`DescribeAutoScalingInstances`, `DescribeAutoScalingGroups`: the `MANAGED_ASG_TAG` check) runs in parallel with the cluster search in Rust and before it in Python; `ListClusters` is made once per execution environment (this is a cold start).", "",
              "## AWS calls per event, by operation (first run)", "", "| function | event | calls | by operation |", "|---|---|---|---|"]
    for name, per in calls.items():
        for dt, n, ops in per:
            lines.append(f"| {name} | {dt} | {n} | {', '.join(f'{k} {v}' for k, v in sorted(ops.items()))} |")
    def scale_line(what, x):
        return (f"| {what} | {x['calls']} | {x['ms']:.0f} ms | " + ", ".join(f"{k} {v}" for k, v in sorted(x["ops"].items()))
                + (f" ERROR: {x['error']}" if x["error"] else "") + " |")
    lines += ["", f"## Scale: the asg-lifecycle sweep over {scale['instances']} draining container instances in Terminating:Wait", "",
              "moto on loopback, one group, one cluster, AWS's page sizes.", "",
              "| sweep | AWS calls | time | by operation |", "|---|---|---|---|",
              scale_line("every drain just started, 300 s heartbeat timeout: all heartbeated", scale),
              scale_line("one-hour timeout, drains 10 min old: first sweep of an execution environment", scale["first"]),
              scale_line("the next minute: a steady-state minute", scale["steady"]),
              ""] + (["## Build times", "", "| build | time | result |", "|---|---|---|",
                    f"| `cargo test -p spot-interruption` after a one-line change in its handler (warm target) | {builds['incremental']['s']:.0f} s | {'ok' if builds['incremental']['ok'] else 'FAILED'} |",
                    f"| fresh clone, empty target directory: `bash .ci/run` (`make test`) | {builds['fresh']['s'] / 60:.1f} min | {'ok' if builds['fresh']['ok'] else 'FAILED'}: {builds['fresh']['summary']} |",
                    ""] if builds else []) + kept_sections() + [
              "## Method", "", __doc__.split("Method (also written into RESULTS.md):", 1)[1].strip(), ""]
    errors = {n: x["errors"] for n, x in results.items() if x["errors"]}
    if errors:
        lines += ["## Errors", "", "```", json.dumps(errors, indent=1)[:4000], "```", ""]
    text = "\n".join(lines)
    (ROOT / "bench/RESULTS.md").write_text(text)
    say()
    say(text)


if __name__ == "__main__":
    main()
