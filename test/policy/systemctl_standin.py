"""
A systemctl-compatible stand-in for machines where systemd is not PID 1 (test only).

It does what systemd does for a simple service, for real: `start` runs the unit's command as a
new process placed in the unit's own memory cgroup (cgroup v1, created under
/sys/fs/cgroup/memory) before it executes; `stop` sends SIGTERM (SIGKILL after 5 s) to every
process of that cgroup; `restart` is both; `show -p LoadState -p ActiveState -p ControlGroup`
and `is-active` report from the cgroup's processes; `set-property --runtime UNIT MemoryMax=N`
writes the cgroup's limit. Units are described in <state dir>/units.json:
{"ollama-x.service": {"cgroup": "/shb/ollama-x.service", "argv": [...], "log": "..."}}.
A file <state dir>/deny makes every changing verb fail as an unprivileged caller sees it.

Usage: systemctl_standin.py --state DIR VERB ARGS...
"""

import json
import os
import signal
import subprocess
import sys
import time

CGROUP_V1_MEMORY = "/sys/fs/cgroup/memory"


def load_units(state_dir):
    with open(os.path.join(state_dir, "units.json"), "r", encoding="utf-8") as handle:
        return json.load(handle)


def cgroup_dir(unit):
    return os.path.join(CGROUP_V1_MEMORY, unit["cgroup"].lstrip("/"))


def pids(unit):
    try:
        with open(os.path.join(cgroup_dir(unit), "cgroup.procs"), encoding="ascii") as handle:
            return [int(line) for line in handle if line.strip()]
    except OSError:
        return []


def alive(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            return not any(line.startswith("State:") and "Z" in line.split()[1]
                           for line in handle)
    except OSError:
        return False


def start(unit):
    if any(alive(p) for p in pids(unit)):
        return 0
    directory = cgroup_dir(unit)
    os.makedirs(directory, exist_ok=True)
    procs = os.path.join(directory, "cgroup.procs")

    def enter_cgroup():
        os.setsid()
        with open(procs, "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))

    log = open(unit.get("log") or os.devnull, "ab")
    subprocess.Popen(unit["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     preexec_fn=enter_cgroup, close_fds=True)
    return 0


def stop(unit):
    running = [p for p in pids(unit) if alive(p)]
    for pid in running:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + 5.0
    while time.monotonic() < end and any(alive(p) for p in pids(unit)):
        time.sleep(0.02)
    for pid in pids(unit):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return 0


def show(name, unit, keys):
    active = unit is not None and any(alive(p) for p in pids(unit))
    values = {
        "LoadState": "loaded" if unit is not None else "not-found",
        "ActiveState": "active" if active else "inactive",
        "ControlGroup": unit["cgroup"] if active else "",
        "Id": name,
    }
    for key in keys or list(values):
        print(f"{key}={values.get(key, '')}")
    return 0


def main(argv):
    if len(argv) < 3 or argv[0] != "--state":
        print("usage: systemctl_standin.py --state DIR VERB ARGS...", file=sys.stderr)
        return 2
    state_dir, verb, args = argv[1], argv[2], argv[3:]
    units = load_units(state_dir)
    names = [a for a in args if not a.startswith("-") and "=" not in a]
    keys = [args[i + 1] for i, a in enumerate(args) if a == "-p" and i + 1 < len(args)]
    names = [n for n in names if n not in keys]
    name = names[0] if names else ""
    unit = units.get(name)
    if verb == "show":
        return show(name, unit, keys)
    if verb == "is-active":
        active = unit is not None and any(alive(p) for p in pids(unit))
        print("active" if active else "inactive")
        return 0 if active else 3
    if unit is None:
        print(f"Failed to {verb} {name}: Unit {name} not found.", file=sys.stderr)
        return 5
    if os.path.exists(os.path.join(state_dir, "deny")):
        print(f"Failed to {verb} {name}: Access denied", file=sys.stderr)
        return 4
    if verb == "start":
        return start(unit)
    if verb == "stop":
        return stop(unit)
    if verb == "restart":
        stop(unit)
        return start(unit)
    if verb == "set-property":
        for arg in args:
            if arg.startswith("MemoryMax="):
                with open(os.path.join(cgroup_dir(unit), "memory.limit_in_bytes"), "w",
                          encoding="ascii") as handle:
                    handle.write(arg.split("=", 1)[1])
        return 0
    print(f"unknown verb {verb}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
