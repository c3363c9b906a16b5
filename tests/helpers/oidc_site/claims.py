"""What the test provider says of a user: name and e-mail, and the ``groups`` claim."""

from oidc_provider.lib.claims import ScopeClaims


def userinfo(claims, user):
    claims["preferred_username"] = user.username
    claims["name"] = user.get_full_name() or user.username
    claims["email"] = user.email
    return claims


class GroupsClaims(ScopeClaims):
    info_groups = ("Groups", "The experiments you belong to.")

    def scope_groups(self):
        return {"groups": sorted(g.name for g in self.user.groups.all())}
