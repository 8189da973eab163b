"""Rootful podman in a throw-away storage, for the compose stack test.

Everything podman keeps (images, containers, volumes) lives under one temporary folder, and its
Docker-compatible API socket is served by a `podman system service` in its own process group, so
`teardown` can leave nothing behind. The recipe (runc, lower ulimits, a Debian base built with
debootstrap, the host CA as a build secret) is the one that works on these machines; see
shared/CONTAINERS.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
NEEDED_TOOLS = ("podman", "runc", "debootstrap")
# The stack's fixed names (compose.yaml): removed at teardown even if `down` failed.
STACK_NETWORK = "event_platform"


def missing_requirement(pull: bool) -> str | None:
    """Why the stack test cannot run here, or None when it can.

    `pull`: the official images are pulled from their registries, so no Debian base is built.
    """
    needed = ("podman", "runc") if pull else NEEDED_TOOLS
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (.ci/run installs them with apt-get)"
    if podman_compose() is None:
        return "podman-compose is not installed (pip install -e '.[deploy-check]')"
    if os.geteuid() != 0:
        return "the stack test needs rootful podman (run as root)"
    if not pull and not APT_SOURCES.is_file():
        return f"no Debian mirror to build the base image from ({APT_SOURCES} is missing)"
    return None


def podman_compose() -> str | None:
    beside_python = Path(sys.executable).with_name("podman-compose")
    return str(beside_python) if beside_python.exists() else shutil.which("podman-compose")


def debian_mirror() -> str:
    """The mirror this machine's apt uses, read at run time and never written to the repo."""
    for line in APT_SOURCES.read_text().splitlines():
        if line.startswith("URIs:"):
            return line.split()[1]
    raise RuntimeError(f"no URIs: line in {APT_SOURCES}")


@dataclass
class Podman:
    """podman bound to one temporary storage and configuration."""

    root: Path
    env: dict[str, str] = field(init=False)
    socket: Path = field(init=False)
    service: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        containers_conf = self.root / "containers.conf"
        containers_conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
        )
        storage_conf = self.root / "storage.conf"
        storage_conf.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.root / "graph"}"\n'
            f'runroot = "{self.root / "run"}"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(containers_conf),
            "CONTAINERS_STORAGE_CONF": str(storage_conf),
        }
        self.socket = self.root / "api" / "podman.sock"

    def run(
        self, *args: str, check: bool = True, timeout: float = 600, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            ["podman", *args],
            env=self.env,
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and completed.returncode != 0:
            raise RuntimeError(
                f"podman {' '.join(args[:3])} failed ({completed.returncode}): "
                f"{completed.stderr[-3000:]}"
            )
        return completed

    def build_debian_base(self, tag: str, timeout: float = 600) -> None:
        """A bookworm image with Python 3.11 from Debian: the stand-in for python:3.11-slim."""
        rootfs = self.root / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(rootfs),
                debian_mirror(),
            ],
            capture_output=True,
            check=True,
            timeout=timeout,
        )
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "-", tag],
            stdin=tar.stdout,
            env=self.env,
            capture_output=True,
            timeout=300,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0:
            raise RuntimeError(f"podman import failed: {imported.stderr.decode()[-2000:]}")
        shutil.rmtree(rootfs)

    def build(
        self,
        tag: str,
        context: Path,
        base: str | None,
        containerfile: Path | None = None,
        timeout: float = 1200,
    ) -> None:
        args = ["build", "-q", "-t", tag]
        if base is not None:
            args += ["--build-arg", f"BASE_IMAGE={base}"]
        if HOST_CA_BUNDLE.is_file():
            args += ["--secret", f"id=ca,src={HOST_CA_BUNDLE}"]
        if containerfile is not None:
            args += ["-f", str(containerfile)]
        self.run(*args, str(context), timeout=timeout)

    def start_service(self) -> None:
        """The Docker-compatible API the daemon's run launcher talks to."""
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "podman-service.log").open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("podman system service did not create its socket")
            time.sleep(0.2)
        # The containers run as an unprivileged user with the socket's group (DOCKER_SOCKET_GID).
        self.socket.chmod(0o660)

    def stop_service(self) -> None:
        if self.service is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.service.pid, signal.SIGTERM)
        try:
            self.service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.service.pid, signal.SIGKILL)
            self.service.wait(timeout=10)
        self.service = None

    def leftovers(self) -> dict[str, list[str]]:
        """What is still there in this storage: empty lists after a clean teardown."""
        found = {
            "containers": self.run("ps", "-aq", check=False).stdout.split(),
            "pods": self.run("pod", "ps", "-q", check=False).stdout.split(),
            "volumes": self.run("volume", "ls", "-q", check=False).stdout.split(),
            "networks": [
                name
                for name in self.run(
                    "network", "ls", "--format", "{{.Name}}", check=False
                ).stdout.split()
                if name == STACK_NETWORK
            ],
        }
        if self.service is not None and self.service.poll() is None:
            found["service"] = [str(self.service.pid)]
        return found

    def teardown(self) -> dict[str, list[str]]:
        """Remove every container, pod, volume and image of this storage, the stack's network
        and the API service; returns what could not be removed."""
        self.run("rm", "--all", "--force", "--time", "5", check=False, timeout=300)
        self.run("pod", "rm", "--all", "--force", check=False, timeout=120)
        self.run("volume", "rm", "--all", "--force", check=False, timeout=120)
        self.run("network", "rm", "--force", STACK_NETWORK, check=False, timeout=120)
        self.stop_service()
        left = self.leftovers()
        self.run("rmi", "--all", "--force", check=False, timeout=300)
        return {kind: names for kind, names in left.items() if names}


@contextlib.contextmanager
def podman_storage(root: Path) -> Iterator[Podman]:
    """A Podman whose storage is removed, whatever happens, when the block ends."""
    podman = Podman(root)
    try:
        yield podman
    finally:
        podman.teardown()
        shutil.rmtree(root, ignore_errors=True)
