#!/usr/bin/env python3
"""The file service against its peers, side by side in one run on loopback (root; needs nginx:
``apt-get install -y nginx-light``):

  download of a 1 GiB file     INK (through the hub's proxy,   vs  nginx serving the same file
                               its own port, INK's nginx front)
  upload of a 1 GiB file       INK (one streamed PUT)         vs  jupyter-server's contents API
                                                                  (1 MiB base64 chunks, as JupyterLab)
  first page of a 100,000-entry folder   INK api/v1/list      vs  contents API listing
  key listing of a 1 GiB ROOT file       INK preview/root     vs  uproot reading the file
                                                                  directly (bytes read, time)
  peak RSS of the file service (and its user's worker) during the upload
  WebDAV (dav/): 1 GiB down and up with curl, and a depth-1 PROPFIND of the whole
  100,000-entry folder, vs the same through the files API (the listing as 100 pages of 1,000),
  with the file service's peak RSS during each listing

    /opt/ink/bin/python bench/files.py [--runs 3] [--size-mib 1024] [--entries 100000]
"""

import argparse
import base64
import os
import pwd
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ink_services.front import nginx_site  # noqa: E402
from ink_spawner.configurer import load_site_config  # noqa: E402
from tests.conftest import FIXTURES, site_config  # noqa: E402
from tests.helpers.hub import Hub  # noqa: E402
from tests.helpers.net import free_port, wait_for  # noqa: E402
from tests.helpers.users import ensure_user, remove_user  # noqa: E402

USER = "inkt_fbench"
NGINX_CONF = """
daemon off; worker_processes 1; user {user}; pid {root}/nginx.pid; error_log {root}/error.log;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy; fastcgi_temp_path {root}/fcgi;
  uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  server {{ listen 127.0.0.1:{port}; root {data}; }}
{front}
}}
"""


def curl_seconds(*args) -> float:
    out = subprocess.run(
        ["curl", "-sf", "-o", "/dev/null", "-w", "%{time_total}", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout)


class PeakRss(threading.Thread):
    """Samples the resident memory of some processes every 20 ms; keeps the peak of their sum."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.peak = 0
        self.running = True

    def run(self):
        while self.running:
            total = 0
            for p in self.procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.02)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak


def service_pids(name: str) -> list[int]:
    found = []
    for p in psutil.process_iter(["cmdline", "username"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if name in cmd:
            found.append(p.pid)
    return found


def contents_upload(url: str, token: str, path: str, source: Path, chunk=1024 * 1024) -> None:
    """jupyter-server's contents API the way JupyterLab uploads: base64 chunks, the last one -1."""
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    size = source.stat().st_size
    with open(source, "rb") as f:
        number = 1
        while True:
            data = f.read(chunk)
            last = f.tell() >= size
            body = {
                "type": "file",
                "format": "base64",
                "name": os.path.basename(path),
                "path": path,
                "content": base64.b64encode(data).decode(),
                "chunk": -1 if last else number,
            }
            r = session.put(f"{url}/api/contents/{path}", json=body, timeout=600)
            assert r.status_code in (200, 201), r.text
            if last:
                return
            number += 1


def api_full_listing(url: str, token: str) -> int:
    """Every entry of a folder through the files API, page after page (its limit is 1,000)."""
    offset, total = 0, None
    while total is None or offset < total:
        r = requests.get(
            url,
            params={"offset": offset, "limit": 1000, "hidden": 1},
            headers={"Authorization": f"token {token}"},
            timeout=600,
        )
        r.raise_for_status()
        answer = r.json()
        total, offset = answer["total"], offset + len(answer["entries"])
    return total


def propfind_listing(url: str, user: str, token: str) -> int:
    r = requests.request(
        "PROPFIND", url, auth=(user, token), headers={"Depth": "1"}, timeout=600, stream=True
    )
    assert r.status_code == 207, r.status_code
    count = 0
    for chunk in r.iter_content(1 << 20):
        count += chunk.count(b"<D:response>")
    return count - 1  # the folder itself


def timed(func, *args):
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def write_big_root(path: Path, size_mib: int) -> None:
    """A ROOT file of about size_mib MiB: folders, histograms, a tree of 4 float64 branches."""
    import numpy as np
    import uproot

    rng = np.random.default_rng(1)
    rows = size_mib * 1024 * 1024 // 32
    with uproot.recreate(path, compression=None) as f:
        f["hpx"] = np.histogram(rng.normal(size=10_000), bins=100)
        f["calib/run1/h2"] = np.histogram2d(rng.normal(size=1000), rng.normal(size=1000), bins=50)
        tree = f.mktree("events", {"px": "f8", "py": "f8", "pz": "f8", "energy": "f8"})
        step = 4 * 1024 * 1024
        for start in range(0, rows, step):
            n = min(step, rows - start)
            tree.extend({name: rng.normal(size=n) for name in ("px", "py", "pz", "energy")})


def uproot_listing(path: Path) -> int:
    """uproot walking the same keys from the file on disk; the bytes it read."""
    from ink_core.previews import CountingFile, root_keys

    with open(path, "rb") as f:
        counting = CountingFile(lambda offset, n: os.pread(f.fileno(), n, offset), path.stat().st_size)
        return root_keys(counting)["bytes_read"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        sys.exit("nginx is needed for the download comparison: apt-get install -y nginx-light")
    ensure_user(USER)
    user = pwd.getpwnam(USER)
    data = Path(user.pw_dir) / "bench"
    data.mkdir(exist_ok=True)
    big = data / "big.bin"
    with open(big, "wb") as f:
        block = os.urandom(16 * 1024 * 1024)
        for _ in range(args.size_mib // 16):
            f.write(block)
    many = data / "many"
    many.mkdir(exist_ok=True)
    for i in range(args.entries):
        os.close(os.open(many / f"entry-{i:06d}.dat", os.O_CREAT | os.O_WRONLY, 0o644))
    big_root = data / "big.root"
    write_big_root(big_root, args.size_mib)
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(data)], check=True)
    work = Path(tempfile.mkdtemp(prefix="ink-bench-files-"))
    work.chmod(0o755)
    procs, hub = [], None
    try:
        nginx_port, front_port = free_port(), free_port()
        # jupyter-server, as the user, on the same folder
        js_port, js_token = free_port(), secrets.token_hex(16)
        procs.append(
            subprocess.Popen(
                [
                    "runuser",
                    "-u",
                    USER,
                    "--",
                    f"{sys.prefix}/bin/jupyter",
                    "server",
                    "--no-browser",
                    f"--port={js_port}",
                    "--ip=127.0.0.1",
                    f"--IdentityProvider.token={js_token}",
                    f"--ServerApp.root_dir={data}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        js = f"http://127.0.0.1:{js_port}"
        # INK's hub with its file service
        profiles = work / "profiles"
        shutil.copytree(FIXTURES / "profiles", profiles)
        site = site_config({"type": "local"})
        site["paths"]["profiles"] = str(profiles)
        hub = Hub(work / "hub", site).start()
        # nginx, serving the same folder as the same user; and INK's front (`ink front-config`,
        # plain HTTP on loopback like the rest) before the same hub
        front = nginx_site(load_site_config(hub.site_file), listen=f"127.0.0.1:{front_port}")
        (work / "nginx.conf").write_text(
            NGINX_CONF.format(user=USER, root=work, port=nginx_port, data=data, front=front)
        )
        procs.append(subprocess.Popen(["nginx", "-c", str(work / "nginx.conf")]))
        token = hub.user_token(USER)
        auth = ["-H", f"Authorization: token {token}"]
        ink = f"{hub.url}/services/ink-files/api/v1"
        wait_for(
            lambda: requests.get(f"http://127.0.0.1:{nginx_port}/big.bin", stream=True).status_code == 200, 30
        )
        wait_for(
            lambda: requests.get(f"{js}/api/status", headers={"Authorization": f"token {js_token}"}).ok, 60
        )
        wait_for(lambda: requests.get(f"{ink}/areas", headers={"Authorization": f"token {token}"}).ok, 30)

        results = {}
        gib = args.size_mib / 1024
        nginx_runs = [curl_seconds(f"http://127.0.0.1:{nginx_port}/big.bin") for _ in range(args.runs)]
        results["download"] = (
            [curl_seconds(*auth, f"{ink}/files/home/bench/big.bin") for _ in range(args.runs)],
            nginx_runs,
        )
        # the same request to the service's own port, without the hub's proxy in between
        direct = f"http://127.0.0.1:{site['files']['port']}/services/ink-files/api/v1"
        results["download-direct"] = (
            [curl_seconds(*auth, f"{direct}/files/home/bench/big.bin") for _ in range(args.runs)],
            nginx_runs,
        )
        # through the front, which sends the file service's requests straight to it
        via_front = f"http://localhost:{front_port}/services/ink-files/api/v1"
        results["download-front"] = (
            [curl_seconds(*auth, f"{via_front}/files/home/bench/big.bin") for _ in range(args.runs)],
            nginx_runs,
        )
        ink_up, peer_up, peaks = [], [], []
        for run in range(args.runs):
            pids = service_pids("ink_services.files")
            meter = PeakRss(pids)
            meter.start()
            ink_up.append(
                curl_seconds(*auth, "-T", str(big), f"{ink}/files/home/bench/up-{run}.bin?overwrite=1")
            )
            peaks.append(meter.stop())
            start = time.perf_counter()
            contents_upload(js, js_token, f"up-js-{run}.bin", big)
            peer_up.append(time.perf_counter() - start)
        results["upload"] = (ink_up, peer_up)
        ink_list, peer_list = [], []
        for _ in range(args.runs):
            ink_list.append(curl_seconds(*auth, f"{ink}/list/home/bench/many?limit=200"))
            peer_list.append(
                curl_seconds("-H", f"Authorization: token {js_token}", f"{js}/api/contents/many?content=1")
            )
        results["list"] = (ink_list, peer_list)
        ink_keys, peer_keys, ink_bytes, peer_bytes = [], [], [], []
        for _ in range(args.runs):
            os.utime(big_root)  # a new mtime: listed anew, not answered from the preview cache
            start = time.perf_counter()
            r = requests.get(
                f"{ink}/preview/root/home/bench/big.root", headers={"Authorization": f"token {token}"}
            )
            ink_keys.append(time.perf_counter() - start)
            assert r.status_code == 200, r.text
            ink_bytes.append(r.json()["bytes_read"])
            start = time.perf_counter()
            peer_bytes.append(uproot_listing(big_root))
            peer_keys.append(time.perf_counter() - start)
        results["keys"] = (ink_keys, peer_keys)
        root_size = big_root.stat().st_size
        # WebDAV against the files API, same service, same files
        dav = f"{hub.url}/services/ink-files/dav/home/bench"
        basic = ["-u", f"{USER}:{token}"]
        results["dav-down"] = (
            [curl_seconds(*basic, f"{dav}/big.bin") for _ in range(args.runs)],
            results["download"][0],
        )
        results["dav-up"] = (
            [curl_seconds(*basic, "-T", str(big), f"{dav}/dav-up-{run}.bin") for run in range(args.runs)],
            ink_up,
        )
        dav_list, api_list, dav_peaks, api_peaks = [], [], [], []
        for _ in range(args.runs):
            for runs, peaks, listing in (
                (dav_list, dav_peaks, lambda: propfind_listing(f"{dav}/many/", USER, token)),
                (api_list, api_peaks, lambda: api_full_listing(f"{ink}/list/home/bench/many", token)),
            ):
                meter = PeakRss(service_pids("ink_services.files"))
                meter.start()
                start = time.perf_counter()
                assert listing() == args.entries
                runs.append(time.perf_counter() - start)
                peaks.append(meter.stop())
        results["dav-list"] = (dav_list, api_list)
    finally:
        if hub:
            hub.stop()
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(work, ignore_errors=True)
        remove_user(USER)

    print(f"\nfile service vs peers, loopback, median of {args.runs} runs")
    print(f"{'what':44} {'INK':>10} {'peer':>10} {'INK/peer speed':>15}")
    for label, key, unit in (
        (f"download {args.size_mib} MiB (vs nginx)", "download", "MiB/s"),
        ("  the same, service port (no hub proxy)", "download-direct", "MiB/s"),
        ("  the same, through INK's nginx front", "download-front", "MiB/s"),
        (f"upload {args.size_mib} MiB (vs contents API)", "upload", "MiB/s"),
        (f"first page of {args.entries} entries (vs contents API)", "list", "ms"),
    ):
        a, b = statistics.median(results[key][0]), statistics.median(results[key][1])
        if unit == "MiB/s":
            print(f"{label:44} {args.size_mib / a:8.0f}/s {args.size_mib / b:8.0f}/s {b / a:14.2f}x")
        else:
            print(f"{label:44} {a * 1000:8.1f}ms {b * 1000:8.1f}ms {b / a:14.2f}x")
    a, b = statistics.median(results["keys"][0]), statistics.median(results["keys"][1])
    print(
        f"{'ROOT key listing of ' + str(args.size_mib) + ' MiB (vs uproot)':44} {a * 1000:8.1f}ms {b * 1000:8.1f}ms {b / a:14.2f}x"
    )
    print(
        f"ROOT key listing read {max(ink_bytes)} bytes of {root_size} ({100 * max(ink_bytes) / root_size:.4f}%);"
        f" uproot alone read {max(peer_bytes)}"
    )
    print(f"peak RSS of the file service + worker during the {gib:g} GiB upload: {max(peaks) / 2**20:.0f} MB")
    print(f"\nWebDAV vs the files API, the same service, median of {args.runs} runs")
    print(f"{'what':44} {'WebDAV':>10} {'files API':>10} {'DAV/API speed':>15}")
    for label, key in (
        (f"download {args.size_mib} MiB (curl)", "dav-down"),
        (f"upload {args.size_mib} MiB (curl -T)", "dav-up"),
        (f"whole listing of {args.entries} entries", "dav-list"),
    ):
        a, b = statistics.median(results[key][0]), statistics.median(results[key][1])
        if key == "dav-list":
            print(f"{label:44} {a:9.2f}s {b:9.2f}s {b / a:14.2f}x")
        else:
            print(f"{label:44} {args.size_mib / a:8.0f}/s {args.size_mib / b:8.0f}/s {b / a:14.2f}x")
    print(
        f"peak RSS of the file service + worker while listing: WebDAV {max(dav_peaks) / 2**20:.0f} MB,"
        f" files API {max(api_peaks) / 2**20:.0f} MB"
    )


if __name__ == "__main__":
    main()
