"""What INK's services share on top of HubOAuth."""


class TokenRequestsSkipXsrf:
    """XSRF protects browser forms; a request that carries a token is not one (a cross-site
    form cannot set an Authorization header), so job agents and scripts need no XSRF token."""

    def check_xsrf_cookie(self):
        if self.request.headers.get("Authorization", "").lower().startswith(("token ", "bearer ")):
            return None
        return super().check_xsrf_cookie()
