"""The SSO login hook: the claim's groups plus the YAML's memberships, with their allowances."""

from jupyterhub import orm

from ink_spawner.sso_groups import group_sync_hook

SITE_GROUPS = {
    "juno": {"users": [], "properties": {"ink": {"apps": ["jupyterlab"], "max_cpus": 4}}},
    "lhaaso": {"users": ["carol"], "properties": {"ink": {"apps": "*", "max_cpus": 8}}},
    "ink-user-carol": {"users": ["carol"], "properties": {"ink": {"max_memory": "64G"}}},
}


class Handler:
    def __init__(self, db):
        self.db = db


def test_claim_and_yaml_memberships_with_their_allowances():
    db = orm.new_session_factory("sqlite://")()
    hook = group_sync_hook(SITE_GROUPS)
    auth = hook(None, Handler(db), {"name": "carol", "groups": ["juno", "visitors", 7]})
    # the claim's groups (text only) and the YAML's (lhaaso, her own allowance)
    assert auth["groups"] == ["ink-user-carol", "juno", "lhaaso", "visitors"]
    assert orm.Group.find(db, "juno").properties["ink"]["max_cpus"] == 4
    assert orm.Group.find(db, "ink-user-carol").properties["ink"]["max_memory"] == "64G"
    assert orm.Group.find(db, "visitors") is None  # not INK's: JupyterHub makes it, with no allowance
    # an allowance changed in the YAML reaches the group at the next login
    changed = {**SITE_GROUPS, "juno": {"users": [], "properties": {"ink": {"max_cpus": 16}}}}
    group_sync_hook(changed)(None, Handler(db), {"name": "alice", "groups": ["juno"]})
    assert orm.Group.find(db, "juno").properties == {"ink": {"max_cpus": 16}}
    assert hook(None, Handler(db), None) is None  # a refused login stays refused


def test_a_claim_cannot_hand_out_another_users_allowance():
    db = orm.new_session_factory("sqlite://")()
    auth = group_sync_hook(SITE_GROUPS)(
        None, Handler(db), {"name": "mallory", "groups": ["ink-user-carol", "juno"]}
    )
    assert auth["groups"] == ["juno"]
    auth = group_sync_hook(SITE_GROUPS)(None, Handler(db), {"name": "carol", "groups": ["ink-user-carol"]})
    assert "ink-user-carol" in auth["groups"]
