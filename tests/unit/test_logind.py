"""Doctor's logout check: logind's KillUserProcesses and drop-ins, lingering, root excluded, systemd-run opt-in."""

from __future__ import annotations

from ftbench.core import logind
from ftbench.core.logind import LogindSettings, logout_warning, parse_logind, systemd_run_prefix

DEBIAN_DEFAULT = "[Login]\n#KillUserProcesses=no\n#KillExcludeUsers=root\n"


def test_commented_defaults_kill_nothing():
    assert parse_logind([("/etc/systemd/logind.conf", DEBIAN_DEFAULT)]) == LogindSettings(False, ("root",), "")


def test_drop_in_overrides_main_file_and_other_sections_are_ignored():
    files = [
        ("/etc/systemd/logind.conf", "[Login]\nKillUserProcesses=no\n"),
        (
            "/etc/systemd/logind.conf.d/10-kill.conf",
            "[Other]\nKillUserProcesses=no\n[Login]\n KillUserProcesses = yes \nKillExcludeUsers=root admin\n",
        ),
    ]
    settings = parse_logind(files)
    assert settings == LogindSettings(True, ("root", "admin"), "/etc/systemd/logind.conf.d/10-kill.conf")


def test_warning_only_for_killed_non_lingering_users():
    kill = LogindSettings(True, ("root",), "/etc/systemd/logind.conf")
    warning = logout_warning(kill, "ana", linger=False)
    assert warning is not None
    assert "KillUserProcesses=yes (/etc/systemd/logind.conf)" in warning[0] and "ana does not linger" in warning[0]
    assert "loginctl enable-linger ana" in warning[1]
    assert logout_warning(kill, "ana", linger=None) is not None  # unknown lingering: warn, the fix is harmless
    assert logout_warning(kill, "ana", linger=True) is None
    assert logout_warning(kill, "root", linger=False) is None
    assert logout_warning(LogindSettings(False), "ana", linger=False) is None


def test_config_files_read_drop_ins_in_name_order_with_etc_winning(tmp_path, monkeypatch):
    usr, etc = tmp_path / "usr", tmp_path / "etc"
    usr.mkdir()
    etc.mkdir()
    (usr / "20-b.conf").write_text("[Login]\nKillUserProcesses=yes\n")
    (usr / "10-a.conf").write_text("[Login]\nKillUserProcesses=yes\n")
    (etc / "10-a.conf").write_text("[Login]\nKillUserProcesses=no\n")
    monkeypatch.setattr(logind, "CONF", tmp_path / "missing.conf")
    monkeypatch.setattr(logind, "DROP_IN_DIRS", (usr, tmp_path / "run-absent", etc))
    files = logind.config_files()
    assert [p for p, _ in files] == [str(etc / "10-a.conf"), str(usr / "20-b.conf")]
    assert parse_logind(files).kill_user_processes is True


def test_systemd_run_is_opt_in(monkeypatch):
    monkeypatch.delenv(logind.SYSTEMD_RUN_ENV, raising=False)
    assert systemd_run_prefix("ftbench-x") == []
    monkeypatch.setenv(logind.SYSTEMD_RUN_ENV, "1")
    monkeypatch.setattr(logind.shutil, "which", lambda name: "/usr/bin/systemd-run")
    assert systemd_run_prefix("ftbench-x") == [
        "systemd-run",
        "--user",
        "--scope",
        "--quiet",
        "--collect",
        "--unit=ftbench-x",
    ]
