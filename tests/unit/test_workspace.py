from pathlib import Path

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.workspace import CONFIG_NAME, Workspace, resolve_root


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_HOME", str(tmp_path / "env"))
    assert resolve_root(tmp_path / "cli") == (tmp_path / "cli").resolve()
    assert resolve_root(None) == (tmp_path / "env").resolve()
    monkeypatch.delenv("FTBENCH_HOME")
    assert "ftbench" in str(resolve_root(None))


def test_created_on_first_use_with_defaults(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    assert ws.created
    assert (ws.root / CONFIG_NAME).read_text().startswith("# ftbench workspace settings")
    for sub in ("runs", "exports", "jobs", "chats", "models", "datasets"):
        assert (ws.root / sub).is_dir()
    assert ws.config.defaults.export_quants == ["q4_k_m", "q8_0"]
    assert ws.model_roots() == [(ws.root / "models").resolve()]
    again = Workspace.open(tmp_path / "ws")
    assert not again.created


def test_bad_config_names_file_and_key(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / CONFIG_NAME).write_text('model_dir = ["x"]\n')
    with pytest.raises(FtbenchError) as err:
        Workspace.open(root)
    assert CONFIG_NAME in err.value.message and "'model_dir'" in err.value.message
    assert "model_dirs" in err.value.hint
    (root / CONFIG_NAME).write_text("scan_hf_cache = maybe\n")
    with pytest.raises(FtbenchError, match="not valid TOML"):
        Workspace.open(root)


def test_workspace_path_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(FtbenchError, match="is a file"):
        Workspace.open(path)


def test_wrong_types_name_the_key(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / CONFIG_NAME).write_text('[defaults]\nstop_grace_s = "soon"\n')
    with pytest.raises(FtbenchError, match=r"'defaults.stop_grace_s' must be a number of seconds \(got 'soon'\)"):
        Workspace.open(root)
    (root / CONFIG_NAME).write_text('model_dirs = "models"\n[keymap]\nquit = "ctrl+q"\n')
    with pytest.raises(FtbenchError, match="'model_dirs' must be a list of folder paths"):
        Workspace.open(root)
    (root / CONFIG_NAME).write_text(
        'model_dirs = ["m", "/abs"]\n[keymap]\nquit = "ctrl+q"\n[defaults]\nstop_grace_s = 5\n'
    )
    ws = Workspace.open(root)
    assert ws.config.keymap == {"quit": "ctrl+q"} and ws.config.defaults.stop_grace_s == 5
    assert ws.model_roots() == [(root / "m").resolve(), Path("/abs")]


def test_new_workspace_has_an_empty_registry_and_readable_files(tmp_path):
    import stat

    ws = Workspace.open(tmp_path / "ws")
    assert ws.registry_path.read_text() == "{}"
    assert stat.S_IMODE(ws.config_path.stat().st_mode) == 0o644
