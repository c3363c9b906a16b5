"""Experiments from the site's single sign-on: the provider's group claim decides who is in
which experiment, the site YAML what each experiment may run.

With ``authenticator.groups_claim`` (GenericOAuthenticator), the authenticator manages the hub's
groups: at each login the user's groups become the claim's (``manage_groups``), plus those the
site YAML lists them in (``experiments.X.members`` and a per-user allowance). JupyterHub then
forbids ``load_groups``, so the allowances (group properties) are written here, at login, onto
the groups the user is put in: an admin's change to an allowance in the YAML reaches a user at
their next login (or at once through the hub's admin API, as for any group)."""

from __future__ import annotations

import logging

from jupyterhub import orm

log = logging.getLogger("ink.sso")
USER_GROUP_PREFIX = "ink-user-"  # SiteConfig.groups(): a per-user allowance's group


def write_allowances(db, properties: dict[str, dict]) -> None:
    """Make each group exist with the site's allowance as its properties."""
    changed = False
    for name, wanted in properties.items():
        group = orm.Group.find(db, name)
        if group is None:
            group = orm.Group(name=name)
            db.add(group)
            changed = True
            log.info("group %s created from the site's experiments", name)
        if group.properties != wanted:
            group.properties = wanted
            changed = True
    if changed:
        db.commit()


def group_sync_hook(site_groups: dict):
    """A post_auth_hook: the claim's groups plus the YAML's memberships, with their allowances.
    ``site_groups``: the site's groups as ``SiteConfig.groups()`` gives them (users, properties)."""

    def hook(authenticator, handler, authentication):
        if authentication is None:
            return None
        name = authentication["name"]
        # a per-user allowance's group (ink-user-NAME) is NAME's alone, whatever a claim says
        claimed = {
            g
            for g in authentication.get("groups") or []
            if isinstance(g, str) and (not g.startswith(USER_GROUP_PREFIX) or g == USER_GROUP_PREFIX + name)
        }
        listed = {g for g, spec in site_groups.items() if name in (spec.get("users") or [])}
        groups = sorted(claimed | listed)
        authentication["groups"] = groups
        write_allowances(handler.db, {g: site_groups[g]["properties"] for g in groups if g in site_groups})
        log.info("%s logged in through SSO with groups %s", name, ", ".join(groups) or "(none)")
        return authentication

    return hook
