#!/usr/bin/python3
"""The live dashboard in a real browser (issue 14): headless Chromium driven by Selenium
(Debian's chromium, chromium-driver and python3-selenium) against a running `cohort serve` with
`cohort join` clients, and against `cohort simulate --dashboard-keep`.

    /usr/bin/python3 tests/integration/dashboard_test.py COHORT_BINARY SOURCE_DIR [case ...]

Set COHORT_DASHBOARD_SCREENSHOTS=DIR to also copy the screenshots there (docs/images/ is made
this way). Cases (default: all), each in a temporary directory of its own (kept on failure):

  serve     `cohort serve --dashboard 127.0.0.1:0 --dashboard-token-file F` (FedAvg, 3 clients,
            an evaluation every round). The page is opened before any client joins; then three
            `cohort join` clients start. Checks: the page says "running" and names the strategy;
            the three clients appear in the table, each with a known state, and the state
            counts add up to 3; the accuracy curve gains points while the run goes on (more
            points later than first seen); the version and update counters move; a screenshot
            is saved. The page without a token shows "unauthorised" and /api/state without it
            is 401. Every process exits 0, and the final page numbers match summary.json.
  simulate  `cohort simulate --dashboard 127.0.0.1:0 --dashboard-keep` (20 clients): once the
            run ends, the page shows "finished", all 20 clients (states add up to 20, accepted
            updates add up to summary.json's), as many accuracy points as metrics.jsonl has eval
            events, and the final accuracy; Ctrl-C then ends the process with exit 0.
  refusals  a bad --dashboard address, a short token file, --dashboard-keep without
            --dashboard and a taken port are refused with exit 2 or 1 and a message naming them.

Exit 0 when every selected case passes, 1 otherwise, 77 without python3-selenium/chromium.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hardening_test as h  # noqa: E402  (exits 77 without python3-grpcio)
from hardening_test import Failure, Server, note  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:
    print("SKIP: python3-selenium is not installed (scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(77)

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TOKEN = "dashboard-test-token-0123456789"
FEDAVG = "  name: fedavg\n  fraction: 1.0\n  min_clients: 3"


def browser():
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,1100", "--no-first-run", "--disable-extensions"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)


def dashboard_url(path, timeout=60):
    """The URL `cohort` printed on stderr ("cohort: dashboard at URL")."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, errors="replace") as fh:
            m = re.search(r"dashboard at (http://\S+)", fh.read())
        if m:
            return m.group(1)
        time.sleep(0.05)
    raise Failure(f"no dashboard URL in {path}")


def wait_for(what, fn, timeout=60, period=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Failure:
            raise
        except Exception as e:  # noqa: BLE001  (the page may be between renders)
            last = e
        time.sleep(period)
    raise Failure(f"timed out waiting for {what} (last: {last!r})")


# The page re-renders every second: read what is shown in one script call, never through
# element handles that a render may replace.
def text(d, element_id):
    return d.execute_script("const e = document.getElementById(arguments[0]);"
                            "return e ? e.textContent : null;", element_id)


def points(d):
    return int(d.execute_script("return document.getElementById('curve')"
                                ".getAttribute('data-points') || 0;"))


def drawn_points(d):
    return d.execute_script("return document.querySelectorAll('#curve circle.pt-acc').length;")


def rows(d):
    return [(int(c), s) for c, s in d.execute_script(
        "return Array.from(document.querySelectorAll('#clients-body tr'))"
        ".map(r => [r.dataset.client, r.dataset.state]);")]


def counts(d):
    shown = d.execute_script(
        "const o = {}; for (const k of arguments[0]) {"
        " const e = document.getElementById('count-' + k); o[k] = e ? Number(e.textContent) : -1; }"
        "return o;", ["training", "idle", "offline", "lost", "rejected"])
    return {k: int(v) for k, v in shown.items()}


def screenshot(f, d, name):
    path = f.path(name)
    d.save_screenshot(path)
    out = os.environ.get("COHORT_DASHBOARD_SCREENSHOTS")
    if out:
        os.makedirs(out, exist_ok=True)
        shutil.copy(path, os.path.join(out, name))
    return path


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def serve(f):
    toks = f.tokens(3)
    tokfile = f.write("dashboard.token", TOKEN + "\n")
    # 1000 local steps: rounds long enough (a few tenths of a second here) for the page to see
    # the curve grow, whatever the machine.
    config = f.write("train.yaml", h.train_config(40, eval_every=1, strategy=FEDAVG)
                     .replace("local_steps: 30", "local_steps: 1000"))
    srv = Server(f, "server", open(config).read(),
                 args=["--dashboard", "127.0.0.1:0", "--dashboard-token-file", tokfile])
    url = dashboard_url(f.path("server.err"))
    f.check(url.endswith("?token=" + TOKEN), f"printed URL {url} does not carry the token")
    base = url.split("?")[0]
    f.check(http_status(base + "api/state") == 401, "/api/state without a token is not 401")
    d = browser()
    try:
        # Without the token the page says so and shows nothing.
        d.get(base)
        wait_for("the page to say unauthorised", lambda: text(d, "status") == "unauthorised")
        f.check(text(d, "k-version") == "-", "data shown without a token")
        d.get(url)
        wait_for("the page to say running", lambda: text(d, "status") == "running")
        f.check("fedavg" in text(d, "title"), f"title {text(d, 'title')!r} does not name fedavg")
        f.check(text(d, "k-version") == "0", "version before any client is not 0")
        clients = [f.join(srv.address, k, 3, config) for k in range(3)]
        seen = wait_for("three clients in the table", lambda: len(rows(d)) == 3 and rows(d))
        f.check(sorted(c for c, _ in seen) == [0, 1, 2], f"client ids {seen}")
        f.check(all(s in ("idle", "training", "offline", "lost", "rejected") for _, s in seen),
                f"client states {seen}")
        f.check(sum(counts(d).values()) == 3, f"state counts {counts(d)} do not add up to 3")
        first = wait_for("a first accuracy point after round 0", lambda: points(d) >= 2 and points(d))
        later = wait_for("the curve to gain points", lambda: points(d) > first and points(d))
        note(f"serve: the curve went from {first} to {later} points while the run went on")
        f.check(int(text(d, "k-version")) >= 1, "the version counter did not move")
        f.check(int(text(d, "k-updates").replace(",", "")) >= 3, "the updates counter did not move")
        f.check(drawn_points(d) == points(d), "the curve's drawn accuracy points differ from its count")
        screenshot(f, d, "dashboard.png")
        codes = h.wait_exit([srv.proc] + clients, 240)
        f.check(codes == [0, 0, 0, 0], f"exit codes (server, clients): {codes}")
        summary = srv.summary() or {}
        evals = [e for e in srv.events() if e.get("event") == "eval"]
        f.check(summary.get("rounds") == 40, f"rounds {summary.get('rounds')}")
        f.check(summary.get("final_accuracy", 0) >= 0.6, f"final accuracy {summary.get('final_accuracy')}")
        f.check(len(evals) >= 41, f"{len(evals)} eval events")
    finally:
        d.quit()


SIM_CONFIG = """data:
  dataset: synthetic
  partition: iid
  synthetic: {num_examples: 2000, test_examples: 500, dim: 20, classes: 4, separation: 3.0, noise: 1.0}
clients:
  count: 20
model:
  name: mlp
  hidden: [16]
training:
  lr: 0.1
  batch_size: 32
  local_steps: 10
strategy:
  name: fedbuff
  buffer_size: 5
run:
  rounds: 30
  seed: 11
  eval_every: 3
  threads: 2
"""


def simulate(f):
    config = f.write("sim.yaml", SIM_CONFIG)
    p = f.spawn([f.cohort, "simulate", config, "--out", f.path("sim_out"), "-q", "--dashboard",
                 "127.0.0.1:0", "--dashboard-keep"], "sim")
    url = dashboard_url(f.path("sim.err"))

    def finished():
        if p.poll() is not None:
            raise Failure(f"cohort simulate exited {p.returncode} before the run ended")
        return "stays up" in open(f.path("sim.out")).read()
    wait_for("the run to finish", finished, timeout=120)
    summary = json.load(open(f.path("sim_out", "summary.json")))
    evals = [json.loads(line) for line in open(f.path("sim_out", "metrics.jsonl"))
             if '"event":"eval"' in line]
    d = browser()
    try:
        d.get(url)
        wait_for("the page to say finished", lambda: text(d, "status") == "finished")
        table = rows(d)
        f.check(len(table) == 20, f"{len(table)} client rows, expected 20")
        c = counts(d)
        # The simulator's clients are always online: those whose tasks the end abandoned are idle.
        f.check(c["idle"] == 20, f"state counts {c}")
        f.check(text(d, "k-flight") == "0", f"tasks in flight {text(d, 'k-flight')} after the end")
        f.check(points(d) == len(evals), f"{points(d)} curve points, metrics.jsonl has {len(evals)} evals")
        f.check(text(d, "k-accuracy") == f"{summary['final_accuracy']:.4f}",
                f"accuracy shown {text(d, 'k-accuracy')}, summary {summary['final_accuracy']}")
        f.check(text(d, "k-version") == str(summary["rounds"]), f"version shown {text(d, 'k-version')}")
        # The state JSON agrees with the run's own client statistics.
        state = json.loads(urllib.request.urlopen(url.replace("/?", "/api/state?"), timeout=10).read())
        accepted = sum(r["accepted"] for r in state["clients"])
        f.check(accepted == summary["updates"], f"accepted {accepted}, summary {summary['updates']}")
        screenshot(f, d, "dashboard_simulate.png")
    finally:
        d.quit()
    p.send_signal(signal.SIGINT)
    code = h.wait_exit([p], 30)[0]
    f.check(code == 0, f"cohort simulate --dashboard-keep exited {code} after Ctrl-C")


def refusals(f):
    config = f.write("sim.yaml", SIM_CONFIG)
    short = f.write("short.token", "abc\n")
    holder = subprocess.Popen([sys.executable, "-c",
                               "import socket,sys,time; s=socket.socket(); s.bind(('127.0.0.1',0));"
                               "s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    f.procs.append(holder)
    holder.stem = "holder"
    taken = holder.stdout.readline().strip()
    cases = [
        (["--dashboard", "127.0.0.1:http"], 2, "--dashboard: dashboard address '127.0.0.1:http'"),
        (["--dashboard", ":0", "--dashboard-token-file", short], 2, "at least 16 characters"),
        (["--dashboard", ":0", "--dashboard-token-file", f.path("missing")], 3, "cannot read"),
        (["--dashboard-keep"], 2, "--dashboard-keep needs --dashboard"),
        (["--dashboard", "127.0.0.1:" + taken], 1, "cannot listen on 127.0.0.1:" + taken),
    ]
    for extra, code, expected in cases:
        r = subprocess.run([f.cohort, "simulate", config, "--out", f.path("refused"), "-q", *extra],
                           capture_output=True, text=True, timeout=120)
        f.check(r.returncode == code and expected in r.stderr,
                f"{extra}: exit {r.returncode} (expected {code}), stderr {r.stderr.strip()[-300:]!r}")


CASES = {"serve": serve, "simulate": simulate, "refusals": refusals}

if __name__ == "__main__":
    if not os.path.exists(CHROMEDRIVER) or not shutil.which("chromium"):
        print("SKIP: chromium / chromium-driver are not installed (scripts/install-deps.sh)",
              file=sys.stderr)
        sys.exit(77)
    h.main_for_cases("dashboard_test.py", "dashboard_", CASES)
