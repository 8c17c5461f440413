// sarloop-exercise: plays the national exercise (exercise_model.h) through a running chain
// (sarloop-local up, classic or national) over the real gRPC APIs with mTLS. The chain's clock is
// moved day by day, from where it stands at the start (sarloop-local's clock-offset: put it on
// 1 April some years back) to the present, and each referral's steps happen on their own days.
// At the end the NCA register is checked referral by referral against the plan: state, outcome,
// unit, decline reason, route, and the days it was dispatched, acknowledged and concluded.
//
//   sarloop-exercise --chain DIR [--per-year 1000] [--seed N] [--threads 8] [--patience 30]
//                    [--json-summary FILE] [--dry-run]
//
// Exit status: 0 when the register matches, 1 on a mismatch or a failed call, 2 on bad flags.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/ids.h"
#include "common/reference/workforce.h"
#include "common/referral/lifecycle.h"
#include "common/version/version.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tools/synth/chain_client.h"
#include "tools/synth/exercise_model.h"

namespace sarloop::synth::exercise {
namespace {

struct Flags {
  std::string chain;
  int per_year = 1000;
  uint64_t seed = 0;
  bool seed_given = false;
  int threads = 8;
  int patience_seconds = 30;
  std::string json_summary;
  bool dry_run = false;
};

// An empty `error` is a request for help: the usage on stdout, exit 0.
[[noreturn]] void Usage(const std::string& error) {
  std::ostream& out = error.empty() ? std::cout : std::cerr;
  out << "sarloop-exercise: "
      << (error.empty() ? "plays the national exercise through a chain" : error) << "\n"
      << "usage: sarloop-exercise --chain DIR [--per-year N] [--seed N] [--threads N]\n"
         "                        [--patience SECONDS] [--json-summary FILE] [--dry-run]\n"
         "Plays referrals from the chain's clock (DIR/clock-offset) to the present, moving\n"
         "the clock day by day; --per-year is the national volume in the first year.\n"
         "--dry-run prints the plan without calling the chain.\n";
  std::exit(error.empty() ? 0 : 2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  const std::function<void(const std::string&)> usage = [](const std::string& error) {
    Usage(error);
  };
  auto on_flag = [&](const std::string& arg, const std::string& value) {
    auto number = [&](auto* out) { ReadNumber(arg, value, out, usage); };
    if (arg == "--dry-run") {
      f.dry_run = true;
    } else if (arg == "--chain") {
      f.chain = value;
    } else if (arg == "--per-year") {
      number(&f.per_year);
    } else if (arg == "--seed") {
      number(&f.seed);
      f.seed_given = true;
    } else if (arg == "--threads") {
      number(&f.threads);
    } else if (arg == "--patience") {
      number(&f.patience_seconds);
    } else if (arg == "--json-summary") {
      f.json_summary = value;
    } else {
      Usage(absl::StrCat("unknown flag ", arg));
    }
  };
  ParseCommandLine(argc, argv, {"--dry-run"}, usage, on_flag);
  if (f.chain.empty()) Usage("--chain DIR is required (the DIR of sarloop-local up)");
  if (f.per_year < 1 || f.per_year > 100000) Usage("--per-year must be 1 to 100000");
  if (f.threads < 1 || f.threads > 64) Usage("--threads must be 1 to 64");
  if (f.patience_seconds < 1) Usage("--patience must be positive");
  if (!f.json_summary.empty()) {
    if (const std::string why = UnwritableFile(f.json_summary); !why.empty()) {
      Usage(absl::StrCat("--json-summary: ", why));
    }
  }
  if (!f.seed_given) f.seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  return f;
}

std::string DayText(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()); }
std::string DayText(const google::protobuf::Timestamp& ts) {
  return ts.seconds() == 0 ? "-" : DayText(absl::FromUnixSeconds(ts.seconds()));
}

// The chain's instances as stubs and users.
class Chain {
 public:
  explicit Chain(const std::string& dir) : dir_(dir) {}

  void Connect() {
    auto topology = ReadTopology(dir_);
    if (!topology.ok()) Die(topology.status().ToString());
    for (const auto& [name, inst] : *topology) {
      auto channel = OpenChannel(absl::StrCat(dir_, "/pki/", inst.identity), inst.port);
      if (!channel.ok()) Die(absl::StrCat(name, ": ", channel.status().ToString()));
      if (inst.kind == "ukfiu" || inst.kind == "force" || inst.kind == "racu") {
        ops_[inst.code] = v1::Ops::NewStub(*channel);
      }
      if (inst.kind == "ukfiu") {
        ukfiu_ = v1::Ukfiu::NewStub(*channel);
      } else if (inst.kind == "nca" && inst.name == "nca") {
        nca_ = v1::Nca::NewStub(*channel);
      } else if (inst.kind == "force") {
        forces_[inst.code] = v1::Force::NewStub(*channel);
        orgs_.push_back(inst);
      } else if (inst.kind == "racu") {
        units_[inst.code] = v1::Racu::NewStub(*channel);
      }
      if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() +
                                        std::chrono::seconds(10))) {
        Die(absl::StrCat("cannot connect to ", name, " on port ", inst.port,
                         " over mTLS within 10 s (is the chain up? sarloop-local status DIR)"));
      }
    }
    if (!ukfiu_ || !nca_ || forces_.empty()) Die("the topology lacks ukfiu, nca or any force");
  }

  [[noreturn]] static void Die(const std::string& why) {
    std::cerr << "sarloop-exercise: " << why << "\n";
    std::exit(1);
  }

  v1::Ukfiu::Stub& ukfiu() { return *ukfiu_; }
  v1::Nca::Stub& nca() { return *nca_; }
  v1::Force::Stub& force(const std::string& code) { return *forces_.at(code); }
  v1::Racu::Stub& unit(const std::string& code) {
    auto it = units_.find(code);
    if (it == units_.end()) Die(absl::StrCat("the chain has no unit ", code));
    return *it->second;
  }
  const std::vector<Instance>& orgs() const { return orgs_; }
  // The Ops stub of organisation `code` (UKFIU, a force or a unit); nullptr for others.
  v1::Ops::Stub* ops(const std::string& code) {
    auto it = ops_.find(code);
    return it == ops_.end() ? nullptr : it->second.get();
  }

 private:
  const std::string dir_;
  std::unique_ptr<v1::Ukfiu::Stub> ukfiu_;
  std::unique_ptr<v1::Nca::Stub> nca_;
  std::map<std::string, std::unique_ptr<v1::Force::Stub>> forces_;
  std::map<std::string, std::unique_ptr<v1::Racu::Stub>> units_;
  std::map<std::string, std::unique_ptr<v1::Ops::Stub>> ops_;
  std::vector<Instance> orgs_;
};

constexpr char kUkfiuUser[] = "ukfiu.analyst.exercise";
constexpr char kNcaUser[] = "nca.analyst.exercise";
std::string ForceUser(const std::string& code) { return absl::StrCat("psd.spoc.", code); }
std::string UnitUser(const std::string& code) { return absl::StrCat("acu.investigator.", code); }

class Driver {
 public:
  Driver(const Flags& flags, Chain& chain, Exercise ex, std::string run)
      : flags_(flags),
        chain_(chain),
        ex_(std::move(ex)),
        run_(std::move(run)),
        clock_(flags.chain + "/clock-offset") {
    ids_.resize(ex_.referrals.size());
  }

  int Run() {
    const absl::Time began = absl::Now();
    // The days on which something happens, and per day the referrals with steps that day.
    std::map<absl::Time, std::vector<std::pair<int, std::vector<int>>>> days;
    for (size_t i = 0; i < ex_.referrals.size(); ++i) {
      const std::vector<Step>& steps = ex_.referrals[i].steps;
      for (size_t k = 0; k < steps.size(); ++k) {
        auto& list = days[steps[k].at];
        if (list.empty() || list.back().first != static_cast<int>(i)) {
          list.emplace_back(static_cast<int>(i), std::vector<int>{});
        }
        list.back().second.push_back(static_cast<int>(k));
      }
    }
    int done = 0, calls = 0;
    int last_month = -1;
    for (const auto& [at, work] : days) {
      clock_.SetNow(at);
      ParallelFor(static_cast<int>(work.size()), flags_.threads, [&](int w) {
        const auto& [i, steps] = work[w];
        for (int k : steps) Do(i, k);
      });
      failures_.ExitIfAny(DayText(at));
      // What the day's calls sent is delivered (and what the receivers sent in turn) before the
      // clock moves on: a referral is received on the day it is dispatched.
      std::set<std::string> touched = {"UKFIU"};
      for (const auto& [i, steps] : work) {
        touched.insert(ex_.referrals[i].organisation);
        if (!ex_.referrals[i].unit.empty()) touched.insert(ex_.referrals[i].unit);
      }
      Settle(touched, DayText(at));
      done += static_cast<int>(work.size());
      for (const auto& w : work) calls += static_cast<int>(w.second.size());
      const int month = absl::ToCivilMonth(at, absl::UTCTimeZone()).month();
      if (month != last_month) {
        last_month = month;
        std::cout << absl::StrFormat(
                         "[%s] chain clock %s: %d steps so far\n",
                         absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()),
                         DayText(at), calls)
                  << std::flush;
      }
    }
    // The present: the chain's clock back on the system clock's time.
    clock_.SetNow(absl::Now());
    const double played = absl::ToDoubleSeconds(absl::Now() - began);
    std::cout << absl::StrFormat("played %d steps on %d days in %.1f s\n", calls, days.size(),
                                 played);
    std::vector<std::string> mismatches = Check();
    if (mismatches.empty()) {
      std::cout << "register check: all " << ex_.referrals.size()
                << " referrals match the exercise referral by referral (state, outcome, unit, "
                   "decline reason, route, dispatch/acknowledgement/conclusion days)\n";
    } else {
      std::cout << "register check: " << mismatches.size() << " mismatch(es):\n";
      for (size_t i = 0; i < mismatches.size() && i < 30; ++i) {
        std::cout << "  " << mismatches[i] << "\n";
      }
      if (mismatches.size() > 30) std::cout << "  ...\n";
    }
    std::cout << "seed " << flags_.seed << " (rerun on a fresh chain with --seed " << flags_.seed
              << ")\n";
    WriteJson(mismatches, calls, played);
    return mismatches.empty() ? 0 : 1;
  }

 private:
  class Failures {
   public:
    void Add(std::string what) {
      std::lock_guard lock(mu_);
      list_.push_back(std::move(what));
    }
    void ExitIfAny(const std::string& day) {
      std::lock_guard lock(mu_);
      if (list_.empty()) return;
      std::cerr << "sarloop-exercise: " << list_.size() << " call(s) failed on chain day " << day
                << ":\n";
      for (size_t i = 0; i < list_.size() && i < 20; ++i) std::cerr << "  " << list_[i] << "\n";
      std::exit(1);
    }

   private:
    std::mutex mu_;
    std::vector<std::string> list_;
  };

  std::string Rid(int i, int k, absl::string_view suffix = "") const {
    return absl::StrCat("ex-", run_, "-", i, "-", k, suffix);
  }

  // One call; NOT_FOUND and FAILED_PRECONDITION are retried too while the referral (or the
  // unit's decline) is still being delivered to the service called.
  void Call1(const std::string& what, const std::string& user,
             const std::function<grpc::Status(grpc::ClientContext*)>& fn) {
    grpc::Status s = synth::Call(user, fn, grpc::StatusCode::NOT_FOUND);
    if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      s = synth::Call(user, fn, grpc::StatusCode::FAILED_PRECONDITION);
    }
    if (!s.ok()) failures_.Add(absl::StrCat(what, ": ", Describe(s)));
  }

  // Polls the outboxes of `dirty` (and of every destination they still hold messages for) until
  // none holds anything pending.
  void Settle(std::set<std::string> dirty, const std::string& day) {
    const absl::Time deadline = absl::Now() + absl::Seconds(flags_.patience_seconds);
    for (;;) {
      bool pending = false;
      std::set<std::string> next = dirty;
      for (const std::string& code : dirty) {
        v1::Ops::Stub* ops = chain_.ops(code);
        if (ops == nullptr) continue;
        v1::GetBacklogRequest req;
        v1::GetBacklogResponse resp;
        grpc::Status s = synth::Call(code == "UKFIU" ? kUkfiuUser : ForceUser(code),
                                     [&](auto* ctx) { return ops->GetBacklog(ctx, req, &resp); });
        if (!s.ok()) Chain::Die(absl::StrCat(code, " Ops.GetBacklog: ", Describe(s)));
        for (const v1::DestinationBacklog& d : resp.destinations()) {
          if (d.pending() == 0) continue;
          pending = true;
          next.insert(d.destination());
        }
      }
      if (!pending) return;
      if (absl::Now() > deadline) {
        Chain::Die(absl::StrCat("deliveries of chain day ", day, " still pending after ",
                                flags_.patience_seconds, " s (sarloop-local status; logs/)"));
      }
      dirty = std::move(next);
      absl::SleepFor(absl::Milliseconds(2));
    }
  }

  v1::ThrAssessment DecisionThr(const Referral& r, absl::string_view why) {
    v1::ThrAssessment thr = r.thr;
    thr.set_rationale(absl::StrCat(why, thr.rationale()));
    return thr;
  }

  void Do(int i, int k) {
    const Referral& r = ex_.referrals[i];
    const Act act = r.steps[k].act;
    const std::string what =
        absl::StrCat(ActName(act), " #", i, " ", ids_[i], " (", r.organisation, ")");
    const std::string& org = r.organisation;
    v1::ForceStepResponse fresp;
    v1::UnitStepResponse uresp;
    switch (act) {
      case Act::kRefer: {
        v1::SubmitSarRequest sub;
        sub.set_request_id(Rid(i, k, "-sar"));
        *sub.mutable_sar() = r.sar;
        v1::SubmitSarResponse sresp;
        Call1(what, kUkfiuUser,
              [&](auto* ctx) { return chain_.ukfiu().SubmitSar(ctx, sub, &sresp); });
        if (sresp.sar().sar_id().empty()) return;
        v1::ReferSarRequest req;
        req.set_request_id(Rid(i, k));
        req.set_sar_id(sresp.sar().sar_id());
        req.set_organisation(org);
        *req.mutable_thr() = r.thr;
        req.set_route(r.indirect ? v1::REFERRAL_ROUTE_INDIRECT : v1::REFERRAL_ROUTE_DIRECT);
        v1::ReferSarResponse resp;
        Call1(what, kUkfiuUser,
              [&](auto* ctx) { return chain_.ukfiu().ReferSar(ctx, req, &resp); });
        ids_[i] = resp.referral().referral_id();
        return;
      }
      case Act::kAcknowledge:
      case Act::kStartResearch: {
        v1::ForceStepRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        if (act == Act::kStartResearch &&
            r.outcome.category() != v1::CORRUPTION_CATEGORY_UNSPECIFIED) {
          req.add_categories(r.outcome.category());
        }
        Call1(what, ForceUser(org), [&](auto* ctx) {
          return act == Act::kAcknowledge ? chain_.force(org).Acknowledge(ctx, req, &fresp)
                                          : chain_.force(org).StartResearch(ctx, req, &fresp);
        });
        return;
      }
      case Act::kReportOpen:
      case Act::kProgress: {
        v1::ReportProgressRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        req.set_status(act == Act::kReportOpen ? v1::PROGRESS_STATUS_INVESTIGATION_OPEN
                                               : v1::PROGRESS_STATUS_AWAITING_CONDUCT_PROCEEDINGS);
        Call1(what, ForceUser(org),
              [&](auto* ctx) { return chain_.force(org).ReportProgress(ctx, req, &fresp); });
        return;
      }
      case Act::kReferToIopc:
        for (v1::IopcMode mode : {v1::IOPC_MODE_UNSPECIFIED, v1::IOPC_MODE_DIRECTED}) {
          v1::ReferToIopcRequest req;
          req.set_request_id(Rid(i, k, mode == v1::IOPC_MODE_UNSPECIFIED ? "" : "-mode"));
          req.set_referral_id(ids_[i]);
          req.set_mode(mode);
          Call1(what, ForceUser(org),
                [&](auto* ctx) { return chain_.force(org).ReferToIopc(ctx, req, &fresp); });
        }
        return;
      case Act::kDecline: {
        v1::DeclineReferralRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        req.set_reason(r.decline_text);
        req.set_reason_code(r.decline_code);
        req.set_named_organisation(r.named_employer);
        Call1(what, ForceUser(org),
              [&](auto* ctx) { return chain_.force(org).Decline(ctx, req, &fresp); });
        return;
      }
      case Act::kInterim: {
        v1::UpdateOutcomeRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        *req.mutable_outcome() = r.interim;
        Call1(what, ForceUser(org),
              [&](auto* ctx) { return chain_.force(org).UpdateOutcome(ctx, req, &fresp); });
        return;
      }
      case Act::kClose: {
        v1::CloseReferralRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        *req.mutable_outcome() = r.outcome;
        Call1(what, ForceUser(org),
              [&](auto* ctx) { return chain_.force(org).Close(ctx, req, &fresp); });
        return;
      }
      case Act::kHandOver: {
        v1::HandOverRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        req.set_notes("Research supports a joint investigation: financial analysis required.");
        req.set_priority(r.priority);
        req.set_unit(r.unit);
        *req.mutable_thr() = DecisionThr(r, "Research supports a joint investigation. ");
        Call1(what, ForceUser(org),
              [&](auto* ctx) { return chain_.force(org).HandOver(ctx, req, &fresp); });
        return;
      }
      case Act::kUnitAccept: {
        v1::AcceptHandoverRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        req.set_priority(r.priority);
        *req.mutable_thr() = DecisionThr(r, "Adopted. ");
        Call1(what, UnitUser(r.unit),
              [&](auto* ctx) { return chain_.unit(r.unit).Accept(ctx, req, &uresp); });
        return;
      }
      case Act::kUnitDecline: {
        v1::DeclineAssistanceRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        req.set_reason(r.assistance_reason);
        req.set_priority(r.priority);
        *req.mutable_thr() = DecisionThr(r, "Assessed for adoption and declined. ");
        Call1(what, UnitUser(r.unit),
              [&](auto* ctx) { return chain_.unit(r.unit).DeclineAssistance(ctx, req, &uresp); });
        return;
      }
      case Act::kUnitProgress: {
        v1::ReportUnitProgressRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        req.set_status(v1::PROGRESS_STATUS_AWAITING_CHARGING_DECISION);
        Call1(what, UnitUser(r.unit),
              [&](auto* ctx) { return chain_.unit(r.unit).ReportProgress(ctx, req, &uresp); });
        return;
      }
      case Act::kUnitInterim: {
        v1::UpdateUnitOutcomeRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        *req.mutable_outcome() = r.interim;
        Call1(what, UnitUser(r.unit),
              [&](auto* ctx) { return chain_.unit(r.unit).UpdateOutcome(ctx, req, &uresp); });
        return;
      }
      case Act::kUnitOutcome: {
        v1::RecordOutcomeRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        *req.mutable_outcome() = r.outcome;
        Call1(what, UnitUser(r.unit),
              [&](auto* ctx) { return chain_.unit(r.unit).RecordOutcome(ctx, req, &uresp); });
        return;
      }
      case Act::kWithdraw: {
        v1::WithdrawReferralRequest req;
        req.set_request_id(Rid(i, k));
        req.set_referral_id(ids_[i]);
        req.set_reason(r.withdraw_reason);
        v1::WithdrawReferralResponse resp;
        Call1(what, kUkfiuUser,
              [&](auto* ctx) { return chain_.ukfiu().WithdrawReferral(ctx, req, &resp); });
        return;
      }
    }
  }

  std::map<std::string, v1::RegisterEntry> Register() {
    std::map<std::string, v1::RegisterEntry> out;
    v1::ListRegisterRequest req;
    req.set_page_size(1000);
    for (;;) {
      v1::ListRegisterResponse resp;
      grpc::Status s = synth::Call(
          kNcaUser, [&](auto* ctx) { return chain_.nca().ListRegister(ctx, req, &resp); });
      if (!s.ok()) Chain::Die(absl::StrCat("Nca.ListRegister: ", Describe(s)));
      for (const v1::RegisterEntry& e : resp.entries()) out[e.referral_id()] = e;
      if (resp.next_page_token().empty()) return out;
      req.set_page_token(resp.next_page_token());
    }
  }

  // The day of the referral's first step of kind `act`, or "-".
  static std::string DayOf(const Referral& r, std::initializer_list<Act> acts) {
    for (const Step& s : r.steps) {
      if (std::find(acts.begin(), acts.end(), s.act) != acts.end()) return DayText(s.at);
    }
    return "-";
  }

  std::vector<std::string> Compare(const std::map<std::string, v1::RegisterEntry>& reg) {
    std::vector<std::string> out;
    if (reg.size() != ex_.referrals.size()) {
      out.push_back(absl::StrCat("the register holds ", reg.size(),
                                 " referrals; the exercise made ", ex_.referrals.size()));
    }
    for (size_t i = 0; i < ex_.referrals.size(); ++i) {
      const Referral& r = ex_.referrals[i];
      auto it = reg.find(ids_[i]);
      const std::string who = absl::StrCat("#", i, " ", ids_[i], " (", r.organisation, ", ",
                                           DecisionName(r.decision), ")");
      if (it == reg.end()) {
        out.push_back(absl::StrCat(who, ": not in the register"));
        continue;
      }
      const v1::RegisterEntry& e = it->second;
      auto differ = [&](absl::string_view field, const std::string& got, const std::string& want) {
        if (got != want) {
          out.push_back(absl::StrCat(who, ": ", field, " is ", got, ", expected ", want));
        }
      };
      differ("organisation", e.organisation(), r.organisation);
      differ("state", v1::ReferralState_Name(e.state()), v1::ReferralState_Name(ExpectedState(r)));
      differ("outcome", v1::OutcomeType_Name(e.outcome().type()),
             v1::OutcomeType_Name(r.outcome.type()));
      differ("unit", e.unit(), r.steps.size() > 1 || r.on_receipt ? HandedUnit(r) : "");
      differ(
          "decline reason", v1::DeclineReason_Name(e.decline_reason()),
          v1::DeclineReason_Name(DayOf(r, {Act::kDecline}) == "-" ? v1::DECLINE_REASON_UNSPECIFIED
                                                                  : r.decline_code));
      differ("route", v1::ReferralRoute_Name(e.route()),
             v1::ReferralRoute_Name(r.indirect ? v1::REFERRAL_ROUTE_INDIRECT
                                               : v1::REFERRAL_ROUTE_DIRECT));
      differ("dispatch day", DayText(e.dispatched_at()), DayOf(r, {Act::kRefer}));
      // A force that hands everything over on receipt acknowledges as it receives.
      differ("acknowledgement day", DayText(e.acknowledged_at()),
             DayOf(r, {r.on_receipt ? Act::kRefer : Act::kAcknowledge}));
      differ("conclusion day", e.outcome().has_closed_at() ? DayText(e.outcome().closed_at()) : "-",
             DayOf(r, {Act::kClose, Act::kUnitOutcome}));
    }
    return out;
  }

  // The unit the register names: the one the referral was handed to, once it was.
  static std::string HandedUnit(const Referral& r) {
    if (r.on_receipt) return r.unit;
    for (const Step& s : r.steps) {
      if (s.act == Act::kHandOver) return r.unit;
    }
    return "";
  }

  // Waits (up to a minute, the outbox's deliveries being asynchronous) for the register to
  // match; returns the mismatches left.
  std::vector<std::string> Check() {
    std::vector<std::string> mismatches;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    for (;;) {
      mismatches = Compare(Register());
      if (mismatches.empty() || absl::Now() > deadline) return mismatches;
      absl::SleepFor(absl::Milliseconds(500));
    }
  }

  void WriteJson(const std::vector<std::string>& mismatches, int calls, double seconds) {
    if (flags_.json_summary.empty()) return;
    std::map<std::string, int> decisions;
    for (const Referral& r : ex_.referrals) decisions[std::string(DecisionName(r.decision))]++;
    std::ofstream out(flags_.json_summary);
    out << "{\"seed\": " << flags_.seed << ", \"referrals\": " << ex_.referrals.size()
        << ", \"years\": " << ex_.years << ", \"steps\": " << calls
        << ", \"seconds\": " << absl::StrFormat("%.1f", seconds)
        << ", \"mismatches\": " << mismatches.size() << ", \"decisions\": {";
    bool first = true;
    for (const auto& [name, n] : decisions) {
      out << (first ? "" : ", ") << "\"" << name << "\": " << n;
      first = false;
    }
    out << "}}\n";
    out.close();
    if (!out) {
      std::cerr << "sarloop-exercise: cannot write " << flags_.json_summary << "\n";
      std::exit(1);
    }
  }

  const Flags& flags_;
  Chain& chain_;
  const Exercise ex_;
  const std::string run_;
  OffsetClock clock_;
  std::vector<std::string> ids_;
  Failures failures_;
};

void PrintPlan(const Exercise& ex, const Options& o) {
  std::cout << DescribeModel();
  std::cout << absl::StrFormat("Exercise: %d referrals over %d financial year(s), %s to %s\n",
                               ex.referrals.size(), ex.years, DayText(o.start), DayText(o.end));
  std::map<int, std::map<Decision, int>> by_year;
  for (const Referral& r : ex.referrals) by_year[r.year][r.decision]++;
  const absl::Time first = FinancialYearStart(o.start);
  for (const auto& [year, counts] : by_year) {
    const int fy = absl::ToCivilYear(first, absl::UTCTimeZone()).year() + year;
    int total = 0;
    std::string parts;
    for (const auto& [d, n] : counts) {
      total += n;
      absl::StrAppend(&parts, parts.empty() ? "" : ", ", DecisionName(d), " ", n);
    }
    std::cout << absl::StrFormat("  %d-%02d: %d (%s)\n", fy, (fy + 1) % 100, total, parts);
  }
  std::map<Behaviour, int> first_year, last_year;
  for (const auto& [org, years] : ex.behaviour) {
    first_year[years.front()]++;
    last_year[years.back()]++;
  }
  auto line = [](std::map<Behaviour, int>& m) {
    return absl::StrFormat("%d prompt, %d slow, %d near-silent", m[Behaviour::kPrompt],
                           m[Behaviour::kSlow], m[Behaviour::kNearSilent]);
  };
  std::cout << "  organisations in the first year: " << line(first_year)
            << "; in the last: " << line(last_year) << "\n";
}

}  // namespace
}  // namespace sarloop::synth::exercise

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(argc, argv, "sarloop-exercise", "")) return 0;
  using namespace sarloop::synth::exercise;  // NOLINT
  const Flags flags = ParseFlags(argc, argv);
  sarloop::synth::SetCallPatience(absl::Seconds(flags.patience_seconds));
  Chain chain(flags.chain);
  chain.Connect();
  // The register must hold nothing yet: the check is referral by referral.
  if (!flags.dry_run) {
    sarloop::v1::ListRegisterRequest req;
    req.set_page_size(1);
    sarloop::v1::ListRegisterResponse resp;
    grpc::Status s = sarloop::synth::Call(kNcaUser, [&](grpc::ClientContext* ctx) {
      return chain.nca().ListRegister(ctx, req, &resp);
    });
    if (!s.ok()) Chain::Die(absl::StrCat("Nca.ListRegister: ", sarloop::synth::Describe(s)));
    if (resp.entries_size() > 0) {
      Chain::Die("the register already holds referrals: the exercise needs a fresh chain");
    }
  }
  Options o;
  o.seed = flags.seed;
  o.referrals_per_year = flags.per_year;
  // From the chain's clock (the next day) to the present.
  sarloop::synth::OffsetClock clock(flags.chain + "/clock-offset");
  o.start =
      absl::FromCivil(absl::ToCivilDay(clock.Now(), absl::UTCTimeZone()) + 1, absl::UTCTimeZone());
  o.end = absl::Now() - absl::Hours(1);
  if (o.start >= o.end) {
    Chain::Die(absl::StrCat("the chain's clock (", DayText(clock.Now()),
                            ") is not in the past: set DIR/clock-offset to a negative offset "
                            "(e.g. 1 April some years back) before the services start"));
  }
  for (const sarloop::synth::Instance& inst : chain.orgs()) {
    OrgSpec spec;
    spec.code = inst.code;
    spec.unit = inst.unit;
    spec.hands_over_on_receipt = inst.hands_over_on_receipt;
    const auto& published = sarloop::PublishedWorkforce();
    if (auto it = published.find(inst.code); it != published.end()) {
      spec.weight = it->second.officers_fte;
    }
    o.orgs.push_back(spec);
  }
  Exercise ex = MakeExercise(o);
  PrintPlan(ex, o);
  if (flags.dry_run) return 0;
  Driver driver(flags, chain, std::move(ex), sarloop::NewId("", 8));
  return driver.Run();
}
