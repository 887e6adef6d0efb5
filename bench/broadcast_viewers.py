"""Viewer requests per second per core: the built-in aiohttp server against nginx.

Both serve the same live broadcast to the same bounded load (a small aiohttp client,
``CONCURRENCY`` connections, on 127.0.0.1): the playlist plus the newest segment, the way
players poll. aiohttp checks the link on every request (signature + cached revocation);
nginx serves the files as a CDN edge or cache would (config/nginx-broadcast.example.conf).
Figures are requests per CPU-second of the server process. Installs Debian's nginx if
it is missing. ``python -m bench.broadcast_viewers [seconds]``
"""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.broadcast_common import BenchRelay
from tests.broadcast_support import H264Track, ToneTrack, publish
from tests.harness import free_port

CONCURRENCY = 16


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_cpu(parent: int) -> float:
    total = 0.0
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit():
            try:
                stat = (pid_dir / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                total += cpu_seconds(int(pid_dir.name))
    return total


async def load(urls: list[str], seconds: float) -> int:
    done = 0
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as s:

        async def worker() -> None:
            nonlocal done
            i = 0
            while time.monotonic() < stop:
                async with s.get(urls[i % len(urls)]) as resp:
                    await resp.read()
                    if resp.status == 200:
                        done += 1
                i += 1

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return done


def ensure_nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True)
    return "/usr/sbin/nginx"


def nginx_conf(root: Path, port: int, work: Path) -> Path:
    conf = work / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location ~ \\.m3u8$ {{ add_header Cache-Control "public, max-age=1"; }}
    location ~ \\.ts$ {{ add_header Cache-Control "public, max-age=31536000, immutable"; }}
  }}
}}
"""
    )
    return conf


async def main(seconds: float) -> None:
    relay = BenchRelay()
    await relay.start()
    speaker = await publish(
        relay.url, "bench", relay.speaker_token, H264Track(luma=100, fps=15), ToneTrack(True)
    )
    deadline = time.monotonic() + 30
    while not (relay.dir / "bench").exists() or len(list((relay.dir / "bench").glob("*.ts"))) < 3:
        if time.monotonic() > deadline:
            raise SystemExit("no segments")
        await asyncio.sleep(0.2)
    await speaker.pc.close()  # freeze the files: both servers serve the same bytes
    await relay.broadcast().end()
    segment = sorted((relay.dir / "bench").glob("seg-*.ts"))[-1].name
    aiohttp_urls = [relay.link + "index.m3u8", relay.link + segment]

    # The built-in server runs in this process: count only its CPU, not the client's.
    # Run the client in a child process instead, so this process's CPU is the server's.
    work = Path(tempfile.mkdtemp(prefix="parta-nginx-"))
    client = [sys.executable, "-m", "bench.broadcast_viewers", "--client", str(seconds)]
    proc = await asyncio.create_subprocess_exec(*client, *aiohttp_urls, stdout=subprocess.PIPE)
    cpu0 = time.process_time()
    out, _ = await proc.communicate()
    builtin_cpu = time.process_time() - cpu0
    builtin_requests = int(out.decode().split()[-1])
    await relay.stop()

    port = free_port()
    # nginx's worker runs as an unprivileged user: let it read the segments.
    for path in (relay.dir, relay.dir / "bench"):
        path.chmod(0o755)
    (relay.dir / "bench" / "index.m3u8").write_text(relay.broadcast().writer.playlist)
    nginx = subprocess.Popen(  # noqa: ASYNC220 (a server for the whole run)
        [
            ensure_nginx(),
            "-c",
            str(nginx_conf(relay.dir / "bench", port, work)),
            "-g",
            "daemon off;",
        ]
    )
    try:
        await asyncio.sleep(1)
        base = f"http://127.0.0.1:{port}/"
        cpu_before = cpu_seconds(nginx.pid)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.broadcast_viewers",
            "--client",
            str(seconds),
            base + "index.m3u8",
            base + segment,
            stdout=subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        nginx_requests = int(out.decode().split()[-1])
        nginx_cpu = cpu_seconds(nginx.pid) - cpu_before + workers_cpu(nginx.pid)
    finally:
        nginx.terminate()
        nginx.wait(10)
    builtin_rate = builtin_requests / max(builtin_cpu, 1e-6)
    nginx_rate = nginx_requests / max(nginx_cpu, 1e-6)
    for name, done, rate in (
        ("built-in aiohttp", builtin_requests, builtin_rate),
        ("nginx", nginx_requests, nginx_rate),
    ):
        print(f"{name:17} {done / seconds:6.0f} req/s, {rate:6.0f} requests per CPU-second")
    print(f"ratio nginx / built-in (per core): {nginx_rate / builtin_rate:.1f}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--client":
        print(asyncio.run(load(sys.argv[3:], float(sys.argv[2]))))
    else:
        asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))
