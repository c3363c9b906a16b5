"""Kerberos on the hub's side: the login (KerberosAuthenticator), the KDC exchanges (tickets)
and the ticket store the credentials service renews and delivers from."""
