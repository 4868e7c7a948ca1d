"""Will logging out kill detached jobs? systemd-logind's KillUserProcesses, lingering, and `systemd-run --user`.

A detached job survives SIGHUP and the SSH connection, but not logind: with `KillUserProcesses=yes` it
kills every process of the session's scope at logout unless the user lingers (`loginctl enable-linger`).
Nothing here raises: a box without systemd simply has nothing to warn about.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CONF = Path("/etc/systemd/logind.conf")
DROP_IN_DIRS = (
    Path("/usr/lib/systemd/logind.conf.d"),
    Path("/run/systemd/logind.conf.d"),
    Path("/etc/systemd/logind.conf.d"),
)
SYSTEMD_RUN_ENV = "FTBENCH_SYSTEMD_RUN"
TRUE = ("yes", "true", "on", "1")


@dataclass(frozen=True)
class LogindSettings:
    kill_user_processes: bool = False
    kill_exclude_users: tuple[str, ...] = ("root",)
    source: str = ""  # the file that set KillUserProcesses last


def parse_logind(files: list[tuple[str, str]]) -> LogindSettings:
    """Settings from (path, text) pairs in precedence order (later wins), as logind reads its [Login] section."""
    kill, exclude, source = False, ("root",), ""
    for path, text in files:
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
                continue
            key, sep, value = line.partition("=")
            if section != "Login" or not sep:
                continue
            key, value = key.strip(), value.strip()
            if key == "KillUserProcesses":
                kill, source = value.lower() in TRUE, path
            elif key == "KillExcludeUsers":
                exclude = tuple(value.split())
    return LogindSettings(kill, exclude, source)


def config_files() -> list[tuple[str, str]]:
    """logind.conf, then its drop-ins sorted by file name (one in /etc replaces the same name elsewhere)."""
    out: list[tuple[str, str]] = []
    try:
        out.append((str(CONF), CONF.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        pass
    drop_ins: dict[str, Path] = {}
    for folder in DROP_IN_DIRS:
        try:
            for path in folder.glob("*.conf"):
                drop_ins[path.name] = path
        except OSError:
            continue
    for name in sorted(drop_ins):
        try:
            out.append((str(drop_ins[name]), drop_ins[name].read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return out


def lingering(user: str) -> bool | None:
    """Whether `user` lingers: loginctl if it answers, else the /var/lib/systemd/linger flag file; None if unknown."""
    if shutil.which("loginctl"):
        try:
            out = subprocess.run(
                ["loginctl", "show-user", user, "--property=Linger", "--value"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                return out.stdout.strip() == "yes"
        except (OSError, subprocess.TimeoutExpired):
            pass
    flag_dir = Path("/var/lib/systemd/linger")
    return (flag_dir / user).exists() if flag_dir.is_dir() else None


def logout_warning(settings: LogindSettings, user: str, linger: bool | None) -> tuple[str, str] | None:
    """(warning, fix) when logging out would kill this user's detached jobs; None when it would not."""
    if not settings.kill_user_processes or user in settings.kill_exclude_users or linger:
        return None
    where = f" ({settings.source})" if settings.source else ""
    return (
        f"systemd-logind kills your processes at logout (KillUserProcesses=yes{where}) and {user} does not linger: "
        "detached runs end when your last SSH session closes",
        f"run `loginctl enable-linger {user}` once (or ask an admin); with lingering on, {SYSTEMD_RUN_ENV}=1 also "
        "starts jobs in your systemd user manager (`systemd-run --user --scope`) instead of the login session",
    )


def check_logout() -> tuple[str, str] | None:
    """The warning for the current user on this box, or None."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return None
    return logout_warning(parse_logind(config_files()), user, lingering(user))


def systemd_run_prefix(unit: str) -> list[str]:
    """`systemd-run --user --scope` before a job's command when FTBENCH_SYSTEMD_RUN=1 and it is there; else []."""
    if os.environ.get(SYSTEMD_RUN_ENV) != "1" or shutil.which("systemd-run") is None:
        return []
    return ["systemd-run", "--user", "--scope", "--quiet", "--collect", f"--unit={unit}"]
