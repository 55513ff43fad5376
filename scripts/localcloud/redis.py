"""A private redis-server (the local stand-in for ElastiCache), for the stack and the tests.

It lives under its own state folder on its own port, with AUTH when it listens off
loopback, and is stopped by the pid file it writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.localcloud.procs import ServiceError, pid_alive, read_pid, require_free_port, stop, wait_for


@dataclass
class Redis:
    state_dir: Path
    port: int
    host: str = "127.0.0.1"
    extra_binds: tuple[str, ...] = ()  # e.g. the address the agents' namespaces reach
    password: str = ""  # AUTH, as ElastiCache has; needed off loopback

    @property
    def dir(self) -> Path:
        return self.state_dir / "redis"

    @property
    def pid_path(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "logs" / "redis.log"

    @property
    def url(self) -> str:
        return self.url_for(self.host)

    def url_for(self, host: str) -> str:
        """The URL through one of the bound addresses."""
        auth = f"default:{self.password}@" if self.password else ""
        return f"redis://{auth}{host}:{self.port}/0"

    def pid(self) -> int | None:
        pid = read_pid(self.pid_path)
        return pid if pid and pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, log=print) -> None:
        if not shutil.which("redis-server"):
            raise ServiceError("redis-server not found; install with: apt-get install -y redis-server")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "redis.conf"
        bind_line = f"bind {' '.join((self.host, *self.extra_binds))}"
        if self.running():
            lines = conf.read_text().splitlines() if conf.exists() else []
            if bind_line in lines and (not self.password or f"requirepass {self.password}" in lines):
                log(f"  redis already running on {self.host}:{self.port}")
                return
            log("  redis runs with other settings; restarting it")
            self.stop()
        require_free_port(self.port, "Redis", self.host)
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    bind_line,
                    "protected-mode yes",
                    "daemonize yes",
                    f"pidfile {self.pid_path}",
                    f"logfile {self.log_path}",
                    f"dir {self.dir}",
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    *([f"requirepass {self.password}"] if self.password else []),
                    "",
                ]
            )
        )
        os.chmod(conf, 0o600)
        proc = subprocess.run(["redis-server", str(conf)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServiceError(
                f"redis-server failed to start: {proc.stderr.strip() or proc.stdout.strip()} (log: {self.log_path})"
            )
        wait_for(lambda: self.running() and self._ping(), 15, f"redis on port {self.port}")
        log(f"  redis up on {self.host}:{self.port}")

    def _ping(self) -> bool:
        import redis as redis_lib

        try:
            return bool(redis_lib.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis_lib.RedisError:
            return False

    def stop(self) -> None:
        pid = self.pid()
        if pid:
            stop(pid)
