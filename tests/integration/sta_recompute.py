#!/usr/bin/python3
"""Recomputes every number of an STA summary CSV from the register's raw events.

Reads the whole register over mTLS (ListRegister, then GetTimeline for each referral), derives each
referral's facts from its events alone (not from the register's own entry), computes every table
of the report with its own code, and compares cell by cell: values, and the set of rows.

Usage: sta_recompute.py PKI_DIR NCA_TARGET STUBS_DIR REFERENCE_DIR REPORT.csv
Stubs: protoc --python_out=STUBS_DIR for proto/ (message classes only; calls go through the
generic channel API, so no grpc plugin is needed).
"""
import collections
import csv
import datetime
import sys

import grpc

PKI, TARGET, STUBS, REFERENCE, REPORT = sys.argv[1:6]
sys.path.insert(0, STUBS)
from sarloop.v1 import nca_pb2, types_pb2  # noqa: E402

DAY = 86400
ET = types_pb2.EventType
FEEDBACK_ENDS = {ET.Value("EVENT_TYPE_DECLINED_BY_FORCE"), ET.Value("EVENT_TYPE_CLOSED_BY_FORCE"),
                 ET.Value("EVENT_TYPE_OUTCOME_RECORDED")}
ENDS = FEEDBACK_ENDS | {ET.Value("EVENT_TYPE_WITHDRAWN"), ET.Value("EVENT_TYPE_REDIRECTED")}


def read(path):
    with open(path, "rb") as f:
        return f.read()


creds = grpc.ssl_channel_credentials(read(f"{PKI}/ca/ca.pem"), read(f"{PKI}/analyst-alice/key.pem"),
                                     read(f"{PKI}/analyst-alice/cert.pem"))
channel = grpc.secure_channel(TARGET, creds)


def call(method, request, response_type):
    stub = channel.unary_unary(f"/sarloop.v1.Nca/{method}",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response_type.FromString)
    return stub(request, timeout=30)


def fy_of(seconds):
    d = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    year = d.year if d.month >= 4 else d.year - 1
    quarter = ((d.month + 8) % 12) // 3 + 1
    return year, quarter


def fy_name(year):
    return f"{year:04d}-{(year + 1) % 100:02d}"


def date(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d")


# --- the register, from raw events ------------------------------------------------------------
regions = {}
with open(f"{REFERENCE}/organisations.csv") as f:
    for row in csv.DictReader(f):
        regions[row["code"]] = row["region"] or "NATIONAL"

ids, token = [], ""
while True:
    page = call("ListRegister", nca_pb2.ListRegisterRequest(page_size=1000, page_token=token),
                nca_pb2.ListRegisterResponse)
    ids += [e.referral_id for e in page.entries]
    token = page.next_page_token
    if not token:
        break

# The staged clocks as the README states them ("Staged clocks"), worked out here from the events
# on their own: acknowledgement due at the dispatch's ack_due_at; the first decision (a decline,
# close, handover, joint investigation, or a progress or outcome update) due at due_at, or, after
# a unit declined to assist, as long after that as the first was after dispatch; then a contact at
# the interval the priority sets.
INTERVAL_DAYS = {1: 30, 2: 60, 3: 90, 4: 180}
DECISIONS = {ET.Value(n) for n in ("EVENT_TYPE_DECLINED_BY_FORCE", "EVENT_TYPE_CLOSED_BY_FORCE",
                                   "EVENT_TYPE_HANDED_OVER",
                                   "EVENT_TYPE_JOINT_INVESTIGATION_OPENED",
                                   "EVENT_TYPE_OUTCOME_UPDATED")}
REG19_NOTE = types_pb2.ProgressStatus.Value("PROGRESS_STATUS_REG19_NOT_REPORTED_PREJUDICE")
RFI_Q = ET.Value("EVENT_TYPE_INFORMATION_REQUESTED")
RFI_A = ET.Value("EVENT_TYPE_INFORMATION_PROVIDED")


def nanos(e):
    return e.occurred_at.seconds * 10**9 + e.occurred_at.nanos


# Requests for information (README, "Requests for information"): an answer counts when it comes
# from the party asked, to the party that asked; the first such answer of a thread, in time order.
def answers_of(events):
    asks = {e.thread_id: e for e in events if e.type == RFI_Q}
    out = {}
    for e in events:
        q = asks.get(e.thread_id)
        if e.type == RFI_A and q is not None and q.thread_with == e.producer \
                and q.producer == e.thread_with and e.thread_id not in out:
            out[e.thread_id] = nanos(e)
    return out


def next_due(d, events):
    acked = decided = last = None
    decision_due = d.due_at.seconds
    priority = 0
    # The force's open requests to UKFIU before its first decision pause that clock; the wait is
    # added when the last is answered.
    answers = answers_of(events)
    asked, pausing, paused_since = set(), set(), None

    def answered(thread, at):
        nonlocal paused_since, decision_due
        if thread in pausing:
            pausing.discard(thread)
            if not pausing and paused_since is not None:
                decision_due += max(0, at // 10**9 - paused_since)
                paused_since = None

    for e in events:
        s = e.occurred_at.seconds
        if e.type == RFI_Q and e.thread_id and e.thread_id not in asked:
            asked.add(e.thread_id)
            from_force = e.producer == e.organisation and not e.unit
            if from_force:
                acked = acked or s
            if from_force and e.thread_with == "UKFIU" and decided is None:
                if not pausing:
                    paused_since = s
                pausing.add(e.thread_id)
            a = answers.get(e.thread_id)
            if a is not None and a <= nanos(e):
                answered(e.thread_id, nanos(e))
        if e.type == RFI_A and answers.get(e.thread_id) == nanos(e):
            answered(e.thread_id, nanos(e))
        if e.priority:
            priority = e.priority
        decision = e.type in DECISIONS or (e.type == ET.Value("EVENT_TYPE_PROGRESS_UPDATED")
                                           and e.progress != REG19_NOTE)
        if e.type in (ET.Value("EVENT_TYPE_ACKNOWLEDGED"), ET.Value("EVENT_TYPE_RESEARCH_STARTED")):
            acked = acked or s
        if decision:
            acked, decided = acked or s, decided or s
            last = max(last or s, s)
            pausing.clear()
            paused_since = None
        if e.type == ET.Value("EVENT_TYPE_ASSISTANCE_DECLINED"):
            decided = None
            decision_due = s + (d.due_at.seconds - d.occurred_at.seconds)
            last = max(last or s, s)
    if acked is None:
        return d.ack_due_at.seconds or d.due_at.seconds
    if decided is None:
        return 0 if paused_since is not None else decision_due
    return max(decided, last) + INTERVAL_DAYS.get(priority, 90) * DAY


# When the force first acknowledged, and the first decision that stands (a unit's decline to
# assist puts the referral back with the force, which owes a new one), by the same rules as the
# running clock above.
def ack_and_decision(events):
    acked = decided = None
    asked = set()
    for e in events:
        s = e.occurred_at.seconds
        if e.type == RFI_Q and e.thread_id and e.thread_id not in asked:
            asked.add(e.thread_id)
            if e.producer == e.organisation and not e.unit:
                acked = acked or s
        if e.type in (ET.Value("EVENT_TYPE_ACKNOWLEDGED"), ET.Value("EVENT_TYPE_RESEARCH_STARTED")):
            acked = acked or s
        if e.type in DECISIONS or (e.type == ET.Value("EVENT_TYPE_PROGRESS_UPDATED")
                                   and e.progress != REG19_NOTE):
            acked, decided = acked or s, decided or s
        if e.type == ET.Value("EVENT_TYPE_ASSISTANCE_DECLINED"):
            decided = None
    return acked, decided


# Regulation 19: 12 calendar months after the force received the referral (the dispatch without a
# receipt).
def reg19_due(d, events):
    received = [e.occurred_at.seconds for e in events if e.type == ET.Value("EVENT_TYPE_RECEIVED")]
    start = datetime.datetime.fromtimestamp(min(received) if received else d.occurred_at.seconds,
                                            datetime.timezone.utc)
    try:
        due = start.replace(year=start.year + 1)
    except ValueError:  # 29 February: the next day, as the services count
        due = start.replace(year=start.year + 1, month=3, day=1)
    return int(due.timestamp())


# The track an outcome type is on, written out from the proto's comments (not from the code).
def track_of(outcome_type):
    name = types_pb2.OutcomeType.Name(outcome_type)[len("OUTCOME_TYPE_"):]
    if name.startswith("CRIMINAL_"):
        return "CRIMINAL"
    if name.startswith("VETTING_") or name == "DISMISSED_AFTER_VETTING_WITHDRAWAL":
        return "VETTING"
    if name in ("BARRED_LIST_ENTRY", "ADVISORY_LIST_ENTRY"):
        return "LISTING"
    if name in ("STAFF_MISCONDUCT_PROCEDURE", "CONTRACT_ENDED"):
        return "STAFF"
    if name in ("NOT_OUR_PERSONNEL", "INTELLIGENCE_ONLY"):
        return None
    return "CONDUCT"


# Each track's latest outcome: the updates up to the end (one at the end's instant comes first),
# then the end's own outcome.
def tracks_of(events, end, end_time, t):
    tracks = {}
    for e in events:
        if e.type == ET.Value("EVENT_TYPE_OUTCOME_UPDATED") and e.outcome.type and (
                end_time is None or t(e) <= end_time):
            tracks[track_of(e.outcome.type)] = e.outcome.type
    if end is not None and end.outcome.type:
        tracks[track_of(end.outcome.type)] = end.outcome.type
    tracks.pop(None, None)
    return tracks


# Requests asked and answered before the referral ended, and the whole days answers took on
# average: counts and times are all the register has of a thread.
def information(events, end_time):
    answers = answers_of(events)
    asks, seen = [], set()
    for e in events:
        if e.type == RFI_Q and e.thread_id and e.thread_id not in seen:
            seen.add(e.thread_id)
            if end_time is None or nanos(e) < end_time:
                asks.append(e)
    waits = []
    for q in asks:
        a = answers.get(q.thread_id)
        if a is not None and (end_time is None or max(a, nanos(q)) < end_time):
            waits.append(max(0, a - nanos(q)) // 10**9)
    days = sum(waits) // len(waits) // DAY if waits else None
    return len(asks), len(waits), days


# The referral's role as the register groups it: the first known role of its subjects, the
# dispatched SAR's first, then those of SARs attached before it ended (each subject once).
def role_of(d, events):
    refs = list(d.subject_refs)
    roles = list(d.subject_roles) + [0] * (len(refs) - len(d.subject_roles))
    for e in events:
        if e.type != ET.Value("EVENT_TYPE_SAR_ATTACHED"):
            continue
        for i, ref in enumerate(e.subject_refs):
            if ref not in refs:
                refs.append(ref)
                roles.append(e.subject_roles[i] if i < len(e.subject_roles) else 0)
    return next((r for r in roles if r), 0)


facts = []
for rid in ids:
    events = list(call("GetTimeline", nca_pb2.GetTimelineRequest(referral_id=rid),
                       nca_pb2.GetTimelineResponse).events)
    t = lambda e: (e.occurred_at.seconds, e.occurred_at.nanos)  # noqa: E731
    events.sort(key=t)
    disp = [e for e in events if e.type == ET.Value("EVENT_TYPE_DISPATCHED")]
    assert len(disp) == 1, f"{rid}: {len(disp)} DISPATCHED events"
    d = disp[0]
    ends = [e for e in events if e.type in ENDS]
    end = ends[0] if ends else None  # the first end is final
    end_time = t(end) if end else None
    before_end = [e for e in events if end_time is None or t(e) < end_time]
    requests, answered, answer_days = information(
        events, None if end is None else nanos(end))
    acked, decided = ack_and_decision(before_end + ([end] if end else []))
    facts.append({
        "id": rid,
        "org": d.organisation,
        "region": regions.get(d.organisation, "UNKNOWN"),
        "dispatched": d.occurred_at.seconds,
        "acked": acked,
        "decided": decided,
        "due_at": d.due_at.seconds,
        "fy": fy_of(d.occurred_at.seconds),
        "due": next_due(d, before_end),
        "reg19": reg19_due(d, events),
        "subjects": set(d.subject_refs) | {s for e in events if e.type == ET.Value(
            "EVENT_TYPE_SAR_ATTACHED") and (end_time is None or t(e) < end_time)
            for s in e.subject_refs},
        "end": end.type if end else None,
        "feedback": end.occurred_at.seconds if end and end.type in FEEDBACK_ENDS else None,
        "outcome": end.outcome if end and end.type != ET.Value("EVENT_TYPE_DECLINED_BY_FORCE")
        and end.type in FEEDBACK_ENDS else None,
        "unit": next((e.unit for e in reversed(events) if e.unit), ""),
        "tracks": tracks_of(events, end, end_time, t),
        "decline_reason": end.decline_reason if end is not None
        and end.type == ET.Value("EVENT_TYPE_DECLINED_BY_FORCE") else 0,
        "priority": next((e.priority for e in reversed(events)
                          if e.priority and (end_time is None or t(e) <= end_time)), 0),
        "assistance_declines": sum(e.type == ET.Value("EVENT_TYPE_ASSISTANCE_DECLINED")
                                   for e in events),
        "escalated": any(e.type == ET.Value("EVENT_TYPE_ESCALATED") for e in before_end),
        "case": d.case_id or rid,
        "thr": max(d.thr.threat, d.thr.risk, d.thr.harm),
        "handed_over": bool(next((e.unit for e in reversed(events) if e.unit), "")),
        # The outcome names the subject it concerns; else the referral's first known role.
        "role": end.outcome.subject_role if end and end.type in FEEDBACK_ENDS and end.type !=
        ET.Value("EVENT_TYPE_DECLINED_BY_FORCE") and end.outcome.subject_role
        else role_of(d, before_end),
        "route": d.route or types_pb2.ReferralRoute.Value("REFERRAL_ROUTE_DIRECT"),
        "daml": d.daml,
        "on_behalf": d.recorded_on_behalf,
        "iopc": any(e.type == ET.Value("EVENT_TYPE_REFERRED_TO_IOPC") for e in before_end),
        "information_requests": requests,
        "information_answered": answered,
        "answer_days": answer_days,
        "reason": next((e.reason for e in reversed(events) if e.reason and e.type in (
            ET.Value("EVENT_TYPE_DECLINED_BY_FORCE"), ET.Value("EVENT_TYPE_ASSISTANCE_DECLINED"),
            ET.Value("EVENT_TYPE_WITHDRAWN"), ET.Value("EVENT_TYPE_REDIRECTED"))
            and (end_time is None or t(e) <= end_time)), ""),
    })
subject_count = collections.Counter(s for f in facts for s in f["subjects"])

# --- the report's expectations -----------------------------------------------------------------
# The report writes a text cell that a spreadsheet would run as a formula with a leading apostrophe
# (common/base/csv.h); the value is the cell without it.
def value(cell):
    return cell[1:] if len(cell) > 1 and cell[0] == "'" and cell[1] in "=+-@\t\r" else cell


rows = [[value(c) for c in r] for r in csv.reader(open(REPORT, newline=""))]
assert rows[0] == ["table", "key", "column", "value"], rows[0]
meta = {r[2]: r[3] for r in rows[1:] if r[0] == "meta"}
YEAR = int(meta["financial_year"])
AS_OF = int(datetime.datetime.fromisoformat(meta["as_of"]).timestamp())
assert meta["publication"] == "false", "recompute the unsuppressed report"


def median(v):
    v = sorted(v)
    n = len(v)
    return None if n == 0 else (v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


def p90(v):
    v = sorted(v)
    return None if not v else v[(9 * len(v) + 9) // 10 - 1]


def p25(v):
    v = sorted(v)
    return None if not v else v[(len(v) + 3) // 4 - 1]


def p75(v):
    v = sorted(v)
    return None if not v else v[(3 * len(v) + 3) // 4 - 1]


def measures(fs):
    m = {}
    is_open = lambda f: f["end"] is None  # noqa: E731
    m["referred"] = len(fs)
    m["feedback_received"] = sum(f["feedback"] is not None for f in fs)
    m["declined_by_force"] = sum(f["end"] == ET.Value("EVENT_TYPE_DECLINED_BY_FORCE") for f in fs)
    m["closed_with_outcome"] = sum(f["outcome"] is not None for f in fs)
    m["withdrawn"] = sum(f["end"] == ET.Value("EVENT_TYPE_WITHDRAWN") for f in fs)
    m["redirected"] = sum(f["end"] == ET.Value("EVENT_TYPE_REDIRECTED") for f in fs)
    m["open"] = sum(is_open(f) for f in fs)
    m["assistance_declined"] = sum(f["assistance_declines"] > 0 for f in fs)
    m["overdue"] = sum(is_open(f) and 0 < f["due"] < AS_OF for f in fs)
    m["escalated"] = sum(f["escalated"] for f in fs)
    m["open_over_12_months"] = sum(is_open(f) and f["reg19"] <= AS_OF for f in fs)
    m["repeat_subjects"] = len({s for f in fs for s in f["subjects"] if subject_count[s] >= 2})
    asked = m["referred"] - m["withdrawn"] - m["redirected"]
    m["response_rate"] = m["feedback_received"] / asked if asked else None
    fb = [(f["feedback"] - f["dispatched"]) // DAY for f in fs if f["feedback"] is not None]
    out = [(f["feedback"] - f["dispatched"]) // DAY for f in fs if f["outcome"] is not None]
    m["days_to_feedback_median"] = median(fb)
    m["days_to_outcome_median"] = median(out)
    m["days_to_outcome_p90"] = p90(out)
    m["outcomes_n"] = len(out)
    m["cases"] = len({f["case"] for f in fs})
    m["distinct_subjects"] = len({s for f in fs for s in f["subjects"]})
    m["daml"] = sum(f["daml"] for f in fs)
    m["recorded_on_behalf"] = sum(f["on_behalf"] for f in fs)
    m["referred_to_iopc"] = sum(f["iopc"] for f in fs)
    m["information_requests"] = sum(f["information_requests"] for f in fs)
    m["information_answered"] = sum(f["information_answered"] for f in fs)
    m["days_to_answer_median"] = median([f["answer_days"] for f in fs
                                         if f["answer_days"] is not None])
    ack = [(f["acked"] - f["dispatched"]) // DAY for f in fs if f["acked"] is not None
           and f["acked"] >= f["dispatched"]]
    dec = [(f["decided"] - f["dispatched"]) // DAY for f in fs if f["decided"] is not None
           and f["decided"] >= f["dispatched"]]
    for name, v in (("acknowledge", ack), ("decision", dec), ("feedback", fb), ("outcome", out)):
        m[f"{name}_n"] = len(v)
        m[f"{name}_p25"], m[f"{name}_median"], m[f"{name}_p75"], m[f"{name}_p90"] = \
            p25(v), median(v), p75(v), p90(v)
    m["days_to_acknowledge_median"] = median(ack)
    m["days_to_decision_median"] = median(dec)
    past = [f for f in fs if f["end"] not in (ET.Value("EVENT_TYPE_WITHDRAWN"),
                                              ET.Value("EVENT_TYPE_REDIRECTED"))
            and 0 < f["due_at"] <= AS_OF]
    m["past_due"] = len(past)
    m["past_due_answered"] = sum(f["decided"] is not None for f in past)
    m["response_rate_due"] = m["past_due_answered"] / len(past) if past else None
    open_ = [f["dispatched"] for f in fs if is_open(f)]
    silent = [f["dispatched"] for f in past if is_open(f) and f["decided"] is None]
    m["oldest_open_days"] = max(0, (AS_OF - min(open_)) // DAY) if open_ else 0
    m["oldest_unanswered_days"] = max(0, (AS_OF - min(silent)) // DAY) if silent else 0
    return m


def fmt(v, kind):
    if v is None:
        return ""
    return {"count": lambda: str(v), "rate": lambda: f"{v:.6f}", "days": lambda: f"{v:.1f}"}[kind]()


KIND = {"response_rate": "rate", "Response rate": "rate", "response_rate_due": "rate",
        "Response rate, past due date": "rate"}
for k in ("days_to_feedback_median", "days_to_outcome_median", "days_to_outcome_p90",
          "days_to_answer_median", "days_to_acknowledge_median", "days_to_decision_median",
          "25th percentile", "Median", "75th percentile", "90th percentile",
          "Median days to feedback", "Median days to outcome", "Median days to outcome",
          "90th percentile days to outcome"):
    KIND[k] = "days"

expected = {}


def put(table, key, column, value, kind=None):
    expected[(table, key, column)] = fmt(value, kind or KIND.get(column, "count"))


this_year = [f for f in facts if f["fy"][0] == YEAR]
prev_year = [f for f in facts if f["fy"][0] == YEAR - 1]
for label, fs in ((fy_name(YEAR), this_year), (fy_name(YEAR - 1), prev_year)):
    m = measures(fs)
    for key in ("referred", "cases", "distinct_subjects", "feedback_received", "response_rate", "declined_by_force",
                "closed_with_outcome", "assistance_declined", "withdrawn", "redirected", "open",
                "overdue", "escalated", "open_over_12_months", "repeat_subjects",
                "information_requests", "information_answered", "daml", "referred_to_iopc",
                "recorded_on_behalf", "days_to_feedback_median", "days_to_outcome_median", "days_to_outcome_p90",
                "days_to_answer_median", "past_due", "past_due_answered", "response_rate_due",
                "days_to_acknowledge_median", "days_to_decision_median"):
        put("headline", key, label, m[key], KIND.get(key, "count"))

COLUMNS = [("Referred", "referred"), ("Feedback", "feedback_received"),
           ("Response rate", "response_rate"), ("Declined by force", "declined_by_force"),
           ("Outcomes", "closed_with_outcome"), ("Assistance declined", "assistance_declined"),
           ("Overdue", "overdue"), ("Escalated", "escalated"),
           ("Median days to feedback", "days_to_feedback_median"),
           ("Median days to outcome", "days_to_outcome_median")]
for table, field in (("by_organisation", "org"), ("by_region", "region")):
    groups = collections.defaultdict(list)
    for f in this_year:
        groups[f[field]].append(f)
    for key, fs in list(groups.items()) + [("All", this_year)]:
        m = measures(fs)
        for column, name in COLUMNS:
            put(table, key, column, m[name])
    if table == "by_organisation":
        for key, fs in groups.items():
            m = measures(fs)
            if m["overdue"] or m["escalated"] or m["open_over_12_months"]:
                put("overdue_escalated", key, "Overdue", m["overdue"])
                put("overdue_escalated", key, "Escalated", m["escalated"])
                put("overdue_escalated", key, "Open over 12 months", m["open_over_12_months"])
        m = measures(this_year)
        put("overdue_escalated", "All", "Overdue", m["overdue"])
        put("overdue_escalated", "All", "Escalated", m["escalated"])
        put("overdue_escalated", "All", "Open over 12 months", m["open_over_12_months"])

# Outcomes by category: one column per outcome type seen in the year.
with_outcome = [f for f in this_year if f["outcome"] is not None]
types = sorted({f["outcome"].type for f in with_outcome})
type_column = {t: types_pb2.OutcomeType.Name(t)[len("OUTCOME_TYPE_"):].replace("_", " ")
               .lower().capitalize() for t in types}
by_cat = collections.defaultdict(list)
for f in with_outcome:
    by_cat[types_pb2.CorruptionCategory.Name(f["outcome"].category)[len("CORRUPTION_CATEGORY_"):]] \
        .append(f)
for key, fs in list(by_cat.items()) + [("All", with_outcome)]:
    put("outcomes_by_category", key, "Outcomes", len(fs))
    for t in types:
        put("outcomes_by_category", key, type_column[t], sum(f["outcome"].type == t for f in fs))

def outcome_table(table, key_of):
    types = sorted({f["outcome"].type for f in with_outcome})
    column = {t: types_pb2.OutcomeType.Name(t)[len("OUTCOME_TYPE_"):].replace("_", " ")
              .lower().capitalize() for t in types}
    groups = collections.defaultdict(list)
    for f in with_outcome:
        groups[key_of(f)].append(f)
    for key, fs in list(groups.items()) + [("All", with_outcome)]:
        put(table, key, "Outcomes", len(fs))
        for t in types:
            put(table, key, column[t], sum(f["outcome"].type == t for f in fs))


ROLE = lambda f: types_pb2.SubjectRole.Name(f["role"])[len("SUBJECT_ROLE_"):]  # noqa: E731
CATEGORY = lambda f: types_pb2.CorruptionCategory.Name(  # noqa: E731
    f["outcome"].category)[len("CORRUPTION_CATEGORY_"):]
outcome_table("outcomes_by_role", ROLE)
for (role, category), n in collections.Counter(
        (ROLE(f), CATEGORY(f)) for f in with_outcome).items():
    expected[("role_by_category", f"{role}:{category}", "Category")] = \
        category.replace("_", " ").lower().capitalize()
    put("role_by_category", f"{role}:{category}", "Outcomes", n)

# UKFIU's THR at referral (its highest level) against what came of the referrals.
HEAVY = {types_pb2.OutcomeType.Value(f"OUTCOME_TYPE_{n}") for n in (
    "DISMISSED", "DISMISSED_AFTER_RESIGNATION", "DISMISSED_AFTER_VETTING_WITHDRAWAL",
    "CRIMINAL_CONVICTED")}
by_thr = collections.defaultdict(list)
for f in this_year:
    by_thr[types_pb2.ThrLevel.Name(f["thr"])[len("THR_LEVEL_"):] if f["thr"] else "NONE"].append(f)
for level, fs in by_thr.items():
    m = measures(fs)
    put("thr_outcomes", level, "Referred", m["referred"])
    put("thr_outcomes", level, "Declined by force", m["declined_by_force"])
    put("thr_outcomes", level, "Handed over", sum(f["handed_over"] for f in fs))
    put("thr_outcomes", level, "Outcomes", m["closed_with_outcome"])
    put("thr_outcomes", level, "Dismissal or conviction",
        sum(f["outcome"] is not None and f["outcome"].type in HEAVY for f in fs))

# Direct and indirect referrals.
by_route = collections.defaultdict(list)
for f in this_year:
    by_route[types_pb2.ReferralRoute.Name(f["route"])[len("REFERRAL_ROUTE_"):]].append(f)
for route, fs in by_route.items():
    m = measures(fs)
    put("route_yield", route, "Referred", m["referred"])
    put("route_yield", route, "Feedback", m["feedback_received"])
    put("route_yield", route, "Response rate", m["response_rate"])
    put("route_yield", route, "Declined by force", m["declined_by_force"])
    put("route_yield", route, "Outcomes", m["closed_with_outcome"])

# Unit demand: the year's referrals handed to each unit.
by_unit = collections.defaultdict(list)
for f in this_year:
    if f["unit"]:
        by_unit[f["unit"]].append(f)
for unit, fs in by_unit.items():
    m = measures(fs)
    put("unit_demand", unit, "Handed over", m["referred"])
    put("unit_demand", unit, "Assistance declined", m["assistance_declined"])
    put("unit_demand", unit, "Open", m["open"])
    put("unit_demand", unit, "Oldest open (days)", m["oldest_open_days"])
    put("unit_demand", unit, "Outcomes", m["closed_with_outcome"])


def enum_text(name):
    return name.replace("_", " ").lower().capitalize()


track_counts = collections.Counter()
for f in this_year:
    for track, outcome_type in f["tracks"].items():
        track_counts[(track, types_pb2.OutcomeType.Name(outcome_type)[len("OUTCOME_TYPE_"):])] += 1
for (track, name), n in track_counts.items():
    expected[("outcomes_by_track", f"{track}:{name}", "Outcome")] = enum_text(name)
    put("outcomes_by_track", f"{track}:{name}", "Referrals", n)

declined = [f for f in this_year if f["end"] == ET.Value("EVENT_TYPE_DECLINED_BY_FORCE")]
for code, n in collections.Counter(f["decline_reason"] for f in declined).items():
    name = types_pb2.DeclineReason.Name(code)[len("DECLINE_REASON_"):] if code else "NONE"
    if name != "NONE":
        put("declines_by_reason", name, "Declines", n)
put("declines_by_reason", "All", "Declines", len(declined))

PRIORITY = {0: "NONE", 1: "P1", 2: "P2", 3: "P3", 4: "P4"}
for table, key_of in (("by_unit", lambda f: f["unit"] or "NONE"),
                      ("by_priority", lambda f: PRIORITY[f["priority"]])):
    groups = collections.defaultdict(list)
    for f in this_year:
        groups[key_of(f)].append(f)
    for key, fs in list(groups.items()) + [("All", this_year)]:
        m = measures(fs)
        for column, name in COLUMNS:
            put(table, key, column, m[name])

for y in (YEAR - 1, YEAR):
    for q in range(1, 5):
        key = f"{fy_name(y)} Q{q}"
        fs = [f for f in facts if f["fy"] == (y, q)]
        m = measures(fs)
        put("trend", key, "Referred", m["referred"])
        put("trend", key, "Feedback", m["feedback_received"])
        put("trend", key, "Response rate", m["response_rate"])
        if y == YEAR:
            put("time_to_outcome", key, "Outcomes", m["closed_with_outcome"])
            put("time_to_outcome", key, "Median days to outcome", m["days_to_outcome_median"])
            put("time_to_outcome", key, "90th percentile days to outcome", m["days_to_outcome_p90"])
            put("time_to_outcome", key, "Median days to feedback", m["days_to_feedback_median"])

for f in this_year:
    by_force = f["end"] == ET.Value("EVENT_TYPE_DECLINED_BY_FORCE")
    if not by_force and f["assistance_declines"] == 0:
        continue
    t = "declined_register"
    expected[(t, f["id"], "Organisation")] = f["org"]
    expected[(t, f["id"], "Dispatched")] = date(f["dispatched"])
    expected[(t, f["id"], "Declined by force")] = date(f["feedback"]) if by_force else ""
    expected[(t, f["id"], "Unit declines")] = str(f["assistance_declines"])
    expected[(t, f["id"], "Unit")] = f["unit"]
    expected[(t, f["id"], "Reason")] = f["reason"]

# Coverage: every organisation that takes referrals (all but the NCA's register), this year's
# referrals, those UKFIU recorded on its behalf, and referrals per 1,000 officers where a published
# figure is held.
workforce = {}
with open(f"{REFERENCE}/workforce.csv") as f:
    for row in csv.DictReader(line for line in f if not line.startswith("#")):
        workforce[row["code"]] = float(row["officers_fte"])
by_org = collections.defaultdict(list)
for f in this_year:
    by_org[f["org"]].append(f)
codes = [c for c in regions if c != "NCA"] + [c for c in by_org if c not in regions]
for org in codes:
    fs = by_org.get(org, [])
    behalf = sum(f["on_behalf"] for f in fs)
    put("coverage", org, "Referred", len(fs))
    m = measures(fs)
    put("coverage", org, "Cases", m["cases"])
    put("coverage", org, "Distinct subjects", m["distinct_subjects"])
    put("coverage", org, "Recorded on behalf", behalf)
    expected[("coverage", org, "On sarloop")] = "no referrals" if not fs else \
        "yes" if behalf < len(fs) else "no: recorded by UKFIU"
    fte = workforce.get(org)
    expected[("coverage", org, "Officers (FTE)")] = str(round(fte)) if fte else ""
    expected[("coverage", org, "Referred per 1,000 officers")] = \
        f"{len(fs) * 1000 / fte:.2f}" if fte else ""

# Timeliness: the year's distributions.
m = measures(this_year)
for key in ("acknowledge", "decision", "feedback", "outcome"):
    put("timeliness", key, "Referrals", m[f"{key}_n"])
    put("timeliness", key, "25th percentile", m[f"{key}_p25"])
    put("timeliness", key, "Median", m[f"{key}_median"])
    put("timeliness", key, "75th percentile", m[f"{key}_p75"])
    put("timeliness", key, "90th percentile", m[f"{key}_p90"])

# Non-responders and regulation 19, by organisation.
for org, fs in by_org.items():
    m = measures(fs)
    if m["past_due"] > m["past_due_answered"]:
        put("non_responders", org, "Past due, no decision", m["past_due"] - m["past_due_answered"])
        put("non_responders", org, "Past due", m["past_due"])
        put("non_responders", org, "Response rate, past due date", m["response_rate_due"])
        put("non_responders", org, "Oldest unanswered (days)", m["oldest_unanswered_days"])
    if m["open_over_12_months"] > 0:
        put("regulation_19", org, "Open over 12 months", m["open_over_12_months"])
        put("regulation_19", org, "Oldest open (days)", m["oldest_open_days"])

# The trend over every year held, up to the report's.
by_fy = collections.defaultdict(list)
for f in facts:
    if f["fy"][0] <= YEAR:
        by_fy[f["fy"][0]].append(f)
for y, fs in by_fy.items():
    m = measures(fs)
    key = fy_name(y)
    put("trend_years", key, "Referred", m["referred"])
    put("trend_years", key, "Feedback", m["feedback_received"])
    put("trend_years", key, "Response rate", m["response_rate"])
    put("trend_years", key, "Response rate, past due date", m["response_rate_due"])
    put("trend_years", key, "Median days to feedback", m["days_to_feedback_median"])
    put("trend_years", key, "Median days to outcome", m["days_to_outcome_median"])

# --- compare -----------------------------------------------------------------------------------
got = {(r[0], r[1], r[2]): r[3] for r in rows[1:] if r[0] != "meta"}
problems = []
for k in sorted(set(expected) | set(got)):
    if k not in got:
        problems.append(f"missing from the report: {k} (expected {expected[k]!r})")
    elif k not in expected:
        problems.append(f"not expected: {k} = {got[k]!r}")
    elif got[k] != expected[k]:
        problems.append(f"{k}: report {got[k]!r}, recomputed {expected[k]!r}")
tables = collections.Counter(k[0] for k in expected)
print(f"recomputed {len(expected)} cells of {len(tables)} tables from the events of "
      f"{len(facts)} referrals ({len(this_year)} in {fy_name(YEAR)}, {len(prev_year)} in "
      f"{fy_name(YEAR - 1)}): {len(problems)} differences")
for p in problems[:40]:
    print("  " + p)
for t in ("headline", "by_organisation", "declined_register", "trend", "outcomes_by_track",
          "by_unit", "by_priority", "coverage", "timeliness", "trend_years", "outcomes_by_role",
          "route_yield", "thr_outcomes"):
    if tables[t] == 0:
        problems.append(f"table {t} is empty")
        print(f"  table {t} is empty")
sys.exit(1 if problems else 0)
