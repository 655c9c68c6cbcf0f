"""A private single-node Slurm cluster for the tests, started from Debian's packages.

It installs nothing (`.ci/run` installs ``slurm-wlm`` and ``munge``): it writes a one-node
``slurm.conf`` and a fresh MUNGE key under a temporary folder, starts ``munged``, ``slurmctld`` and
``slurmd`` in the foreground on free ports with every state, spool, socket and log file in that
folder, waits for the node to be idle, and stops everything by PID afterwards. The cluster's clients
(sbatch, squeue, scontrol) find it through ``SLURM_CONF``; nothing under /etc is touched.

Slurm runs its daemons as root here (SlurmUser=root, SlurmdUser=root); without root, or without the
packages, the tests skip with the reason, or fail where CMHBENCH_REQUIRE_SLURM=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
PARTITION = "debug"


def missing_reason() -> str | None:
    """Why no cluster can be started here, or None."""
    absent = [name for name in DAEMONS if shutil.which(name) is None]
    if absent:
        return (f"Slurm/MUNGE not installed ({', '.join(absent)} not on PATH): "
                "apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        return "the private Slurm cluster runs its daemons as root (SlurmUser=root); run the tests as root"
    return None


def skip_or_fail_without_slurm() -> None:
    reason = missing_reason()
    if reason:
        if os.environ.get("CMHBENCH_REQUIRE_SLURM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 2048


@dataclass
class SlurmCluster:
    folder: Path
    node: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a client command (or `cmhbench sweep`) needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(list(args), capture_output=True, text=True, timeout=60,
                                env={**os.environ, **self.env})
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted((self.folder / "log").glob("*")))

    def start(self) -> None:
        for part in ("state", "spool", "munge", "log"):
            (self.folder / part).mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder / "munge", 0o700)
        key = self.folder / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}", "--bits=1024"], check=True,
                       capture_output=True)
        key.chmod(0o600)
        munge_socket = self.folder / "munge" / "munge.socket"
        controller_port = _free_port()
        node_port = _free_port()
        while node_port == controller_port:
            node_port = _free_port()
        self.conf.write_text(_conf(self, munge_socket, controller_port, node_port))
        log = self.folder / "log"
        # --force: munged refuses sockets under world-writable folders such as /tmp without it
        self._spawn(["munged", "--foreground", "--force", f"--socket={munge_socket}", f"--key-file={key}",
                     f"--pid-file={self.folder / 'munge' / 'munged.pid'}",
                     f"--seed-file={self.folder / 'munge' / 'munged.seed'}"], log / "munged.out")
        self._wait(lambda: munge_socket.exists(), 20, "munged's socket")
        self._spawn(["slurmctld", "-D", "-f", str(self.conf)], log / "slurmctld.out")
        self._spawn(["slurmd", "-D", "-f", str(self.conf), "-N", self.node], log / "slurmd.out")
        self._wait(lambda: self.command("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle",
                   60, "the node to be idle")

    def _spawn(self, args: list[str], output: Path) -> None:
        handle = open(output, "w")
        self.processes.append(subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                               env={**os.environ, **self.env}, start_new_session=True))
        handle.close()

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a Slurm daemon exited while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}:\n{self.logs()}")

    def cancel_all(self) -> None:
        """Cancel every job and wait until the queue reads empty (so no job leaks into the next test)."""
        self.command("scancel", "--full", "--user", "root", check=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            queue = self.command("squeue", "-h", check=False)
            if queue.returncode == 0 and not queue.stdout.strip():
                return
            time.sleep(0.5)

    def _job_processes(self) -> list[int]:
        """Processes started for this cluster (daemons, job steps, their children): they carry its
        SLURM_CONF in their environment (sbatch --export=ALL passes it on to every task)."""
        marker = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def stop(self) -> None:
        if self.processes and all(p.poll() is None for p in self.processes):
            self.cancel_all()
        for process in reversed(self.processes):  # slurmd, slurmctld, then munged
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in self._job_processes():  # job steps run in sessions of their own: stop them by PID
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _conf(cluster: SlurmCluster, munge_socket: Path, controller_port: int, node_port: int) -> str:
    folder = cluster.folder
    cpus = os.cpu_count() or 1
    return "\n".join([
        "ClusterName=cmhbench-test",
        f"SlurmctldHost={cluster.node}(127.0.0.1)",
        "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={controller_port}", f"SlurmdPort={node_port}",
        # cred_expire also sets how long Slurm holds a requeued job before it may run again (120 s
        # by default); 15 s keeps the requeue test short and still leaves time to see the job pending
        "AuthType=auth/munge", f"AuthInfo=socket={munge_socket},cred_expire=15", "CredType=cred/munge",
        f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
        # no accounting, as on many small clusters: nothing may depend on sacct
        "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none", "MpiDefault=none", "ReturnToService=2",
        "SchedulerParameters=sched_interval=2", "MinJobAge=600",
        f"NodeName={cluster.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={int(_memory_mb() * 0.8)} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={cluster.node} Default=YES MaxTime=INFINITE State=UP",
        ""])


def start_cluster(folder: Path) -> SlurmCluster:
    # slurmctld only runs where SlurmctldHost names this host
    cluster = SlurmCluster(folder, node=socket.gethostname().split(".")[0])
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
