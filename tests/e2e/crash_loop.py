#!/usr/bin/env python3
"""The rounds and checks of crash-loop.sh (see there for what is checked and why).

Every random choice comes from one random.Random(seed), drawn on the main thread, so a seed repeats the
same plan (the moments it lands on in the service's work still depend on the machine).

Expected state, kept here and never taken from the service:
  jobs[id] = {"target", "variant", "acked": submissions answered 2xx}
  unacked  = submissions whose answer never came (the kill won the race): their job may exist or not
The variant of a job is part of its target's file name (ds/VARIANT-N.qcow2).
"""
import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Service:
    current = None  # the running child, for the clean-up in __main__

    def __init__(self, args):
        self.args = args
        self.proc = None
        self.log = open(os.path.join(args.work, "serve.log"), "ab")

    def start(self, wait=True):
        self.log.write(b"=== start\n")
        self.log.flush()
        self.proc = subprocess.Popen([self.args.coldscan, "serve", "--config", self.args.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        Service.current = self.proc
        if wait:
            self.wait_healthy()

    def wait_healthy(self, seconds=180):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"coldscan serve exited at start-up with {self.proc.returncode}")
            try:
                if request(self.args.server, "GET", "/v1/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise Failure(f"coldscan serve did not answer /v1/healthz within {seconds} s")

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.write(b"=== SIGKILL\n")
        self.log.flush()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=300)


def request(server, method, path, body=None, timeout=30):
    """(status, parsed JSON or None); OSError when no answer came."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, None


class Record:
    """The expected state: what the API acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.jobs = {}
        self.unacked = []
        self.targets = []  # every target ever submitted, for resubmissions

    def submitted(self, target, variant, answer):
        with self.lock:
            if isinstance(answer, Exception):
                self.unacked.append({"target": target, "why": str(answer)})
                return None
            status, body = answer
            if not 200 <= status < 300:
                self.unacked.append({"target": target, "why": f"HTTP {status}: {body}"})
                return None
            job_id = body["jobs"][0]["id"]
            job = self.jobs.setdefault(job_id, {"target": target, "variant": variant, "acked": 0})
            # The same image is the same job: a resubmission must come back with the first id.
            check(job["target"] == target, f"{target}: id {job_id} belongs to {job['target']}")
            job["acked"] += 1
            if target not in self.targets:
                self.targets.append(target)
            return job_id

    def save(self, path):
        with self.lock, open(path, "w") as out:
            json.dump({"jobs": self.jobs, "unacked": self.unacked}, out, indent=1)


def submit(args, record, target, variant):
    try:
        answer = request(args.server, "POST", "/v1/scans", {"targets": [target]})
    except OSError as e:
        answer = e
    return record.submitted(target, variant, answer)


def running_jobs(args):
    try:
        status, body = request(args.server, "GET", "/v1/scans", timeout=5)
    except OSError:
        return None
    if status != 200:
        return None
    return sum(1 for job in body["jobs"] if job["status"] == "running")


def file_outcomes(report):
    """(device, path) -> (outcome, signatures) for every file that is not CLEAN, and the counts."""
    outcomes = {}
    for d in report["detections"]:
        key = (d["device"], d.get("path_hex", d["path"]))
        outcome = outcomes.setdefault(key, ["INFECTED", set()])
        outcome[1].add((d["engine"], d["signature"]))
    for e in report["errors"]:
        if "path" not in e:
            outcomes[("", e["outcome"])] = [e["outcome"], set()]  # a failed target or filesystem
            continue
        key = (e["device"], e.get("path_hex", e["path"]))
        outcome = outcomes.setdefault(key, [e["outcome"], set()])
        if outcome[0] != "INFECTED":
            outcome[0] = e["outcome"]
    return {k: (v[0], sorted(v[1])) for k, v in outcomes.items()}, report["counts"]


def differences(a, b, where=""):
    """Where two JSON documents differ (paths), for messages."""
    if type(a) is not type(b):
        return [f"{where}: {a!r:.60} vs {b!r:.60}"]
    if isinstance(a, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{where}/{key}: only in one")
            else:
                out += differences(a[key], b[key], f"{where}/{key}")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r:.60} vs {b!r:.60}"]


def compare(job_id, report, reference):
    got, got_counts = file_outcomes(report)
    want, want_counts = file_outcomes(reference)
    problems = []
    for key, (outcome, signatures) in sorted(want.items()):
        if key not in got:
            problems.append(f"{key[1]!r}: CLEAN, the reference says {outcome} {signatures}")
        elif got[key] != (outcome, signatures):
            problems.append(f"{key[1]!r}: {got[key]}, the reference says {(outcome, signatures)}")
    for key, outcome in sorted(got.items()):
        if key not in want:
            problems.append(f"{key[1]!r}: {outcome}, the reference says CLEAN")
    if got_counts != want_counts:
        problems.append(f"counts {got_counts}, the reference has {want_counts}")
    check(not problems, f"job {job_id}: the report differs from a plain scan:\n  " + "\n  ".join(problems))


def main():
    parser = argparse.ArgumentParser()
    for name in ("coldscan", "config", "work", "server"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    args = parser.parse_args()
    work = args.work
    state = os.path.join(work, "state")
    rng = random.Random(args.seed)
    variants = sorted(name[:-len(".qcow2")] for name in os.listdir(os.path.join(work, "images")))
    references = {v: json.load(open(os.path.join(work, "reference", v + ".json"))) for v in variants}
    record = Record()
    service = Service(args)
    copies = collections.Counter()

    def new_target():
        variant = rng.choice(variants)
        copies[variant] += 1
        target = os.path.join(work, "ds", f"{variant}-{copies[variant]}.qcow2")
        shutil.copyfile(os.path.join(work, "images", variant + ".qcow2"), target)  # a new file: a new job
        return target, variant

    def variant_of(target):
        return os.path.basename(target).rsplit("-", 1)[0]

    killed_in_scan = 0
    started = time.monotonic()
    for round_no in range(1, args.rounds + 1):
        # Every fifth round is killed during start-up and recovery, before the API answers.
        early = round_no % 5 == 0
        plan = [new_target()]
        if record.targets and rng.random() < 0.5:
            target = rng.choice(record.targets)
            plan.append((target, variant_of(target)))
        racing = new_target() if rng.random() < 0.5 else plan[-1]  # submitted while the kill is on its way
        delay = rng.uniform(0.0, 0.8) if early else rng.uniform(0.0, 4.0)
        race_at = rng.uniform(0.0, delay)
        if early:
            service.start(wait=False)
            time.sleep(delay)
            running = None
        else:
            service.start()
            for target, variant in plan:
                submit(args, record, target, variant)
            # The window where scans run: from the moment one is running.
            for _ in range(600):
                running = running_jobs(args)
                if running:
                    break
                time.sleep(0.1)
            raced = []

            def race():
                try:
                    submit(args, record, *racing)
                except Failure as e:
                    raced.append(e)

            racer = threading.Timer(race_at, race)
            racer.start()
            time.sleep(delay)
            running = running_jobs(args)
        service.kill()
        if not early:
            racer.join()
            if raced:
                raise raced[0]
        if running:
            killed_in_scan += 1
        print(f"round {round_no:2}: {'start-up ' if early else ''}kill after {delay:.2f} s, "
              f"{running if running is not None else '-'} scan(s) running, {len(record.jobs)} jobs acknowledged, "
              f"{len(record.unacked)} unanswered", flush=True)
        record.save(os.path.join(work, "expected-state.json"))

    print(f"--- {args.rounds} rounds in {time.monotonic() - started:.0f} s; "
          f"{killed_in_scan} kills landed while a scan ran")
    check(killed_in_scan >= max(1, args.rounds // 4),
          f"only {killed_in_scan} of {args.rounds} kills landed while a scan ran: the test did not test much")

    # The last start: everything acknowledged must finish.
    service.start()
    final = [new_target(), new_target()]
    if record.targets:
        target = rng.choice(record.targets)
        final.append((target, variant_of(target)))
    for target, variant in final:
        check(submit(args, record, target, variant) is not None, f"submit {target} to a healthy service failed")
    record.save(os.path.join(work, "expected-state.json"))
    deadline = time.monotonic() + 900
    while True:
        status, body = request(args.server, "GET", "/v1/scans")
        check(status == 200, f"GET /v1/scans: {status}")
        listed = {job["id"]: job for job in body["jobs"]}
        if all(job["status"] in ("succeeded", "failed", "cancelled", "dead_letter") for job in listed.values()):
            break
        check(time.monotonic() < deadline, "jobs still unfinished after 900 s: " +
              ", ".join(f"{i} {j['status']}" for i, j in listed.items() if j["status"] != "succeeded"))
        time.sleep(1)
    print(f"--- all {len(listed)} jobs finished ({len(record.jobs)} acknowledged, "
          f"{len(record.unacked)} submissions unanswered)")

    # 1. No acknowledged job lost; every job (acknowledged or one whose answer the kill ate) succeeded.
    for job_id in record.jobs:
        check(job_id in listed, f"job {job_id} ({record.jobs[job_id]['target']}) was acknowledged and is gone")
    for job_id, job in listed.items():
        check(job["status"] == "succeeded", f"job {job_id}: {job['status']} ({job['last_error']})")
        check(job["attempts"] == 0, f"job {job_id}: {job['attempts']} failed attempt(s): {job['last_error']}")
        if job_id not in record.jobs:
            unacked = [u["target"] for u in record.unacked]
            check(job["target"] in unacked, f"job {job_id} ({job['target']}) was never submitted")

    # 2. Each report equals a plain scan of its image, file by file.
    reports = {}
    for job_id, job in listed.items():
        path = os.path.join(state, "reports", job_id + ".json")
        check(os.path.exists(path), f"job {job_id}: no report at {path}")
        reports[job_id] = json.load(open(path))
        status, served = request(args.server, "GET", f"/v1/scans/{job_id}/report")
        check(status == 200, f"GET /v1/scans/{job_id}/report: {status}")
        differs = differences(reports[job_id], served)
        check(not differs, f"job {job_id}: the API serves another report than {path}: {differs[:5]}")
        compare(job_id, reports[job_id], references[variant_of(job["target"])])
    leftovers = [n for n in os.listdir(os.path.join(state, "reports")) if not n.endswith(".json")]
    check(not leftovers, f"half-written reports left: {leftovers}")

    # 3. Alerts: valid JSON lines; one per scan that found something, none for clean scans.
    alerts = []
    with open(os.path.join(state, "alerts.jsonl"), "rb") as f:
        raw = f.read()
    check(raw.endswith(b"\n"), "alerts.jsonl does not end with a whole line")
    for number, line in enumerate(raw.split(b"\n")[:-1], 1):
        try:
            alerts.append(json.loads(line))
        except ValueError as e:
            raise Failure(f"alerts.jsonl line {number} is not JSON ({e}): {line[:200]!r}")
    ids = collections.Counter(a["alert_id"] for a in alerts)
    check(all(n == 1 for n in ids.values()), f"duplicate alert ids: {[i for i, n in ids.items() if n > 1]}")
    per_job = collections.Counter(a["job"] for a in alerts)
    for job_id, job in listed.items():
        found = bool(reports[job_id]["detections"])
        check(per_job[job_id] == (1 if found else 0),
              f"job {job_id} ({job['target']}): {per_job[job_id]} alert(s), expected {1 if found else 0}")
    for alert in alerts:
        check(alert["job"] in listed, f"an alert for an unknown job: {alert['job']}")
        key = lambda ds: sorted((d.get("path_hex", d["path"]), d["signature"]) for d in ds)
        check(key(alert["detections"]) == key(reports[alert["job"]]["detections"]),
              f"alert {alert['alert_id']}: its detections differ from the report's")
    infected = sum(1 for j in listed if reports[j]["detections"])
    print(f"--- reports equal the plain scans; {len(alerts)} alerts for {infected} infected jobs")

    # 4. A clean stop, and nothing a killed service left behind survives a restart.
    check(service.stop() == 0, "coldscan serve did not exit 0 after SIGTERM")
    left = os.listdir(os.environ.get("TMPDIR", "/tmp")) if os.environ.get("TMPDIR") else []
    check(not left, f"temporary folders left behind: {left}")
    resubmitted = sum(1 for j in record.jobs.values() if j["acked"] > 1)
    print(f"--- {resubmitted} jobs were submitted more than once; clean stop; no temporary folder left")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if Service.current and Service.current.poll() is None:
            Service.current.kill()  # our own child: never leave a service behind on a failure
            Service.current.wait()
