"""The Slurm tool wrappers: parsers on Slurm's real output formats, calls on a real cluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyter_ucloud.local.backends import slurm_cli
from jupyter_ucloud.local.backends.slurm_cli import (
    SlurmCli,
    SlurmCommandError,
    SlurmJobInfo,
    parse_scontrol_record,
    parse_squeue_line,
)
from jupyter_ucloud.local.backends.slurm_states import describe, ucloud_state
from jupyter_ucloud.protocol import JobState

# A line as `scontrol show job -o` prints it in Slurm 22.05 (a job name with spaces).
SCONTROL_LINE = (
    "JobId=1 JobName=ucloud-7 my job UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=RUNNING Reason=None "
    "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00 "
    "TimeLimit=00:05:00 TimeMin=N/A SubmitTime=2026-11-26T06:45:37 StartTime=2026-11-26T06:45:38 "
    "EndTime=2026-11-26T06:50:38 Deadline=N/A Partition=short AllocNode:Sid=localhost:3575 "
    "NodeList=n[1-2] BatchHost=n1 NumNodes=2 NumCPUs=4 ReqB:S:C:T=0:0:*:* "
    "TRES=cpu=4,node=2,billing=4 Socks/Node=* NtasksPerN:B:S:C=1:0:*:* MinMemoryNode=1G "
    "Command=(null) WorkDir=/tmp/a dir StdOut=/tmp/a dir/out-1.txt Power= "
)


def test_scontrol_record_keeps_values_with_spaces() -> None:
    fields = parse_scontrol_record(SCONTROL_LINE)
    assert fields["JobName"] == "ucloud-7 my job"
    assert fields["JobState"] == "RUNNING"
    assert fields["NodeList"] == "n[1-2]"
    assert fields["WorkDir"] == "/tmp/a dir"
    assert fields["TRES"] == "cpu=4,node=2,billing=4"
    assert fields["ReqB:S:C:T"] == "0:0:*:*"
    assert fields["Power"] == ""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "12|RUNNING|None|n[1-2]|5:00|2026-11-26T06:45:38|2026-11-26T06:50:38|ucloud-3",
            ("12", "RUNNING", "None", "n[1-2]", "ucloud-3"),
        ),
        (
            "13|PENDING|Resources||UNLIMITED|N/A|N/A|odd|name|with bars",
            ("13", "PENDING", "Resources", "", "odd|name|with bars"),
        ),
        (
            "14|CANCELLED by 0|None|n1|1:00|x|y|ucloud-4",
            ("14", "CANCELLED", "None", "n1", "ucloud-4"),
        ),
    ],
)
def test_squeue_line(line: str, expected: tuple[str, ...]) -> None:
    info = parse_squeue_line(line)
    assert info is not None
    assert (info.job_id, info.state, info.reason, info.node_list, info.name) == expected


@pytest.mark.parametrize("line", ["", "garbage", "1|RUNNING|None", "|RUNNING|a|b|c|d|e|f"])
def test_squeue_line_rejects_garbage(line: str) -> None:
    assert parse_squeue_line(line) is None


@pytest.mark.parametrize(
    ("slurm", "ucloud"),
    [
        ("PENDING", JobState.IN_QUEUE),
        ("RUNNING", JobState.RUNNING),
        ("COMPLETED", JobState.SUCCESS),
        ("CANCELLED", JobState.SUCCESS),
        ("FAILED", JobState.FAILURE),
        ("NODE_FAIL", JobState.FAILURE),
        ("OUT_OF_MEMORY", JobState.FAILURE),
        ("TIMEOUT", JobState.EXPIRED),
        ("SUSPENDED", JobState.SUSPENDED),
        ("COMPLETING", None),
        ("SOMETHING_NEW", None),
    ],
)
def test_state_mapping(slurm: str, ucloud: JobState | None) -> None:
    assert ucloud_state(slurm) is ucloud


def test_status_lines_carry_slurm_state_and_reason() -> None:
    timeout = SlurmJobInfo("5", "ucloud-1", "TIMEOUT", "TimeLimit", "n1", exit_code="0:15")
    assert describe(timeout) == (
        "The job has expired: its time limit was reached (Slurm job 5 TIMEOUT, reason: TimeLimit)"
    )
    failed = SlurmJobInfo("6", "ucloud-2", "FAILED", "NonZeroExitCode", "n1", exit_code="3:0")
    assert "exit code 3" in describe(failed)
    assert "NonZeroExitCode" in describe(failed)
    pending = SlurmJobInfo("7", "ucloud-3", "PENDING", "Resources", "")
    assert describe(pending) == "Waiting in the Slurm queue (Resources) (Slurm job 7 PENDING)"


def test_minutes_round_up() -> None:
    assert slurm_cli.minutes_for(1) == 1
    assert slurm_cli.minutes_for(60_000) == 1
    assert slurm_cli.minutes_for(60_001) == 2
    assert slurm_cli.minutes_for(3_600_000) == 60


# --- on the real cluster ------------------------------------------------------------------------


@pytest.mark.slurm
def test_submit_query_extend_cancel(slurm_cluster: dict[str, str], tmp_path: Path) -> None:
    async def scenario() -> None:
        cli = SlurmCli()
        job_id = await cli.sbatch(
            [
                "--job-name=cli test job",
                f"--chdir={tmp_path}",
                "--nodes=2",
                "--time=5",
                "--output=/dev/null",
            ],
            "#!/bin/bash\nexec sleep 300\n",
        )
        try:
            info = await _wait_for_state(job_id, "RUNNING")
            assert info.name == "cli test job"
            assert await cli.expand_hostnames(info.node_list) == ["n1", "n2"]
            await cli.update_time_limit(job_id, 9)
            detail = await cli.show_job(job_id)
            assert detail is not None
            assert detail.time_limit == "00:09:00"
            assert detail.exit_code == "0:0"
        finally:
            await cli.scancel(job_id)
        info = await _wait_for_state(job_id, "CANCELLED")
        assert ucloud_state(info.state) is JobState.SUCCESS
        with pytest.raises(SlurmCommandError, match="already finished"):
            await cli.update_time_limit(job_id, 20)

    asyncio.run(scenario())


@pytest.mark.slurm
def test_unknown_jobs(slurm_cluster: dict[str, str]) -> None:
    async def scenario() -> None:
        cli = SlurmCli()
        assert await cli.squeue_jobs(["987654321"]) == {}
        assert await cli.show_job("987654321") is None
        assert await cli.squeue_jobs(["not-a-number"]) == {}
        await cli.scancel("987654321")  # Slurm ignores ids it does not know
        with pytest.raises(SlurmCommandError) as err:
            await slurm_cli.run_slurm(["scontrol", "show", "job", "-o", "987654321"])
        assert err.value.invalid_job
        assert err.value.returncode == 1
        assert await cli.ping()

    asyncio.run(scenario())


@pytest.mark.slurm
def test_sbatch_error_is_slurms_message(slurm_cluster: dict[str, str]) -> None:
    with pytest.raises(SlurmCommandError, match=r"(?i)invalid partition"):
        asyncio.run(SlurmCli().sbatch(["--partition=no-such-partition"], "#!/bin/bash\ntrue\n"))


async def _wait_for_state(job_id: str, state: str, timeout: float = 20.0) -> SlurmJobInfo:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = (await SlurmCli().squeue_jobs([job_id])).get(job_id)
        if last is not None and last.state == state:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} not {state} within {timeout} s: {last}")
