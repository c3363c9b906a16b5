"""Inside the job: fetch the user's current Kerberos ticket from INK and keep it fresh.

It asks the credentials service with the server's own hub token (which can fetch only its own
user's ticket) and writes the ticket atomically to the job's KRB5CCNAME. A missing ticket or an
unreachable service is logged and retried; it never stops the app.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import urllib.error
import urllib.request

from ink_core import jobsettings


class CredentialAgent(threading.Thread):
    def __init__(self, url: str, token: str, path: str, log, retry: float = 30):
        super().__init__(daemon=True, name="ink-credentials-agent")
        self.url, self.token, self.path, self.log = url, token, path, log
        self.retry = retry
        self.stopping = threading.Event()
        self.fetched = 0
        self.next_delay = retry

    def fetch_once(self) -> float:
        """Fetch and install the ticket; return seconds until the next fetch."""
        request = urllib.request.Request(self.url, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                data = response.read()
                refresh = float(response.headers.get("X-Ink-Refresh-After", "60"))
        except urllib.error.HTTPError as e:
            self.log(f"no Kerberos ticket from INK ({e.code}); retrying in {self.retry:.0f}s")
            return self.retry
        except OSError as e:
            self.log(f"INK's credentials service is unreachable ({e}); retrying in {self.retry:.0f}s")
            return self.retry
        folder = os.path.dirname(self.path)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".krb5cc-")  # mode 600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
        except OSError as e:
            os.unlink(tmp)
            self.log(f"cannot write the Kerberos ticket: {e}")
            return self.retry
        self.fetched += 1
        return max(5.0, refresh)

    def run(self):
        delay = self.next_delay
        while not self.stopping.wait(delay):
            delay = self.fetch_once()

    def stop(self):
        self.stopping.set()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def start_agent(env: dict, log) -> CredentialAgent | None:
    """Start the agent when INK delivers tickets; sets KRB5CCNAME in ``env``."""
    url = jobsettings.from_env(env).credentials_url
    if not url:
        return None
    path = os.path.join(tempfile.gettempdir(), f"krb5cc_ink_{os.getuid()}_{os.getpid()}")
    agent = CredentialAgent(url, env["JUPYTERHUB_API_TOKEN"], path, log)
    agent.next_delay = agent.fetch_once()  # before the app starts, so it starts with a ticket
    env["KRB5CCNAME"] = f"FILE:{path}"
    atexit.register(agent.stop)  # the ticket goes with the job, whichever way it ends
    agent.start()
    return agent
