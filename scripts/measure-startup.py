#!/usr/bin/env python3
"""Time from process start to the handshake line, and resident memory once idle, of the
provider binary launched the way Terraform launches it (cookie, protocol versions, a P-521
client certificate for AutoMTLS).

Usage: scripts/measure-startup.py [BINARY] [RUNS]   (defaults: target/release binary, 30 runs)
Prints the median, minimum and 90th percentile handshake time and the median idle RSS.

Handshakes are timed twice: back to back (each process killed as soon as it answers), and after
the machine idled for 0.3 s (each process left running that long to read its memory). On a
virtual machine the second is slower for any program, since an idle vCPU takes time to wake; it
is the method the measured Go providers' figures (13 to 26 ms) were taken with.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def client_certificate(directory):
    """A self-signed ECDSA P-521 certificate, like the one go-plugin gives its plugins."""
    key = os.path.join(directory, "client.key")
    cert = os.path.join(directory, "client.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/O=HashiCorp/CN=localhost",
         "-sha512"],
        check=True, capture_output=True)
    with open(cert) as handle:
        return handle.read()


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def one_run(binary, environment, linger):
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    line = process.stdout.readline()
    elapsed_ms = (time.perf_counter() - started) * 1000
    if not line.startswith(b"1|6|"):
        process.kill()
        sys.exit(f"unexpected handshake line: {line!r}")
    rss = 0
    if linger:
        time.sleep(0.3)
        rss = resident_kib(process.pid)
    process.kill()
    process.wait()
    return elapsed_ms, rss


def summary(times):
    times = sorted(times)
    p90 = times[int(len(times) * 0.9) - 1]
    return (f"median {statistics.median(times):.2f} ms, min {times[0]:.2f} ms, "
            f"p90 {p90:.2f} ms")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/terraform-provider-azurecmk"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with tempfile.TemporaryDirectory() as directory:
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "TMPDIR": directory,
            "TF_PLUGIN_MAGIC_COOKIE": COOKIE,
            "PLUGIN_PROTOCOL_VERSIONS": "5,6",
            "PLUGIN_MIN_PORT": "10000",
            "PLUGIN_MAX_PORT": "25000",
            "PLUGIN_CLIENT_CERT": client_certificate(directory),
        }
        back_to_back = [one_run(binary, environment, False) for _ in range(runs)]
        lingering = [one_run(binary, environment, True) for _ in range(runs)]
    rss_mib = statistics.median(rss for _, rss in lingering) / 1024
    size_mib = os.path.getsize(binary) / (1024 * 1024)
    print(f"binary             {binary} ({size_mib:.1f} MiB)")
    print(f"handshake          {summary([t for t, _ in back_to_back])} "
          f"(back to back, {runs} runs)")
    print(f"handshake, idled   {summary([t for t, _ in lingering])} "
          f"(after 0.3 s idle, {runs} runs)")
    print(f"idle RSS           median {rss_mib:.1f} MiB (0.3 s after the handshake)")


if __name__ == "__main__":
    main()
