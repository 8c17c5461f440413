#!/usr/bin/python3
"""The NCA dashboard in a real browser: Debian's Chromium, driven through ChromeDriver's W3C
WebDriver HTTP API (standard library only), against a running chain with seeded data.

Checks: no page serves data without an analyst credential; a one-time sign-in link works once;
the numbers on the overview (tiles and the per-organisation table) equal the gRPC API's, before and
after choosing a year and a region in the page's filters; two analyst questions answered through
the page ("which forces are slowest to give feedback this year?": the year, then a sorting
heading; "how many SARs about officers led to dismissal, by region?": role, outcome and grouping)
and compared with the API; the view's CSV equals its table; a chart's bar drills down; a bad filter
value is refused; a click from the overdue list reaches a referral's timeline with every event
the API has, its elapsed days and THR; signing out ends the session. Screenshots go to OUT_DIR.

Usage: dashboard_test.py CHAIN_DIR CHROMEDRIVER_PORT OUT_DIR. Prints 'N passed, N failed'.
"""
import base64
import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

CHAIN, DRIVER_PORT, OUT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
PKI = f"{CHAIN}/pki"
BASE = int(open(f"{CHAIN}/base-port").read())
DASH = f"https://127.0.0.1:{BASE + 3}"
CTL = os.path.join(os.environ["SARLOOP_BUILD"], "tools/sarloopctl")
passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ' ' + str(detail)[:600]}")
    if ok:
        passed += 1
    else:
        failed += 1


def ctl(identity, *args):
    out = subprocess.run([CTL, "--timeout", "30", "--identity", f"{PKI}/{identity}", "--target",
                          f"localhost:{BASE + 2}", "--json", *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def http_status(path, identity=None):
    ctx = ssl.create_default_context(cafile=f"{PKI}/ca/ca.pem")
    if identity:
        ctx.load_cert_chain(f"{PKI}/{identity}/cert.pem", f"{PKI}/{identity}/key.pem")
    try:
        with urllib.request.urlopen(DASH + path, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


# --- no data without a credential ---------------------------------------------------------------
for path in ("/", "/overdue", "/referral/REF-0000000000000001", "/?year=2026"):
    code, body = http_status(path)
    check(f"GET {path} without a credential is refused (401, no data)",
          code == 401 and "data-measure" not in body and "<table" not in body, code)
code, body = http_status("/", "force-NFK-psd")
check("a force's client certificate is refused (401)", code == 401, code)
code, body = http_status("/", "analyst-alice")
check("an analyst's client certificate is let in (200)", code == 200 and "data-measure" in body,
      code)


# --- WebDriver ----------------------------------------------------------------------------------
def wd(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{DRIVER_PORT}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["value"]


# The browser trusts the dashboard's own key and nothing else it cannot verify: the SPKI pin of
# the nca certificate (the dev CA is not in the browser's store).
spki = subprocess.run(
    f"openssl x509 -in {PKI}/nca/cert.pem -pubkey -noout | openssl pkey -pubin -outform der",
    shell=True, check=True, capture_output=True).stdout
pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
session = wd("POST", "/session", {"capabilities": {"alwaysMatch": {
    "browserName": "chrome",
    "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1366,900", f"--ignore-certificate-errors-spki-list={pin}",
        f"--user-data-dir={OUT}/chromium-profile"]}}}})
sid = session["sessionId"]
S = f"/session/{sid}"


def go(url):
    # A loaded machine can make the driver give up waiting for the renderer (HTTP 500, "timeout:
    # Timed out receiving message from renderer"); the page itself is fine. Try again, and say so.
    for attempt in range(3):
        try:
            wd("POST", f"{S}/url", {"url": url})
            return
        except urllib.error.HTTPError as e:
            if e.code != 500 or attempt == 2:
                raise
            print(f"note: the driver did not load {url} (attempt {attempt + 1}): "
                  f"{e.read()[:200]!r}; trying again", flush=True)
            time.sleep(2)


def js(script, *args):
    return wd("POST", f"{S}/execute/sync", {"script": script, "args": list(args)})


def click(css):
    el = wd("POST", f"{S}/element", {"using": "css selector", "value": css})
    wd("POST", f"{S}/element/{list(el.values())[0]}/click", {})


def wait_until(fn, timeout=30):
    """Polls fn until it returns something true or the deadline passes; returns its last value.
    A click that navigates returns before the new page is there: each step waits for the page
    state it checks, not for a fixed time."""
    import time
    deadline = time.time() + timeout
    while True:
        try:
            value = fn()
        except urllib.error.URLError:
            value = None
        if value or time.time() > deadline:
            return value
        time.sleep(0.1)


def url_with(*parts):
    url = wd("GET", f"{S}/url")
    return url if all(p in url for p in parts) else None


def screenshot(name):
    png = base64.b64decode(wd("GET", f"{S}/screenshot"))
    with open(f"{OUT}/{name}", "wb") as f:
        f.write(png)
    return len(png)


TILES = "return [...document.querySelectorAll('.tile')].map(t => [t.dataset.measure, t.dataset.value])"
ROWS = ("return [...document.querySelectorAll('#by_organisation tbody tr')].map(tr => "
        "[...tr.children].map(td => [td.dataset.col, td.dataset.value]))")


def fmt_count(m, name):
    return str(int(m.get(name, 0)))


def fmt_rate(m):
    return f"{m['responseRate']:.6f}" if "responseRate" in m else ""


def fmt_days(d):
    return f"{d['median']:.1f}" if "median" in d else ""


def compare_overview(label, filters):
    api = ctl("analyst-alice", "nca", "aggregates", "--by", "organisation", *filters)
    t = api["total"]
    tiles = dict(js(TILES))
    want_tiles = {"referred": fmt_count(t, "referred"),
                  "feedback_received": fmt_count(t, "feedbackReceived"),
                  "response_rate": fmt_rate(t), "overdue": fmt_count(t, "overdue"),
                  "escalated": fmt_count(t, "escalated"),
                  "days_to_outcome_median": fmt_days(t.get("daysToOutcome", {})),
                  "information_requests": fmt_count(t, "informationRequests"),
                  "days_to_answer_median": fmt_days(t.get("daysToAnswer", {})),
                  "daml": fmt_count(t, "daml"),
                  "referred_to_iopc": fmt_count(t, "referredToIopc"),
                  "recorded_on_behalf": fmt_count(t, "recordedOnBehalf")}
    check(f"{label}: the tiles equal the API's totals ({want_tiles['referred']} referred)",
          tiles == want_tiles, f"page {tiles} api {want_tiles}")
    page_rows = {r[0][1]: dict(r[1:]) for r in js(ROWS)}
    want_rows = {}
    for g in api.get("groups", []) + [{"key": ["All"], "measures": t}]:
        m = g["measures"]
        want_rows[g["key"][0]] = {
            "Referred": fmt_count(m, "referred"), "Feedback": fmt_count(m, "feedbackReceived"),
            "Response rate": fmt_rate(m),
            "Declined by force": fmt_count(m, "declinedByForce"),
            "Outcomes": fmt_count(m, "closedWithOutcome"),
            "Assistance declined": fmt_count(m, "assistanceDeclined"),
            "Overdue": fmt_count(m, "overdue"), "Escalated": fmt_count(m, "escalated"),
            "Median days to feedback": fmt_days(m.get("daysToFeedback", {})),
            "Median days to outcome": fmt_days(m.get("daysToOutcome", {}))}
    check(f"{label}: every cell of the organisation table equals the API's "
          f"({len(want_rows)} rows)", page_rows == want_rows,
          f"page {page_rows} api {want_rows}")
    return api


try:
    go(DASH + "/")
    title = wd("GET", f"{S}/title")
    check("the browser without a session sees the sign-in page only",
          title.startswith("Sign in") and not js(TILES), title)

    login = ctl("analyst-alice", "nca", "dashboard-login")["loginUrl"]
    go(login)
    title = wd("GET", f"{S}/title")
    url = wd("GET", f"{S}/url")
    check("a sign-in link opens the overview", title.startswith("Referral feedback overview") and
          url.rstrip("/") == DASH, f"{title} at {url}")
    code, _ = http_status(login[len(DASH):])
    check("the sign-in link works only once", code == 401, code)

    api = compare_overview("overview, all years", [])
    check("the overview has charts", js("return document.querySelectorAll('svg').length") >= 2)
    size = screenshot("dashboard-overview.png")
    check(f"screenshot of the overview saved ({size} bytes)", size > 10000, size)
    overflow = js("return document.documentElement.scrollWidth > window.innerWidth")
    check("the overview fits a 1366-pixel laptop screen (no sideways scrolling)", not overflow)

    # The filters: a year from the page's own list, and the region of the first organisation.
    years = js("return [...document.querySelectorAll('#year option')].map(o => o.value)"
               ".filter(v => v)")
    region = "EASTERN"
    check("the year filter lists the register's years", len(years) >= 1, years)
    click(f"#year option[value='{years[-1]}']")
    click(f"#region option[value='{region}']")
    click("form.filters button[type=submit]")
    url = wait_until(lambda: url_with(f"year={years[-1]}", f"region={region}"))
    check("choosing a year and a region reloads with both", url is not None,
          f"expected a URL with year={years[-1]} and region={region}, saw "
          f"{wd('GET', f'{S}/url')}")
    wait_until(lambda: js("return document.readyState") == "complete")
    filtered = compare_overview(f"year {years[-1]}, region {region}",
                                ["--year", years[-1], "--region", region])
    check("the region filter narrows the table",
          0 < int(filtered["total"].get("referred", 0)) < int(api["total"]["referred"]),
          filtered["total"])

    # Analyst question 1: which forces are slowest to give feedback this year? The year in the
    # filter, then the heading "Median days to feedback" (largest first).
    go(DASH + "/")
    wait_until(lambda: js("return document.readyState") == "complete")
    click(f"#year option[value='{years[-1]}']")
    click("form.filters button[type=submit]")
    wait_until(lambda: url_with(f"year={years[-1]}") and
               js("return document.readyState") == "complete")
    js("[...document.querySelectorAll('#by_organisation th a')].find(a => a.textContent == "
       "'Median days to feedback').click()")
    wait_until(lambda: url_with("sort=Median") and js("return document.readyState") == "complete")
    page = [dict(r) for r in js(ROWS)]
    shown = [(r["Organisation"], r["Median days to feedback"]) for r in page
             if r["Organisation"] != "All"]
    api = ctl("analyst-alice", "nca", "aggregates", "--by", "organisation", "--year", years[-1])
    medians = {g["key"][0]: g["measures"].get("daysToFeedback", {}).get("median")
               for g in api.get("groups", [])}
    slowest = max(v for v in medians.values() if v is not None)
    values = [float(v) for _, v in shown if v]
    check(f"question 1, slowest to give feedback in {years[-1]}: the sorted table opens with "
          f"{shown[0][0]} ({shown[0][1]} days), the API's slowest ({slowest:.1f})",
          shown and float(shown[0][1]) == slowest and values == sorted(values, reverse=True),
          f"page {shown} api {medians}")
    size = screenshot("dashboard-slowest-feedback.png")
    check(f"screenshot of the sorted table saved ({size} bytes)", size > 10000, size)
    # The same view as CSV: what the table shows, in its order, as a spreadsheet reads it.
    href = js("return document.querySelector('#export').getAttribute('href')")
    code, text = http_status(href, "analyst-alice")
    lines = [ln.split(",") for ln in text.strip().splitlines()]
    check("the view downloads as CSV with the table's rows in the table's order",
          code == 200 and lines[0][0] == "Organisation" and
          [ln[0] for ln in lines[1:]] == [r["Organisation"] for r in page] and
          [ln[lines[0].index("Median days to feedback")] for ln in lines[1:]] ==
          [r["Median days to feedback"] for r in page], f"{code} {text[:300]}")

    # Analyst question 2: how many SARs about officers led to dismissal, by region?
    go(DASH + "/")
    wait_until(lambda: js("return document.readyState") == "complete")
    click("#role option[value='OFFICER']")
    click("#outcome option[value='DISMISSED,DISMISSED_AFTER_RESIGNATION,"
          "DISMISSED_AFTER_VETTING_WITHDRAWAL']")
    click("#by option[value='region']")
    click("form.filters button[type=submit]")
    wait_until(lambda: url_with("by=region", "role=OFFICER") and
               js("return document.readyState") == "complete")
    regions = {r[0][1]: dict(r[1:])["Referred"] for r in js(
        "return [...document.querySelectorAll('#by_region tbody tr')].map(tr => "
        "[...tr.children].map(td => [td.dataset.col, td.dataset.value]))")}
    api = ctl("analyst-alice", "nca", "aggregates", "--by", "region", "--role", "officer",
              "--outcome", "dismissed", "--outcome", "dismissed_after_resignation",
              "--outcome", "dismissed_after_vetting_withdrawal")
    want = {g["key"][0]: fmt_count(g["measures"], "referred") for g in api.get("groups", [])}
    want["All"] = fmt_count(api["total"], "referred")
    check(f"question 2, officers dismissed by region: {regions} equals the API's",
          regions == want, f"page {regions} api {want}")
    size = screenshot("dashboard-officers-dismissed-by-region.png")
    check(f"screenshot of dismissals by region saved ({size} bytes)", size > 10000, size)

    # Drill down from a chart: a category's bar opens the overview filtered to that category.
    go(DASH + "/")
    wait_until(lambda: js("return document.readyState") == "complete")
    target = js("const a = [...document.querySelectorAll('svg a')].find(a => "
                "a.getAttribute('href').includes('category=')); return a && "
                "a.getAttribute('href')")
    click("svg a[href*='category=']")
    category = target.split("category=")[1].split("&")[0] if target else ""
    wait_until(lambda: url_with(f"category={category}") and
               js("return document.readyState") == "complete")
    tiles = dict(js(TILES))
    api = ctl("analyst-alice", "nca", "aggregates", "--category", category.lower())
    check(f"a chart's bar drills down to its category ({category}: {tiles.get('referred')} "
          "referred, as the API counts)",
          bool(category) and tiles.get("referred") == fmt_count(api["total"], "referred"),
          f"{target}: page {tiles.get('referred')} api {api['total']}")

    # The unit chart drills down too: a unit's bar filters by the unit that took the handover.
    go(DASH + "/")
    wait_until(lambda: js("return document.readyState") == "complete")
    target = js("const a = [...document.querySelectorAll('svg a')].find(a => "
                "a.getAttribute('href').includes('unit=')); return a && a.getAttribute('href')")
    unit = target.split("unit=")[1].split("&")[0] if target else ""
    if unit:
        click(f"svg a[href*='unit={unit}']")
        wait_until(lambda: url_with(f"unit={unit}") and
                   js("return document.readyState") == "complete")
    tiles = dict(js(TILES))
    api = ctl("analyst-alice", "nca", "aggregates", "--unit", unit) if unit else {"total": {}}
    check(f"a unit's bar drills down to that unit ({unit}: {tiles.get('referred')} referred, "
          "as the API counts)",
          bool(unit) and tiles.get("referred") == fmt_count(api["total"], "referred"),
          f"{target}: page {tiles.get('referred')} api {api['total']}")

    # A bad filter value is refused, naming the parameter.
    code, body = http_status("/?role=GENERAL", "analyst-alice")
    check("an unknown filter value is refused naming it (400, role)",
          code == 400 and "role: unknown value" in body, f"{code} {body[:200]}")

    # Overdue list, then a click through to a referral's timeline.
    click("header a[href='/overdue']")
    wait_until(lambda: url_with("/overdue") and
               js("return document.readyState") == "complete" and
               js("return !!document.querySelector(\".tile[data-measure='overdue']\")"))
    shown = js("return document.querySelector(\".tile[data-measure='overdue']\").dataset.value")
    overdue_api = ctl("analyst-alice", "nca", "overdue", "--all")
    check("the overdue list counts what the API lists",
          shown == str(len(overdue_api.get("entries", []))), f"{shown} vs "
          f"{len(overdue_api.get('entries', []))}")
    first = js("return document.querySelector('#overdue tbody a').textContent")
    click("#overdue tbody a")
    title = wait_until(lambda: (lambda t: t if first in t else None)(wd("GET", f"{S}/title")))
    title = title or wd("GET", f"{S}/title")
    wait_until(lambda: js("return document.readyState") == "complete")
    timeline = ctl("analyst-alice", "nca", "timeline", first)
    rows = js("return document.querySelectorAll('#events tbody tr').length")
    check(f"a click reaches the timeline of {first}, with every event the API has ({rows})",
          first in title and rows == len(timeline["events"]), f"{title}: {rows} rows vs "
          f"{len(timeline['events'])}")
    days = js("return [...document.querySelectorAll('#events tbody td[data-col=Day]')]"
              ".map(td => Number(td.dataset.value))")
    thr = js("return [...document.querySelectorAll('#entry tbody tr')].map(tr => "
             "tr.children[0].textContent + ': ' + tr.children[1].textContent)"
             ".find(t => t.startsWith('THR at referral'))")
    check(f"the timeline shows elapsed days (0 to {max(days) if days else '?'}) and the THR "
          f"({thr})", days and days[0] == 0 and days == sorted(days) and thr and "threat" in thr,
          f"{days} {thr}")
    size = screenshot("dashboard-timeline.png")
    check(f"screenshot of the timeline saved ({size} bytes)", size > 5000, size)

    click("header a[href='/logout']")
    wait_until(lambda: url_with("/logout") is None and
               js("return document.readyState") == "complete")
    go(DASH + "/")
    check("after signing out the overview asks to sign in again",
          wd("GET", f"{S}/title").startswith("Sign in"))

    # A force's own view, under the force's identity: its figures beside the national ones, its
    # open referrals by what is due, nothing of other organisations.
    year_now = years[-1]
    def login_as(identity):
        out = subprocess.run([CTL, "--timeout", "30", "--identity", f"{PKI}/{identity}",
                              "--user", "browser.test", "--target", f"localhost:{BASE + 2}",
                              "--json", "nca", "dashboard-login"],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)["loginUrl"]
    go(login_as("force-NFK-psd"))
    wait_until(lambda: js("return document.readyState") == "complete")
    title = wd("GET", f"{S}/title")
    tiles = dict(js(TILES))
    api = ctl("analyst-alice", "nca", "aggregates", "--org", "NFK", "--year", year_now)
    nat = ctl("analyst-alice", "nca", "aggregates", "--year", year_now)
    check(f"NFK's sign-in opens NFK's own view ({title})",
          title.startswith("NFK: referral feedback") and
          tiles.get("referred") == fmt_count(api["total"], "referred") and
          tiles.get("overdue") == fmt_count(api["total"], "overdue"),
          f"{title} {tiles} {api['total']}")
    against = {r[0][1]: dict(r[1:]) for r in js(
        "return [...document.querySelectorAll('#against_national tbody tr')].map(tr => "
        "[...tr.children].map(td => [td.dataset.col, td.dataset.value]))")}
    check("NFK's timeliness stands beside the national figure, as the API computes both",
          against.get("feedback", {}).get("NFK") == fmt_days(api["total"].get("daysToFeedback", {}))
          and against.get("feedback", {}).get("National") ==
          fmt_days(nat["total"].get("daysToFeedback", {})), against)
    listed = js("return [...document.querySelectorAll('#open_referrals tbody tr td:first-child')]"
                ".map(td => td.textContent)")
    everything = ctl("analyst-alice", "nca", "list", "--org", "NFK", "--all")
    ended = {"REFERRAL_STATE_" + x for x in ("DECLINED_BY_FORCE", "CLOSED_BY_FORCE",
                                             "OUTCOME_RECORDED", "WITHDRAWN", "REDIRECTED")}
    want_open = {e["referralId"] for e in everything.get("entries", [])
                 if e.get("state") not in ended}
    check(f"NFK's open referrals are listed, and only NFK's ({len(listed)})",
          set(listed) == want_open, f"page {sorted(listed)[:5]} api {sorted(want_open)[:5]}")
    size = screenshot("dashboard-force-NFK.png")
    check(f"screenshot of NFK's view saved ({size} bytes)", size > 10000, size)
    other = next((e["referralId"] for e in ctl("analyst-alice", "nca", "list", "--org", "MPS",
                                                "--all").get("entries", [])), None)
    go(f"{DASH}/referral/{other}")
    wait_until(lambda: js("return document.readyState") == "complete")
    check("another organisation's referral does not exist for NFK",
          wd("GET", f"{S}/title").startswith("No such referral"), wd("GET", f"{S}/title"))
    go(f"{DASH}/overdue")
    wait_until(lambda: js("return document.readyState") == "complete")
    check("the analysts' pages are not NFK's",
          wd("GET", f"{S}/title").startswith("Not for this view"), wd("GET", f"{S}/title"))

    # The police and crime commissioner's read-only view: the figures, no referral.
    go(login_as("oversight-NFK-pcc"))
    wait_until(lambda: js("return document.readyState") == "complete")
    title = wd("GET", f"{S}/title")
    tiles = dict(js(TILES))
    check(f"NFK's police and crime commissioner sees the figures only ({title})",
          "police and crime commissioner" in title and
          tiles.get("referred") == fmt_count(api["total"], "referred") and
          not js("return document.querySelectorAll('a[href^=\"/referral/\"]').length"),
          f"{title} {tiles}")
    size = screenshot("dashboard-pcc-NFK.png")
    check(f"screenshot of the commissioner's view saved ({size} bytes)", size > 5000, size)
    some = next(iter(want_open), None)
    go(f"{DASH}/referral/{some}")
    wait_until(lambda: js("return document.readyState") == "complete")
    check("the commissioner cannot open a referral",
          wd("GET", f"{S}/title").startswith("Not for this view"), wd("GET", f"{S}/title"))
    code, body = http_status("/", "oversight-NFK-dcc")
    check("a certificate alone opens no organisation view (401)", code == 401, code)
finally:
    wd("DELETE", S)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
