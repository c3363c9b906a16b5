"""HTCondor backend: real htcondor2.Submit and classad2, recorded ads, identity, errors."""

import asyncio
import os
from pathlib import Path

import classad2
import htcondor2
import pytest

from ink_spawner.backends.base import BackendError, JobState
from ink_spawner.backends.htcondor import (
    HTCondorBackend,
    explain_idle,
    requirement_clauses,
    status_from_ad,
    submit_description,
)
from ink_spawner.backends.htcondor import (
    SubmitSyntaxError as InkSubmitSyntaxError,
)
from tests.helpers.condor_syntax import (
    SubmitSyntaxError,
    arguments_attributes,
    environment_attributes,
    job_argv_tail,
    job_environment,
)
from tests.helpers.specs import job_spec

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "htcondor"


def recorded_ads():
    return {ad["ClusterId"]: ad for ad in classad2.parseAds((RECORDED / "queue.ads").read_text())}


def test_recorded_ads_map_onto_states_and_reasons():
    ads = recorded_ads()
    idle = status_from_ad(ads[1041])
    assert idle.state == JobState.PENDING and idle.reason == "no match found "
    running = status_from_ad(ads[1042])
    assert running.state == JobState.RUNNING and running.host == "wn042.ihep.ac.cn"
    held = status_from_ad(ads[1043])
    assert held.state == JobState.HELD and "No such file or directory" in held.reason
    walltime = status_from_ad(ads[1044])
    assert walltime.state == JobState.DONE and walltime.reason == "removed: the walltime of 1d was reached"
    removed = status_from_ad(ads[1045])
    assert removed.reason == "removed: via condor_rm (by user dave)"
    done = status_from_ad(ads[1046])
    assert done.state == JobState.DONE and done.exit_code == 0
    killed = status_from_ad(ads[1047])
    assert killed.state == JobState.DONE and killed.reason == "killed by signal 9"
    assert killed.exit_code == 137


def spec(**kw):
    condor = {
        "image": "alma9",
        "opsys": "AlmaLinux9",
        "command": ["/opt/ink/bin/python", "-m", "ink_spawner.jobscript", "--app", "jupyter'lab"],
        "log_path": "/home/alice/.ink/logs/d.log",
        "accounting_group": "group_juno",
    }
    return job_spec(**{**condor, **kw})


def test_submit_description_is_a_real_submit():
    submit = htcondor2.Submit(submit_description(spec(), "/home/alice/.ink/logs/d.env.json"))
    assert submit.expand("request_cpus") == "2"
    assert submit.expand("request_memory") == "6144"
    assert submit.expand("request_gpus") == "1"
    assert submit.expand("requirements") == '(TARGET.OpSysAndVer == "AlmaLinux9")'
    assert submit.expand("accounting_group") == "group_juno"
    assert submit.expand("accounting_group_user") == "alice"
    assert submit.expand("My.InkApp") == '"jupyterlab"'
    # the new syntax: double quotes around the list, so HTCondor does not keep the quotes
    assert submit.expand("arguments") == "\"'-m' 'ink_spawner.jobscript' '--app' 'jupyter''lab'\""
    assert job_argv_tail(arguments_attributes(submit.expand("arguments"))) == spec().command[1:]
    assert "secret" not in str(submit), "the token never goes into the job ad"
    walltime = classad2.ExprTree(submit.expand("periodic_remove"))
    now = int(classad2.ExprTree("time()").eval())
    assert submit.expand("My.InkWalltime") == "86400"

    def removed(**attrs):
        return walltime.eval(classad2.ClassAd({"InkWalltime": 86400, **attrs}))

    assert removed(JobStatus=2, EnteredCurrentStatus=now - 86401) is True
    assert removed(JobStatus=2, EnteredCurrentStatus=now - 100) is False
    assert removed(JobStatus=1, EnteredCurrentStatus=0) is False
    # the limit is the job's own InkWalltime: Extend edits it
    assert removed(JobStatus=2, EnteredCurrentStatus=now - 86401, InkWalltime=2 * 86400) is False


def test_container_image_wins_and_file_transfer_mode():
    d = submit_description(
        spec(container_image="/cvmfs/unpacked/centos7", opsys=""),
        "/x/d.env.json",
        shared_filesystem=False,
        walltime_attribute="MaxWallTime",
        owner="alice",
    )
    submit = htcondor2.Submit(d)
    assert (
        submit.expand("universe") == "container"
        and submit.expand("container_image") == "/cvmfs/unpacked/centos7"
    )
    assert submit.expand("transfer_input_files") == "/x/d.env.json"
    assert submit.expand("environment") == "\"'INK_ENV_FILE=d.env.json'\""
    assert submit.expand("My.MaxWallTime") == "86400" and "periodic_remove" not in d
    assert submit.expand("My.Owner") == '"alice"'


class RecordingSchedd:
    """Stands in for htcondor2.Schedd to see what the backend does around the bindings."""

    seen = []

    def __init__(self, backend):
        self.fail = os.environ.get("INK_FAKE_FAIL")

    def submit(self, description, count=1):
        RecordingSchedd.seen.append(os.environ.get("KRB5CCNAME"))
        if self.fail:
            raise htcondor2.HTCondorException(self.fail)
        return type("R", (), {"cluster": lambda self: 77})()

    def query(self, constraint="true", projection=()):
        return [recorded_ads()[1042]] if "1042" in constraint else []

    def history(self, constraint=None, projection=(), match=-1):
        return []


def backend(**kw):
    b = HTCondorBackend(schedd_factory=f"{__name__}.RecordingSchedd", **kw)

    async def no_file(spec):
        return "/tmp/env.json"

    b.write_env_file = no_file
    return b


def test_kerberos_identity_uses_the_users_cache_only_during_the_call(monkeypatch):
    monkeypatch.delenv("KRB5CCNAME", raising=False)
    RecordingSchedd.seen.clear()
    b = backend(identity="kerberos", credential_cache="/var/lib/ink/cc/{username}")
    assert asyncio.run(b.submit(spec())) == "77"
    assert RecordingSchedd.seen == ["FILE:/var/lib/ink/cc/alice"]
    assert "KRB5CCNAME" not in os.environ
    b = backend(identity="owner")
    asyncio.run(b.submit(spec()))
    assert RecordingSchedd.seen[-1] is None


@pytest.mark.parametrize(
    "error, sentence",
    [
        ("Failed to connect to schedd", "could not be reached"),
        ("AUTHENTICATE:1003:Failed to authenticate with any method", "refused INK's credentials"),
        ("Submit requirements not met: no accounting group", "HTCondor refused the job submission"),
    ],
)
def test_schedd_errors_become_one_sentence(monkeypatch, error, sentence):
    monkeypatch.setenv("INK_FAKE_FAIL", error)
    with pytest.raises(BackendError) as err:
        asyncio.run(backend(identity="owner").submit(spec()))
    assert sentence in str(err.value) and "\n" not in str(err.value)


def test_status_from_queue_then_gone():
    b = backend()
    assert asyncio.run(b.status("1042")).host == "wn042.ihep.ac.cn"
    gone = asyncio.run(b.status("9"))
    assert gone.state == JobState.DONE and "no longer in the queue" in gone.reason
    with pytest.raises(BackendError):
        asyncio.run(b.status("1042 || true"))


# --- HTCondor's argument syntax: the parser the stand-in pool uses, against the manual --------


@pytest.mark.parametrize(
    "value, argv",
    [
        # the manual's examples of the new syntax (condor_submit, "arguments")
        ('"3 simple arguments"', ["3", "simple", "arguments"]),
        ("\"one 'two with spaces' 3\"", ["one", "two with spaces", "3"]),
        ("\"one \"\"two\"\" 'spacey ''quoted'' argument'\"", ["one", '"two"', "spacey 'quoted' argument"]),
        # old syntax: blanks split, quotes are ordinary characters
        ("'-m' 'ink_spawner.jobscript'", ["'-m'", "'ink_spawner.jobscript'"]),
        ("a\\b c", ["a\\b", "c"]),
    ],
)
def test_argument_syntax_as_the_manual_says(value, argv):
    assert job_argv_tail(arguments_attributes(value)) == argv


@pytest.mark.parametrize("value", ['one "two"', '"unterminated', '"a \'b"', '"a" b'])
def test_argument_syntax_errors_are_refused(value):
    with pytest.raises(SubmitSyntaxError):
        arguments_attributes(value)


def test_environment_syntax_both_forms():
    assert job_environment(environment_attributes("\"A=1 B='x y' C=''\"")) == {"A": "1", "B": "x y", "C": ""}
    assert job_environment(environment_attributes("A=1;B=two words")) == {"A": "1", "B": "two words"}
    with pytest.raises(SubmitSyntaxError):
        environment_attributes('"novalue"')


TRICKY = [
    "a b",
    "it's",
    'say "hi"',
    "$(x)",
    "$ENV(HOME)",
    "$",
    "$(",
    "kill -9 $$",
    "$$$x",
    "${A}",
    "a\\b",
    "",
    " ",
]


def test_every_argument_survives_condor_submit_exactly():
    """INK's description, expanded by the real htcondor2.Submit, parsed as HTCondor parses it."""
    command = ["/opt/ink/bin/python", "-c", "print(1)", *TRICKY]
    description = submit_description(spec(command=command, log_path="/home/a/$(x)/d.log"), "/h/e $x.json")
    submit = htcondor2.Submit(description)
    assert job_argv_tail(arguments_attributes(submit.expand("arguments"))) == command[1:]
    assert job_environment(environment_attributes(submit.expand("environment"))) == {
        "INK_ENV_FILE": "/h/e $x.json"
    }
    assert submit.expand("output") == "/home/a/$(x)/d.log"


@pytest.mark.parametrize(
    "bad", ["line\nbreak", "tab\there", "cr\r", "bell\x07", "$$(Memory)", "$(DOLLAR)", "$(dollar)x"]
)
def test_text_htcondor_cannot_carry_is_refused(bad):
    with pytest.raises(InkSubmitSyntaxError) as err:
        submit_description(spec(command=["/bin/python", bad]), "/x/e.json")
    assert "arguments" in str(err.value)
    with pytest.raises(InkSubmitSyntaxError):
        submit_description(spec(log_path=f"/home/a/{bad}.log"), "/x/e.json")


# --- why a job stays idle: the job's requirements against the pool's slots ---------------


def slot_ad(**attrs):
    base = {
        "Name": "slot1@wn1",
        "Arch": "X86_64",
        "OpSys": "LINUX",
        "OpSysAndVer": "AlmaLinux9",
        "Cpus": 4,
        "Memory": 8192,
        "Disk": 10**7,
        "GPUs": 0,
        "FileSystemDomain": "ink.test",
        "State": "Unclaimed",
    }
    ad = classad2.ClassAd({**base, **attrs})
    ad["Requirements"] = classad2.ExprTree("TARGET.InkApp =!= undefined")
    return ad


def idle_job(requirements, **attrs):
    ad = classad2.ClassAd({"RequestCpus": 1, "RequestMemory": 2048, "RequestDisk": 1024, "RequestGPUs": 0})
    ad.update({"FileSystemDomain": "hub.ink.test", "InkApp": "jupyterlab", **attrs})
    ad["Requirements"] = classad2.ExprTree(requirements)
    return ad


SUBMITTED = (
    '((TARGET.OpSysAndVer == "AlmaLinux9")) && (TARGET.Arch == "X86_64") && '
    "(TARGET.Disk >= RequestDisk) && (TARGET.Memory >= RequestMemory) && "
    "(TARGET.Cpus >= RequestCpus) && (TARGET.FileSystemDomain == MY.FileSystemDomain)"
)


def test_requirement_clauses_split_the_top_level_only():
    assert requirement_clauses(SUBMITTED)[0] == 'TARGET.OpSysAndVer == "AlmaLinux9"'
    assert len(requirement_clauses(SUBMITTED)) == 6
    assert requirement_clauses('(A && B) || C && D == "x && y"') == ["(A && B) || C", 'D == "x && y"']


def test_idle_job_names_the_filesystem_domain():
    why = explain_idle(idle_job(SUBMITTED), [slot_ad(), slot_ad(Name="slot2@wn1")])
    assert why.startswith("no slot meets TARGET.FileSystemDomain == MY.FileSystemDomain (0 of 2 slots)")
    assert "FILESYSTEM_DOMAIN" in why


def test_idle_job_other_reasons():
    job = idle_job(SUBMITTED, FileSystemDomain="ink.test", RequestGPUs=1)
    gpu = job.lookup("Requirements")
    job["Requirements"] = classad2.ExprTree(f"({gpu}) && (TARGET.GPUs >= RequestGPUs)")
    assert "no slot has the GPUs asked for" in explain_idle(job, [slot_ad()])
    fits = idle_job(SUBMITTED, FileSystemDomain="ink.test")
    assert explain_idle(fits, [slot_ad()]) == ""
    assert "busy" in explain_idle(fits, [slot_ad(State="Claimed")])
    assert "START policy" in explain_idle(
        idle_job(SUBMITTED, FileSystemDomain="ink.test", InkApp=None), [slot_ad()]
    )


def test_a_request_no_slot_can_hold_is_named_before_submit():
    from ink_spawner.backends.htcondor import HTCondorBackend

    partitionable = classad2.ClassAd(
        {"Cpus": 1, "Memory": 1024, "TotalSlotCpus": 16, "TotalSlotMemory": 65536}
    )
    small = classad2.ClassAd({"Cpus": 4, "Memory": 8192, "GPUs": 0})
    backend = HTCondorBackend()

    async def slots():
        return [partitionable, small]

    backend.pool_slots = slots
    # the partitionable slot's totals count, not what is free in it now
    assert asyncio.run(backend.never_fits(spec(cpus=8, memory_mb=32768, gpus=0))) == ""
    refusal = asyncio.run(backend.never_fits(spec(cpus=32, memory_mb=4096, gpus=0)))
    assert refusal == (
        "This request can never start: no slot of the pool has 32 CPUs and 4G of memory. "
        "The largest have 16 CPUs and 64G: ask for at most that."
    )
    assert "and 1 GPUs" in asyncio.run(backend.never_fits(spec(cpus=1, memory_mb=1024, gpus=1)))

    async def unreachable():
        raise OSError("no collector")

    backend.pool_slots = unreachable
    assert asyncio.run(backend.never_fits(spec(cpus=999, memory_mb=1024, gpus=0))) == ""
