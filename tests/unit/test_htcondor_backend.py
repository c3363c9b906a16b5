"""HTCondor backend: real htcondor2.Submit and classad2, recorded ads, identity, errors."""

import asyncio
import os
from pathlib import Path

import classad2
import htcondor2
import pytest

from ink_spawner.backends.base import BackendError, JobState
from ink_spawner.backends.htcondor import HTCondorBackend, status_from_ad, submit_description
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
    assert submit.expand("arguments") == "'-m' 'ink_spawner.jobscript' '--app' 'jupyter''lab'"
    assert "secret" not in str(submit), "the token never goes into the job ad"
    walltime = classad2.ExprTree(submit.expand("periodic_remove"))
    now = int(classad2.ExprTree("time()").eval())
    assert walltime.eval(classad2.ClassAd({"JobStatus": 2, "EnteredCurrentStatus": now - 86401})) is True
    assert walltime.eval(classad2.ClassAd({"JobStatus": 2, "EnteredCurrentStatus": now - 100})) is False
    assert walltime.eval(classad2.ClassAd({"JobStatus": 1, "EnteredCurrentStatus": 0})) is False


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
    assert submit.expand("environment") == '"INK_ENV_FILE=d.env.json"'
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
