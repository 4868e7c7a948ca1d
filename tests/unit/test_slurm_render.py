"""The Slurm scripts without a cluster: options, the 4 nodes x 8 GPUs render (shellcheck, ranks, addresses), parsing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.slurm import (
    NODE_SCRIPT,
    SlurmOptions,
    SlurmState,
    ended_by_slurm,
    render_node_script,
    render_sbatch,
    srun_command,
)
from ftbench.core.workspace import Workspace

FOUR_BY_EIGHT = SlurmOptions(partition="gpu", nodes=4, gpus_per_node=8, time="4:00:00", account="proj-1")

# A stand-in interpreter: records its arguments and the launch environment, one JSON line per call.
STUB = """#!/bin/bash
python3 -c 'import json, os, sys; print(json.dumps({"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k.startswith(("FTBENCH_", "SLURM_"))}}))' "$@" >>"$STUB_OUT"
"""


def test_options_validate_and_merge():
    base = SlurmOptions(partition="cpu", time="10")
    merged = base.merged(partition=None, nodes=2, time="1-00:00:00")
    assert (merged.partition, merged.nodes, merged.time) == ("cpu", 2, "1-00:00:00")
    for bad in (
        SlurmOptions(nodes=0),
        SlurmOptions(time="soon"),
        SlurmOptions(partition="gpu; rm -rf /"),
        SlurmOptions(gpus_per_node=-1),
    ):
        with pytest.raises(FtbenchError):
            bad.validate()
    for good in ("30", "30:00", "4:00:00", "2-12", "2-12:30:00"):
        assert SlurmOptions(time=good).validate().time == good


def test_sbatch_directives_for_four_by_eight(tmp_path):
    text = render_sbatch(tmp_path / "run a", "20261130-x", FOUR_BY_EIGHT, python="/venv/bin/python")
    directives = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=ftbench-20261130-x",
        "#SBATCH --output=slurm-%j.out",
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --time=4:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj-1",
    ]
    assert (
        text.splitlines()[-1]
        == f"exec /venv/bin/python -m ftbench.core.job_entry '{tmp_path}/run a' >>'{tmp_path}/run a/log.txt' 2>&1"
    )
    assert srun_command(tmp_path, 4) == [
        "srun",
        "--nodes=4",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        "bash",
        str(tmp_path / NODE_SCRIPT),
    ]


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)"
)
def test_rendered_scripts_are_shellcheck_clean(tmp_path):
    for name, text in (
        ("slurm.sbatch", render_sbatch(tmp_path, "j", FOUR_BY_EIGHT)),
        (NODE_SCRIPT, render_node_script(tmp_path / "it's here", FOUR_BY_EIGHT, "deepspeed", 3)),
    ):
        path = tmp_path / name
        path.write_text(text)
        out = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout


@pytest.mark.skipif(
    shutil.which("scontrol") is None, reason="Slurm's scontrol is not installed (apt-get install slurm-client)"
)
def test_four_nodes_get_the_right_ranks_and_main_address(tmp_path):
    """Run the batch script's preamble and node.sh on each of 4 simulated nodes with a recording interpreter."""
    stub = tmp_path / "python"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=render\nSlurmctldHost=localhost\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "slurm.sbatch").write_text(render_sbatch(run_dir, "j", FOUR_BY_EIGHT, python=str(stub)))
    (run_dir / NODE_SCRIPT).write_text(render_node_script(run_dir, FOUR_BY_EIGHT, python=str(stub)))
    out_file = tmp_path / "calls.jsonl"
    env = {
        "PATH": os.environ["PATH"],
        "SLURM_CONF": str(conf),
        "STUB_OUT": str(out_file),
        "SLURM_JOB_NODELIST": "gpu[07-10]",
        "SLURM_JOB_ID": "123456",
    }
    subprocess.run(["bash", str(run_dir / "slurm.sbatch")], env=env, check=True, timeout=30)
    batch = json.loads(out_file.read_text().splitlines()[0])
    assert batch["argv"] == ["-m", "ftbench.core.job_entry", str(run_dir)]
    assert batch["env"]["FTBENCH_MAIN_NODE"] == "gpu07"
    assert batch["env"]["FTBENCH_MAIN_PORT"] == str(20000 + 123456 % 20000)
    assert batch["env"]["FTBENCH_SLURM_NODES"] == "4"
    for node_id in range(4):  # what srun does: the same script on each node, with that node's SLURM_NODEID
        node_env = {**env, **batch["env"], "SLURM_NODEID": str(node_id), "FTBENCH_MIXED_PRECISION": "bf16"}
        subprocess.run(["bash", str(run_dir / NODE_SCRIPT)], env=node_env, check=True, timeout=30)
    calls = [json.loads(line)["argv"] for line in out_file.read_text().splitlines()[1:]]
    assert len(calls) == 4
    for node_id, argv in enumerate(calls):
        opts = dict(zip(argv, argv[1:], strict=False))
        assert argv[:2] == ["-m", "accelerate.commands.launch"]
        assert opts["--num_machines"] == "4" and opts["--num_processes"] == "32"
        assert opts["--machine_rank"] == str(node_id)
        assert opts["--main_process_ip"] == "gpu07" and opts["--main_process_port"] == "23456"
        assert opts["--mixed_precision"] == "bf16" and "--multi_gpu" in argv
        assert argv[-3:] == ["-m", "ftbench.train.distributed", str(run_dir)]


def test_ended_by_slurm_names_state_and_reason():
    err = ended_by_slurm(SlurmState("TIMEOUT", "TimeLimit"))
    assert err["message"] == "Slurm ended the job: TIMEOUT, reason TimeLimit: the job reached its time limit (--time)."
    assert "ftbench resume" in err["hint"]
    assert SlurmState("PENDING", "Resources").pending and not SlurmState("TIMEOUT").live


def test_completing_job_is_read_as_the_end_slurm_will_record():
    from ftbench.core.slurm import _state

    ending = _state("COMPLETING", "TimeLimit")
    assert (ending.state, ending.reason, ending.completing, ending.live) == ("TIMEOUT", "TimeLimit", True, True)
    assert _state("COMPLETING", "None") == SlurmState("COMPLETING", "None", completing=True)
    assert _state("RUNNING", "None").live and not _state("NODE_FAIL", "NodeDown").live


def test_workspace_slurm_defaults_are_checked(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    assert (ws.config.slurm.nodes, ws.config.slurm.gpus_per_node, ws.config.slurm.partition) == (1, 1, None)
    ws.config_path.write_text('[slurm]\npartition = "a100"\nnodes = 2\ntime = "2:00:00"\n')
    cfg = Workspace.open(ws.root).config.slurm
    assert (cfg.partition, cfg.nodes, cfg.time) == ("a100", 2, "2:00:00")
    ws.config_path.write_text("[slurm]\nnodes = true\n")
    with pytest.raises(FtbenchError, match="key 'slurm.nodes' must be a whole number of nodes"):
        Workspace.open(ws.root)
    ws.config_path.write_text('[slurm]\nqueue = "x"\n')
    with pytest.raises(FtbenchError, match="unknown key 'slurm.queue'"):
        Workspace.open(ws.root)
