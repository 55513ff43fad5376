"""A private PostgreSQL (the local stand-in for RDS), for the stack and the tests.

It lives under its own state folder (e.g. `.local/run/` or `.local/test/`) on its
own port, bound to a loopback address. Nothing here touches a system instance:
the server is started from the data folder we own and stopped by its pid file.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.localcloud.procs import ServiceError, pid_alive, read_pid, require_free_port, stop

DB_NAME = "hostchecker"
DB_USER = "hostchecker"


def postgres_bindir() -> Path | None:
    for candidate in ["/usr/lib/postgresql/15/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]:
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    return None


def _postgres_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root; as root we run it as `postgres`."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam("postgres")


# Where a cluster lives when the `postgres` user cannot reach the checkout (e.g. a clone
# under a 0700 folder such as `mktemp -d` makes): one folder per state folder, by hash.
EXTERNAL_PG_ROOT = Path("/var/tmp/hostchecker-postgres")


def reachable_by(user: pwd.struct_passwd, path: Path) -> bool:
    """Whether `user` may traverse every existing folder down to `path` (mode bits)."""
    for folder in [path, *path.parents]:
        if not folder.exists():
            continue
        st = folder.stat()
        if st.st_uid == user.pw_uid:
            bit = 0o100
        elif st.st_gid == user.pw_gid:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True


@dataclass
class Postgres:
    state_dir: Path
    port: int
    host: str = "127.0.0.1"

    @functools.cached_property
    def home(self) -> Path | None:
        """None: the cluster lives in the state folder. Otherwise, as root, a folder under
        EXTERNAL_PG_ROOT owned by `postgres`, because PostgreSQL refuses to run as root
        and its user cannot reach the state folder."""
        user = _postgres_user()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:16]
        external = EXTERNAL_PG_ROOT / digest
        if user is None or (self.state_dir / "postgres" / "PG_VERSION").exists():
            return None
        if (external / "data" / "PG_VERSION").exists() or not reachable_by(user, self.state_dir):
            return external
        logs = self.state_dir / "logs"  # PostgreSQL writes its log here, as its own user
        logs.mkdir(exist_ok=True)
        os.chmod(logs, 0o755)
        return None

    @property
    def data_dir(self) -> Path:
        return self.home / "data" if self.home else self.state_dir / "postgres"

    @property
    def log_path(self) -> Path:
        return self.home / "postgres.log" if self.home else self.state_dir / "logs" / "postgres.log"

    def _prepare_home(self) -> None:
        if self.home is None:
            return
        EXTERNAL_PG_ROOT.mkdir(mode=0o755, exist_ok=True)
        os.chmod(EXTERNAL_PG_ROOT, 0o755)
        self.home.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.home, 0o700)
        self._chown(self.home)
        (self.home / "STATE_DIR").write_text(f"{self.state_dir.resolve()}\n")  # whose cluster this is
        link = self.state_dir / "logs" / "postgres.log"  # so `make logs` still shows it
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to(self.log_path)

    def remove_data(self) -> None:
        """Delete the cluster (it must be stopped); `make clean` calls this."""
        shutil.rmtree(self.home if self.home else self.data_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://{DB_USER}@{self.host}:{self.port}/{DB_NAME}"

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        user = _postgres_user()
        if user is not None:
            argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd="/")
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ServiceError(f"{Path(argv[-1] if user else argv[0]).name}: {' | '.join(tail)} (log: {self.log_path})")
        return proc

    def _chown(self, path: Path) -> None:
        user = _postgres_user()
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)

    def pid(self) -> int | None:
        pid = read_pid(self.data_dir / "postmaster.pid")
        return pid if pid and pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, log=print) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise ServiceError("PostgreSQL server binaries not found; install with: apt-get install -y postgresql")
        if self.running():
            log(f"  postgres already running on {self.host}:{self.port}")
            return
        require_free_port(self.port, "PostgreSQL", self.host)
        self._prepare_home()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            log(f"  initialising a private PostgreSQL cluster in {self.data_dir}")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.data_dir, 0o700)
            self._chown(self.data_dir)
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    DB_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            )
        self.log_path.touch()
        self._chown(self.log_path)
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories="
            f"{self.data_dir} -c fsync=on -c max_connections=200"
            # When each transaction committed (pg_xact_commit_timestamp): the bench's "result stored"
            # and "accepted" stamps; now() is a transaction's start, not its commit.
            " -c track_commit_timestamp=on"
        )
        self._run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ]
        )
        self._ensure_database()
        log(f"  postgres up on {self.host}:{self.port}")

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://{DB_USER}@{self.host}:{self.port}/postgres", autocommit=True, connect_timeout=5
        ) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')

    def stop(self) -> None:
        if not self.running():
            return
        bindir = postgres_bindir()
        pid = self.pid()
        self._run([str(bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], check=False)
        if pid:
            stop(pid)
