"""The stand-in pool is no more lenient than HTCondor's manual: what condor_submit refuses, what
the starter gives a job, `queue N`, removal through state 3, the Owner rules."""

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import htcondor2
import pytest

from tests.helpers.net import wait_for


def submit(schedd, **description):
    base = {"executable": "/bin/true", "output": "/dev/null", "My.InkApp": '"test"', "My.Owner": '"inkt_bob"'}
    return schedd.client().submit(
        htcondor2.Submit({**base, **description}), count=description.pop("count", 1)
    )


def ads(schedd, constraint):
    return schedd.client().query(constraint, [])


def test_old_syntax_refuses_a_double_quote(schedd, unix_users):
    with pytest.raises(htcondor2.HTCondorException, match="illegal unescaped double-quote"):
        submit(schedd, arguments='-c "print(1)"')


def test_owner_rules(make_pool, unix_users):
    schedd = make_pool(may_impersonate="inkt_(alice|bob)")
    with pytest.raises(htcondor2.HTCondorException, match="'root' is not allowed"):
        submit(schedd, **{"My.Owner": '"root"'})
    with pytest.raises(htcondor2.HTCondorException, match="security violation"):
        submit(schedd, **{"My.Owner": '"inkt_carol"'})  # not in the impersonation regex
    assert submit(schedd).cluster() >= 1


def test_the_starter_gives_only_what_the_description_says(schedd, unix_users):
    folder = Path(tempfile.mkdtemp(prefix="ink-starter-"))
    folder.chmod(0o777)
    out = folder / "env.json"
    printer = "import json, os, sys; json.dump(dict(env=dict(os.environ), cwd=os.getcwd()), sys.stdout)"
    try:
        cluster = submit(
            schedd,
            executable="/usr/bin/python3",
            arguments=f"\"-c '{printer}'\"",
            environment="\"A='x y'\"",
            output=str(out),
            initialdir=str(folder),
            should_transfer_files="NO",
        ).cluster()
        wait_for(lambda: ads(schedd, f"ClusterId == {cluster} && JobStatus == 4"), 30, what="the job to end")
        seen = json.loads(out.read_text())
        assert out.stat().st_uid != 0  # opened as the owner, not as the schedd's root
        env = seen["env"]
        assert "PATH" not in env and env["A"] == "x y" and seen["cwd"] == str(folder)
        assert env["TMPDIR"] == env["_CONDOR_SCRATCH_DIR"] != str(folder)
        assert not os.path.exists(env["TMPDIR"]), "the scratch folder goes with the job"
    finally:
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()


def test_queue_n_and_removal_through_state_3(schedd, unix_users):
    cluster = submit(schedd, executable="/bin/sleep", arguments="600", count=3).cluster()
    running = wait_for(
        lambda: len(a := ads(schedd, f"ClusterId == {cluster} && JobStatus == 2")) == 2 and a,
        30,
        what="two of three procs on the two slots",
    )
    assert sorted(a["ProcId"] for a in ads(schedd, f"ClusterId == {cluster}")) == [0, 1, 2]
    assert len(running) == 2
    started = time.monotonic()
    schedd.client().act(htcondor2.JobAction.Remove, f"ClusterId == {cluster}", reason="test")
    assert time.monotonic() - started < 2, "removal returns at once"
    assert {a["JobStatus"] for a in ads(schedd, f"ClusterId == {cluster}")} == {3}
    wait_for(lambda: not ads(schedd, f"ClusterId == {cluster}"), 30, what="the removed procs to leave")
    history = schedd.client().history(f"ClusterId == {cluster}", ["JobStatus", "RemoveReason"])
    assert len(history) == 3 and {h["RemoveReason"] for h in history} == {"test"}


def test_fs_identity_is_the_connecting_process_not_what_it_claims(schedd, unix_users):
    """Bob, another user of the node, talks to the pool's loopback port and claims to be root:
    the pool sees bob (like HTCondor's FS method, which proves the uid), so he cannot set Owner."""
    claim = (
        "import json, urllib.request, sys; "
        "body = {'description': 'executable = /bin/true\\nMy.InkApp = \"x\"\\nMy.Owner = \"inkt_alice\"\\n',"
        " 'count': 1, 'client_user': 'root', 'krb5ccname': ''}; "
        "req = urllib.request.Request(sys.argv[1] + '/submit', data=json.dumps(body).encode()); "
        "print(urllib.request.urlopen(req).read())"
    )
    seen = subprocess.run(
        ["runuser", "-u", "inkt_bob", "--", "/usr/bin/python3", "-c", claim, schedd.url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert seen.returncode != 0 and "403" in seen.stderr, seen.stdout + seen.stderr
    assert ads(schedd, 'Owner == "inkt_alice"') == []
    assert json.loads(subprocess.check_output(["curl", "-s", schedd.url + "/submissions"])) == []


def test_kerberos_identity_needs_a_cache_the_caller_can_read(make_pool, unix_users, kdc, tmp_path):
    """Bob names alice's real ticket cache (a 600 file he cannot read): KERBEROS fails for him
    and FS says bob, so the job is bob's, never alice's."""
    schedd = make_pool(auth_methods=["KERBEROS", "FS"])
    cache = Path(tempfile.mkdtemp(prefix="ink-alice-cc-")) / "alice.ccache"
    cache.parent.chmod(0o755)
    subprocess.run(
        ["kinit", "-c", f"FILE:{cache}", "inkt_alice@INK.TEST"],
        input=unix_users["inkt_alice"] + "\n",
        env=kdc.env,
        text=True,
        check=True,
        capture_output=True,
    )
    cache.chmod(0o600)  # root's file: alice's ticket, which bob cannot read
    claim = (
        "import json, urllib.request, sys; "
        "body = {'description': 'executable = /bin/true\\nMy.InkApp = \"x\"\\n', 'count': 1,"
        " 'krb5ccname': 'FILE:' + sys.argv[2]}; "
        "req = urllib.request.Request(sys.argv[1] + '/submit', data=json.dumps(body).encode()); "
        "print(urllib.request.urlopen(req).read())"
    )
    try:
        seen = subprocess.run(
            ["runuser", "-u", "inkt_bob", "--", "/usr/bin/python3", "-c", claim, schedd.url, str(cache)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert seen.returncode == 0, seen.stderr
        (record,) = json.loads(subprocess.check_output(["curl", "-s", schedd.url + "/submissions"]))
        assert record["identity"] == "inkt_bob"
    finally:
        cache.unlink()
        cache.parent.rmdir()
