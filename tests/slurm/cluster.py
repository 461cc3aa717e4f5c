"""A real Slurm on 127.0.0.1 for the tests: Debian's munged, slurmctld and two slurmd node
daemons (``slurmd -N n1``, ``slurmd -N n2``) on one host, from a generated ``slurm.conf``.

Everything lives in one folder of its own (config, munge key and socket, spool, state, logs,
pid files); nothing in /etc is touched: clients find the cluster through ``SLURM_CONF``, and
Slurm finds munged through ``AuthInfo=socket=``. ``stop()`` ends the daemons by the process
ids they wrote. Needs root (slurmd starts jobs as their user) and the packages ``slurmctld
slurmd slurm-client munge``.

    python -m tests.slurm.cluster up DIR     # prints the SLURM_CONF to export
    python -m tests.slurm.cluster down DIR
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

NODES = ("n1", "n2")
DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch")
CPUS = 2  # per node daemon: both advertise this host's cores (the jobs share them)


def missing() -> str | None:
    """Why a local Slurm cannot start here, or None."""
    if os.geteuid() != 0:
        return "the local Slurm needs root (slurmd runs jobs as their user)"
    absent = [d for d in DAEMONS if not Path(d).exists()]
    if absent:
        return (f"{', '.join(absent)} missing: apt-get install slurmctld slurmd slurm-client "
                "munge")
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (Debian's munge package makes it)"
    return None


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def slurm_conf(d: Path, ports: list[int], memory_mb: int) -> str:
    host = socket.gethostname().split(".")[0]
    ctld, *node_ports = ports
    lines = [
        "ClusterName=cnnbench-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ctld}",
        "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge",
        f"AuthInfo=socket={d / 'munge' / 'munge.sock'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
        "ReturnToService=2", "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        # Keep finished jobs' end states visible (no accounting database to ask instead).
        "MinJobAge=3600",
        # Slurm's smallest time limit is a minute: end a job at it (no grace period), and
        # kill it soon after the SIGTERM, so the TIMEOUT test stays short.
        "OverTimeLimit=0", "KillWait=5", "MessageTimeout=10", "InactiveLimit=0",
        "SchedulerType=sched/builtin", "SchedulerParameters=sched_interval=1",
        f"SlurmdSpoolDir={d / 'spool' / 'slurmd-%n'}",
        f"StateSaveLocation={d / 'state'}",
        f"SlurmctldPidFile={d / 'run' / 'slurmctld.pid'}",
        f"SlurmdPidFile={d / 'run' / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={d / 'log' / 'slurmd-%n.log'}",
        "SlurmctldDebug=info", "SlurmdDebug=info",
    ]
    for name, port in zip(NODES, node_ports, strict=True):
        lines.append(f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} "
                     f"CPUs={CPUS} RealMemory={memory_mb} State=UNKNOWN")
    lines.append(f"PartitionName=debug Nodes={','.join(NODES)} Default=YES MaxTime=INFINITE "
                 "OverSubscribe=YES State=UP")
    return "\n".join(lines) + "\n"


class LocalSlurm:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.conf = self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def _munge(self) -> None:
        m = self.root / "munge"
        m.mkdir(mode=0o700)
        pw = pwd.getpwnam("munge")
        key = m / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for p in (m, key):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        # munged checks that no one else can write along the socket's path.
        for parent in (self.root,):
            parent.chmod(0o755)
        self._daemon(
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force",
             f"--key-file={key}", f"--socket={m / 'munge.sock'}", f"--pid-file={m / 'munged.pid'}",
             f"--log-file={m / 'munged.log'}", f"--seed-file={m / 'munged.seed'}"])

    def _daemon(self, cmd: list[str]) -> None:
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {(r.stderr or r.stdout).strip()} "
                               f"(logs in {self.root / 'log'})")

    def start(self, timeout_s: float = 60) -> None:
        for sub in ("spool", "state", "run", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._munge()
        mem = min(4096, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20 // 2)
        self.conf.write_text(slurm_conf(self.root, _free_ports(1 + len(NODES)), mem))
        self._daemon(["/usr/sbin/slurmctld", "-i"])
        for n in NODES:
            self._daemon(["/usr/sbin/slurmd", "-N", n])
        self.wait_idle(timeout_s)

    def wait_idle(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        out = ""
        while time.monotonic() < end:
            r = subprocess.run(["sinfo", "--Node", "--noheader", "--format=%N %t"], env=self.env,
                               capture_output=True, text=True, timeout=30)
            out = r.stdout + r.stderr
            states = dict(line.split() for line in r.stdout.splitlines() if line.strip())
            if set(states) == set(NODES) and all(s == "idle" for s in states.values()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the local Slurm's nodes did not come up idle: {out.strip()} "
                           f"(logs in {self.root / 'log'})")

    def _pids(self) -> list[Path]:
        run = self.root / "run"
        files = [*sorted(run.glob("slurmd-*.pid")), run / "slurmctld.pid"]
        return [*files, self.root / "munge" / "munged.pid"]

    def drain(self, timeout_s: float = 30) -> None:
        """Cancel every job and wait until none is left: a node daemon stopped under a
        running job leaves its slurmstepd behind."""
        env = self.env
        try:
            subprocess.run(["scancel", "--full", f"--user={os.getuid()}"], env=env,
                           capture_output=True, timeout=30)
            end = time.monotonic() + timeout_s
            while time.monotonic() < end:
                r = subprocess.run(["squeue", "--noheader", "--format=%i"], env=env,
                                   capture_output=True, text=True, timeout=30)
                if r.returncode or not r.stdout.strip():
                    return
                time.sleep(0.5)
        except (OSError, subprocess.TimeoutExpired):
            return

    def stop(self) -> None:
        """Drain the queue; then SIGTERM each daemon by its pid file (munged last: the
        others talk through it), and SIGKILL what is left after a few seconds."""
        if self.conf.exists():
            self.drain()
        pids = []
        for f in self._pids():
            try:
                pid = int(f.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            pids.append(pid)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        end = time.monotonic() + 10
        for pid in pids:
            while time.monotonic() < end and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours is gone for our purposes
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print(__doc__.strip().splitlines()[-2:], file=sys.stderr)
        return 2
    cluster = LocalSlurm(Path(argv[1]))
    if argv[0] == "up":
        why = missing()
        if why:
            print(why, file=sys.stderr)
            return 1
        if cluster.root.exists() and any(cluster.root.iterdir()):
            shutil.rmtree(cluster.root)
        cluster.root.mkdir(parents=True, exist_ok=True)
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}")
    else:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
