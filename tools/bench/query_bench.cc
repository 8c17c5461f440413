// sarloop-query-bench: the analysts' queries over a large national register.
//
// Builds a register of N synthetic referrals (default 1,000,000) over 10 financial years and every
// organisation of the reference data, written through the register's own write path
// (Register::Receive, judged against the rules as each producer's delivery is, one event at a time,
// in transactions of 2,000 referrals, in dispatch order as a register fills over the years; each
// referral's later events come with it), then times each query shape as the nca service runs it
// (Register methods: the service adds only the RPC edge). For scale it also times one plain SQL
// GROUP BY over the same entries, the approach the in-memory aggregate index replaces, so the
// speed-up is a ratio measured in the same run.
//
//   sarloop-query-bench [--referrals N] [--reps R] [--db FILE | --postgres CONNINFO]
//                       [--json FILE] [--seed S] [--only SHAPE_SUBSTRING] [--answers FILE]
//                       [--build-only]
//
// --answers writes each shape's first answer as text: the same register on SQLite and PostgreSQL
// must give the same answers (register_engines_compare.sh compares them).
// --db keeps the register (and reuses it when it exists with the same size); --postgres builds
// and queries it on PostgreSQL instead (an empty database, or one this bench filled before).
// --build-only builds the register and stops, so a script can settle the database (PostgreSQL's
// VACUUM ANALYZE after a bulk load) before a second run times the queries.
// tools/bench/register_engines_compare.sh runs both engines in one script.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/clock.h"
#include "common/base/ids.h"
#include "common/base/status.h"
#include "common/reference/reference.h"
#include "common/referral/event_log.h"
#include "common/referral/rules.h"
#include "common/security/identity.h"
#include "common/storage/storage.h"
#include "common/version/version.h"
#include "services/nca/register.h"
#include "tools/bench/number_flag.h"

namespace sarloop::bench {
namespace {

struct Flags {
  int64_t referrals = 1'000'000;
  int reps = 100;
  std::string db;
  std::string postgres;
  std::string json;
  uint64_t seed = 1;
  // Only the query shapes whose name contains this.
  std::string only;
  // Where to write each shape's first answer, as text (the engines must agree).
  std::string answers;
  bool build_only = false;
};

// A response as the RPC edge sends it (wire bytes), or as text for the answers file (only in the
// untimed first run of each shape: text formatting costs more than many queries), or its error.
template <typename M>
absl::StatusOr<std::string> Text(const absl::StatusOr<M>& response, bool text) {
  if (!response.ok()) return response.status();
  return text ? response->DebugString() : response->SerializeAsString();
}

std::string Hex(uint64_t v) { return absl::StrFormat("%016x", v); }

v1::LifecycleEvent Event(v1::EventType type, const std::string& id, const std::string& org,
                         const std::string& producer, absl::Time at, uint64_t n) {
  v1::LifecycleEvent e;
  e.set_event_id(absl::StrCat("EV-", Hex(n), Hex(type)));
  e.set_referral_id(id);
  e.set_type(type);
  e.set_producer(producer);
  e.set_organisation(org);
  e.mutable_actor()->set_identity(absl::StrCat("spiffe://sarloop/", producer));
  *e.mutable_occurred_at() = ToProto(at);
  return e;
}

// One referral's events: dispatched, received, then an end (or still open, more likely the
// younger it is), reminders and escalation for the silent ones.
std::vector<v1::LifecycleEvent> Referral(std::mt19937_64& rng, uint64_t n, int64_t total,
                                         absl::Time end, const std::vector<std::string>& orgs,
                                         const std::vector<std::string>& units) {
  auto uniform = [&](int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  const std::string id = absl::StrCat("REF-", Hex(n));
  // Bigger forces get more: the first organisations twice as often.
  const size_t org_index =
      static_cast<size_t>(uniform(0, static_cast<int64_t>(orgs.size()) * 2 - 1)) % orgs.size();
  const std::string& org = orgs[org_index];
  // Referrals are written in dispatch order, as a register fills over the years.
  const int64_t age_days = 3650 - static_cast<int64_t>(n) * 3650 / std::max<int64_t>(total, 1);
  const absl::Time dispatched = end - absl::Hours(24 * age_days) - absl::Seconds(uniform(0, 86399));
  std::vector<v1::LifecycleEvent> out;
  v1::LifecycleEvent d = Event(v1::EVENT_TYPE_DISPATCHED, id, org, "UKFIU", dispatched, n);
  *d.mutable_due_at() = ToProto(dispatched + absl::Hours(24 * 90));
  d.set_route(uniform(0, 9) == 0 ? v1::REFERRAL_ROUTE_INDIRECT : v1::REFERRAL_ROUTE_DIRECT);
  const int subjects = static_cast<int>(uniform(1, 2));
  for (int s = 0; s < subjects; ++s) {
    // A pool smaller than the referrals, so some subjects recur.
    d.add_subject_refs(Hex(rng() % 900'000));
    d.add_subject_roles(static_cast<v1::SubjectRole>(uniform(1, 8)));
  }
  d.mutable_thr()->set_threat(v1::THR_LEVEL_MEDIUM);
  out.push_back(d);
  out.push_back(Event(v1::EVENT_TYPE_RECEIVED, id, org, org, dispatched + absl::Minutes(1), n));
  const int64_t delay = std::min<int64_t>(age_days, uniform(3, 40) * uniform(1, 12));
  const absl::Time at = dispatched + absl::Hours(24 * delay);
  const bool still_open = delay >= age_days || uniform(0, 99) < 4;
  const int pick = static_cast<int>(uniform(0, 99));
  if (still_open) {
    if (age_days > 90) {
      out.push_back(Event(v1::EVENT_TYPE_REMINDER_SENT, id, org, "UKFIU",
                          dispatched + absl::Hours(24 * 90), n));
    }
    if (age_days > 118) {
      out.push_back(
          Event(v1::EVENT_TYPE_ESCALATED, id, org, "UKFIU", dispatched + absl::Hours(24 * 118), n));
    }
  } else if (pick < 15) {
    v1::LifecycleEvent e = Event(v1::EVENT_TYPE_DECLINED_BY_FORCE, id, org, org, at, n);
    e.set_reason("Not a member of this force's staff.");
    out.push_back(e);
  } else if (pick < 20) {
    out.push_back(Event(v1::EVENT_TYPE_WITHDRAWN, id, org, "UKFIU", at, n));
    out.back().set_reason("Duplicate of an earlier referral.");
  } else {
    v1::Outcome o;
    o.set_type(static_cast<v1::OutcomeType>(uniform(1, 13)));
    o.set_category(static_cast<v1::CorruptionCategory>(uniform(1, 12)));
    o.set_subject_role(d.subject_roles(0));
    if (pick < 60) {
      v1::LifecycleEvent e = Event(v1::EVENT_TYPE_CLOSED_BY_FORCE, id, org, org, at, n);
      *e.mutable_outcome() = o;
      out.push_back(e);
    } else {
      const std::string& unit = units[org_index % units.size()];
      v1::LifecycleEvent h =
          Event(v1::EVENT_TYPE_HANDED_OVER, id, org, org, dispatched + absl::Hours(24), n);
      h.set_unit(unit);
      out.push_back(h);
      v1::LifecycleEvent e = Event(v1::EVENT_TYPE_OUTCOME_RECORDED, id, org, unit, at, n);
      e.set_unit(unit);
      *e.mutable_outcome() = o;
      out.push_back(e);
    }
  }
  return out;
}

absl::Status Build(Database& db, nca::Register& reg, const Flags& flags, absl::Time end) {
  std::vector<std::string> orgs;
  for (const auto& o : ReferenceData::BuiltIn().organisations()) orgs.push_back(o.code());
  const std::vector<std::string> units = {"ERSOU", "NERSOU", "YHROCU", "NWROCU", "ROCUWM",
                                          "EMSOU", "SEROCU", "SWROCU", "TARIAN", "NCAACU"};
  std::mt19937_64 rng(flags.seed);
  const auto start = std::chrono::steady_clock::now();
  int64_t events = 0;
  for (int64_t done = 0; done < flags.referrals;) {
    const int64_t batch = std::min<int64_t>(2000, flags.referrals - done);
    RETURN_IF_ERROR(db.Transact([&](Txn& txn) -> absl::Status {
      for (int64_t i = 0; i < batch; ++i) {
        for (const auto& e :
             Referral(rng, static_cast<uint64_t>(done + i), flags.referrals, end, orgs, units)) {
          RETURN_IF_ERROR(reg.Receive(txn, referral::ProducerIdentity(e), e));
          ++events;
        }
      }
      return absl::OkStatus();
    }));
    done += batch;
    if (done % 100000 == 0 || done == flags.referrals) {
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cerr << absl::StrFormat("  %d referrals, %d events written (%.0f s)\n", done, events, s);
    }
  }
  return absl::OkStatus();
}

struct Shape {
  std::string name;
  // Runs the query once; its answer in text form (compared across engines with --answers).
  std::function<absl::StatusOr<std::string>()> run;
  // Repetitions when fewer than --reps (the slow baseline).
  int max_reps = 1 << 30;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::max<size_t>(rank, 1) - 1];
}

int64_t PeakRssKib() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

constexpr char kTool[] = "sarloop-query-bench";

// The flags, or exit 2 with the reason.
Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << kTool << ": " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--referrals") {
      flags.referrals = NumberFlag<int64_t>(kTool, a, next());
    } else if (a == "--reps") {
      flags.reps = NumberFlag<int>(kTool, a, next());
    } else if (a == "--postgres") {
      flags.postgres = next();
    } else if (a == "--db") {
      flags.db = next();
    } else if (a == "--json") {
      flags.json = next();
    } else if (a == "--seed") {
      flags.seed = NumberFlag<uint64_t>(kTool, a, next());
    } else if (a == "--only") {
      flags.only = next();
    } else if (a == "--answers") {
      flags.answers = next();
    } else if (a == "--build-only") {
      flags.build_only = true;
    } else {
      std::cerr << "usage: sarloop-query-bench [--referrals N] [--reps R] "
                   "[--db FILE | --postgres CONNINFO] [--json FILE] [--seed S] "
                   "[--only SHAPE_SUBSTRING] [--answers FILE] [--build-only]\n";
      std::exit(2);
    }
  }
  if (flags.referrals < 1 || flags.reps < 1) {
    std::cerr << kTool << ": --referrals and --reps must be positive\n";
    std::exit(2);
  }
  return flags;
}

// Builds the register unless it holds the referrals already; the seconds the build took, 0 when
// the register was there.
absl::StatusOr<double> BuildUnlessBuilt(Database& db, nca::Register& reg, const Flags& flags,
                                        absl::Time now) {
  int64_t existing = 0;
  RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT COUNT(*) FROM entries"));
    existing = rows[0].Int(0);
    return absl::OkStatus();
  }));
  if (existing == flags.referrals) return 0.0;
  if (existing != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(flags.db, " holds ", existing, " referrals, not ", flags.referrals));
  }
  std::cerr << "building a register of " << flags.referrals << " referrals in " << flags.db << "\n";
  const auto t0 = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(Build(db, reg, flags, now));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The query shapes the analysts run, each as the nca service runs it, and the plain SQL baseline.
// Each run returns its answer as text when *text is set (the first, untimed run of a shape).
std::vector<Shape> Shapes(nca::Register& reg, Database& db, int64_t referrals, uint64_t seed,
                          absl::Time now, const bool* text) {
  const int year = nca::FinancialYear(now) - 1;
  auto aggregates = [&reg, text, now](std::vector<v1::Dimension> by, auto filter,
                                      bool publication = false) {
    return [&reg, text, now, by, filter, publication]() -> absl::StatusOr<std::string> {
      v1::GetAggregatesRequest r;
      for (auto d : by) r.add_group_by(d);
      filter(*r.mutable_filter());
      r.set_publication(publication);
      return Text(reg.Aggregates(r, now, 5), *text);
    };
  };
  auto none = [](v1::AggregateFilter&) {};
  auto one_year = [year](v1::AggregateFilter& f) { f.add_financial_years(year); };
  auto rng = std::make_shared<std::mt19937_64>(seed + 1);
  return {
      {"aggregates: total, 10 years", aggregates({}, none)},
      {"aggregates: by organisation, one year", aggregates({v1::DIMENSION_ORGANISATION}, one_year)},
      {"aggregates: by region x financial year",
       aggregates({v1::DIMENSION_REGION, v1::DIMENSION_FINANCIAL_YEAR}, none)},
      {"aggregates: by category x outcome, one year, closed",
       aggregates({v1::DIMENSION_CATEGORY, v1::DIMENSION_OUTCOME_TYPE},
                  [year](v1::AggregateFilter& f) {
                    f.add_financial_years(year);
                    f.add_states(v1::REFERRAL_STATE_CLOSED_BY_FORCE);
                    f.add_states(v1::REFERRAL_STATE_OUTCOME_RECORDED);
                  })},
      {"aggregates: by quarter, one region",
       aggregates({v1::DIMENSION_FINANCIAL_QUARTER},
                  [](v1::AggregateFilter& f) { f.add_regions("EASTERN"); })},
      {"aggregates: by organisation x state, 10 years",
       aggregates({v1::DIMENSION_ORGANISATION, v1::DIMENSION_STATE}, none)},
      {"aggregates: by role x route x kind x year",
       aggregates({v1::DIMENSION_SUBJECT_ROLE, v1::DIMENSION_ROUTE, v1::DIMENSION_ORGANISATION_KIND,
                   v1::DIMENSION_FINANCIAL_YEAR},
                  none)},
      {"aggregates: by organisation x category, 10 years",
       aggregates({v1::DIMENSION_ORGANISATION, v1::DIMENSION_CATEGORY}, none)},
      {"aggregates: publication, by organisation x category",
       aggregates({v1::DIMENSION_ORGANISATION, v1::DIMENSION_CATEGORY}, none, true)},
      {"summary (per organisation)", [&reg, text, now]() { return Text(reg.Summary(now), *text); }},
      {"overdue: first page of 100",
       [&reg, text, now]() {
         v1::ListOverdueRequest r;
         return Text(reg.Overdue(r, now), *text);
       }},
      {"register: one organisation, first page",
       [&reg, text]() {
         v1::ListRegisterRequest r;
         r.set_organisation("NFK");
         return Text(reg.List(r), *text);
       }},
      {"timeline: one referral",
       [&reg, text, rng, referrals]() {
         return Text(
             reg.Timeline(absl::StrCat("REF-", Hex((*rng)() % static_cast<uint64_t>(referrals)))),
             *text);
       }},
      {"baseline: SQL GROUP BY organisation, 10 years (not served)",
       [&db]() -> absl::StatusOr<std::string> {
         std::string out;
         RETURN_IF_ERROR(db.Read([&](Txn& txn) -> absl::Status {
           ASSIGN_OR_RETURN(
               auto rows,
               txn.Query("SELECT organisation, COUNT(*), "
                         "SUM(CASE WHEN state IN (5, 6, 9) THEN 1 ELSE 0 END), "
                         "SUM(CASE WHEN state = 5 THEN 1 ELSE 0 END), "
                         "SUM(escalated), SUM(handed_over) FROM entries GROUP BY organisation "
                         "ORDER BY organisation"));
           for (const Row& row : rows) {
             absl::StrAppend(&out, row.Text(0));
             for (int c = 1; c < 6; ++c) absl::StrAppend(&out, " ", row.Int(c));
             out += "\n";
           }
           return absl::OkStatus();
         }));
         return out;
       },
       10},
  };
}

// Times each shape --only selects: three untimed runs (the first keeps its answer), then --reps.
// Prints a row per shape and writes --json and --answers; false when a query failed.
bool TimeShapes(const std::vector<Shape>& shapes, const Flags& flags, double load_s, bool* text) {
  std::printf("%-60s %9s %9s %9s\n", "query shape", "p50 ms", "p99 ms", "max ms");
  std::string json =
      absl::StrCat("{\"referrals\":", flags.referrals, ",\"reps\":", flags.reps,
                   ",\"index_load_s\":", absl::StrFormat("%.2f", load_s), ",\"shapes\":[");
  bool all_ok = true, first = true;
  std::string answers;
  for (const Shape& shape : shapes) {
    if (shape.name.find(flags.only) == std::string::npos) continue;
    std::vector<double> ms;
    const int reps = std::min(flags.reps, shape.max_reps);
    for (int i = 0; i < reps + 3; ++i) {
      *text = i == 0;
      const auto a = std::chrono::steady_clock::now();
      absl::StatusOr<std::string> answer = shape.run();
      const auto b = std::chrono::steady_clock::now();
      if (!answer.ok()) {
        std::cerr << shape.name << ": " << answer.status() << "\n";
        all_ok = false;
        break;
      }
      if (i == 0) absl::StrAppend(&answers, "=== ", shape.name, "\n", *answer, "\n");
      if (i >= 3) ms.push_back(std::chrono::duration<double, std::milli>(b - a).count());
    }
    if (ms.empty()) continue;
    const double p50 = Percentile(ms, 0.5), p99 = Percentile(ms, 0.99),
                 max = *std::max_element(ms.begin(), ms.end());
    std::printf("%-60s %9.2f %9.2f %9.2f\n", shape.name.c_str(), p50, p99, max);
    std::fflush(stdout);
    absl::StrAppend(&json, first ? "" : ",", "{\"shape\":\"", shape.name,
                    "\",\"p50_ms\":", absl::StrFormat("%.3f", p50),
                    ",\"p99_ms\":", absl::StrFormat("%.3f", p99), "}");
    first = false;
  }
  json += "]}\n";
  if (!flags.json.empty() && !WriteWhole("sarloop-query-bench", flags.json, json)) return false;
  if (!flags.answers.empty() && !WriteWhole("sarloop-query-bench", flags.answers, answers)) {
    return false;
  }
  return all_ok;
}

int Main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  const bool temporary = flags.db.empty() && flags.postgres.empty();
  if (flags.build_only && temporary) {  // refused before building a register nobody could keep
    std::cerr << kTool << ": --build-only needs --db or --postgres to keep the register\n";
    return 2;
  }
  if (temporary) {
    flags.db = (std::filesystem::temp_directory_path() /
                absl::StrCat("sarloop-query-bench-", getpid(), ".db"))
                   .string();
    // A run that failed part-way leaves its file; a later run with the same pid starts afresh.
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(flags.db + suffix);
  }
  // Fixed "now", so a kept register answers the same on every run.
  const absl::Time now =
      absl::FromCivil(absl::CivilSecond(2026, 11, 1, 12, 0, 0), absl::UTCTimeZone());
  auto db = flags.postgres.empty() ? Database::Open(flags.db, nca::RegisterSchema())
                                   : Database::OpenPostgres(flags.postgres, nca::RegisterSchema());
  if (!flags.postgres.empty()) flags.db = "PostgreSQL";
  if (!db.ok()) {
    std::cerr << kTool << ": " << db.status() << "\n";
    return 1;
  }
  ManualClock clock(now);
  nca::Register reg(**db, ReferenceData::BuiltIn(), clock);
  auto finish = [&](int code) {
    db->reset();
    if (temporary) {
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(flags.db + suffix);
    }
    return code;
  };
  bool text = false;
  const std::vector<Shape> shapes = Shapes(reg, **db, flags.referrals, flags.seed, now, &text);
  if (std::none_of(shapes.begin(), shapes.end(), [&](const Shape& shape) {
        return shape.name.find(flags.only) != std::string::npos;
      })) {
    std::cerr << kTool << ": --only '" << flags.only << "' names no query shape\n";
    return finish(2);
  }
  absl::StatusOr<double> build_s = BuildUnlessBuilt(**db, reg, flags, now);
  if (!build_s.ok()) {
    std::cerr << kTool << ": " << build_s.status() << "\n";
    return finish(1);
  }
  if (flags.build_only) {
    std::printf("register of %lld referrals in %s: built in %.0f s (0: it was there)\n",
                static_cast<long long>(flags.referrals), flags.db.c_str(), *build_s);
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (absl::Status s = reg.CatchUp(); !s.ok()) {
    std::cerr << kTool << ": " << s << "\n";
    return finish(1);
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("register: %lld referrals over 10 financial years, %zu organisations\n",
              static_cast<long long>(flags.referrals),
              ReferenceData::BuiltIn().organisations().size());
  if (*build_s > 0) std::printf("built in %.0f s through Register::Receive\n", *build_s);
  std::printf("aggregate index loaded in %.1f s; peak RSS %lld MiB\n\n", load_s,
              static_cast<long long>(PeakRssKib() / 1024));
  const bool all_ok = TimeShapes(shapes, flags, load_s, &text);
  std::printf("\npeak RSS %lld MiB\n", static_cast<long long>(PeakRssKib() / 1024));
  return finish(all_ok ? 0 : 1);
}

}  // namespace
}  // namespace sarloop::bench

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-query-bench",
          "usage: sarloop-query-bench [--referrals N] [--reps R] [--db FILE | --postgres CONNINFO] "
          "[--json FILE] [--seed S] [--only SHAPE_SUBSTRING] [--answers FILE] "
          "[--build-only]\n\nThe analysts' "
          "aggregate shapes timed over a generated register of N referrals, on SQLite or "
          "PostgreSQL.\n")) {
    return 0;
  }
  return sarloop::bench::Main(argc, argv);
}
