// sarloop-synth: drives a synthetic scenario through a running chain (sarloop-local up) over the
// real gRPC APIs with mTLS, moves the services' clock forward by months through the shared
// offset file, and checks that the NCA register counts what the scenario did.
//
//   sarloop-synth --pki DIR [--base-port N] [--clock-file FILE] [--sars 1000] [--seed N]
//                 [--threads 8] [--timeout 60] [--json-summary FILE] [--dry-run]
//
// Every call has a deadline and names its user in `x-sarloop-user`; every mutating call carries a
// request_id, so a retried call takes effect once. Exit status: 0 when the register matches,
// 1 on a mismatch or a failed call, 2 on bad flags.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/ids.h"
#include "common/client/client.h"
#include "common/referral/lifecycle.h"
#include "common/version/version.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/racu.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tools/synth/chain_client.h"
#include "tools/synth/scenario.h"

namespace sarloop::synth {
namespace {

constexpr int64_t kDay = 24 * 3600;

struct Flags {
  std::string pki;
  int base_port = 0;  // 0: DIR/base-port next to --pki (sarloop-local writes it), else 7400
  std::string clock_file;
  int sars = 1000;
  uint64_t seed = 0;
  bool seed_given = false;
  int threads = 8;
  int timeout_seconds = 60;
  int patience_seconds = 15;
  std::string json_summary;
  bool dry_run = false;
};

// An empty `error` is a request for help: the usage on stdout, exit 0.
[[noreturn]] void Usage(const std::string& error) {
  std::ostream& out = error.empty() ? std::cout : std::cerr;
  out << "sarloop-synth: "
      << (error.empty() ? "drives a synthetic scenario through a local chain" : error) << "\n"
      << "usage: sarloop-synth --pki DIR [--base-port N] [--clock-file FILE] [--sars N]\n"
         "                     [--seed N] [--threads N] [--timeout SECONDS]\n"
         "                     [--patience SECONDS] [--json-summary FILE] [--dry-run]\n"
         "--patience: how long a call is retried while its service is unreachable "
         "(default 15).\n"
         "--dry-run prints the scenario and the counts it expects without calling the "
         "chain.\n";
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
    } else if (arg == "--pki") {
      f.pki = value;
    } else if (arg == "--base-port") {
      number(&f.base_port);
    } else if (arg == "--clock-file") {
      f.clock_file = value;
    } else if (arg == "--sars") {
      number(&f.sars);
    } else if (arg == "--seed") {
      number(&f.seed);
      f.seed_given = true;
    } else if (arg == "--threads") {
      number(&f.threads);
    } else if (arg == "--timeout") {
      number(&f.timeout_seconds);
    } else if (arg == "--patience") {
      number(&f.patience_seconds);
    } else if (arg == "--json-summary") {
      f.json_summary = value;
    } else {
      Usage(absl::StrCat("unknown flag ", arg));
    }
  };
  ParseCommandLine(argc, argv, {"--dry-run"}, usage, on_flag);
  if (f.pki.empty()) Usage("--pki DIR is required (the DIR/pki of sarloop-local up)");
  if (f.sars < 1 || f.sars > 1000000) Usage("--sars must be 1 to 1000000");
  if (f.threads < 1 || f.threads > 64) Usage("--threads must be 1 to 64");
  // The chain's directory holds pki/: "DIR/pki/" names the same as "DIR/pki".
  std::filesystem::path pki = std::filesystem::path(f.pki).lexically_normal();
  if (!pki.has_filename()) pki = pki.parent_path();
  const std::filesystem::path chain_dir = pki.parent_path();
  if (f.base_port == 0) {
    std::ifstream in(chain_dir / "base-port");
    if (!(in >> f.base_port)) f.base_port = 7400;
  }
  if (f.base_port < 1 || f.base_port > 65500) Usage("--base-port out of range");
  if (f.timeout_seconds < 1) Usage("--timeout must be positive");
  if (f.patience_seconds < 1) Usage("--patience must be positive");
  if (f.clock_file.empty()) {
    f.clock_file = (chain_dir / "clock-offset").string();
  }
  if (!f.json_summary.empty()) {
    if (const std::string why = UnwritableFile(f.json_summary); !why.empty()) {
      Usage(absl::StrCat("--json-summary: ", why));
    }
  }
  if (!f.seed_given) f.seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  return f;
}

// --------------------------------------------------------------- failures --

// Failed calls, collected from worker threads; any failure ends the run after its phase.
class Failures {
 public:
  void Add(std::string what) {
    std::lock_guard lock(mu_);
    list_.push_back(std::move(what));
  }
  bool Any() {
    std::lock_guard lock(mu_);
    return !list_.empty();
  }
  // Prints the failures and exits 1 if there are any.
  void ExitIfAny(absl::string_view phase) {
    std::lock_guard lock(mu_);
    if (list_.empty()) return;
    std::cerr << "sarloop-synth: " << list_.size() << " call(s) failed in phase '" << phase
              << "':\n";
    for (size_t i = 0; i < list_.size() && i < 20; ++i) std::cerr << "  " << list_[i] << "\n";
    std::exit(1);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> list_;
};

Failures failures;

// ----------------------------------------------------------------- calls --

// One organisation's endpoint as one of its client systems sees it.
struct Endpoint {
  std::shared_ptr<grpc::Channel> channel;
  std::string user;  // x-sarloop-user
  std::string target;
};

// Polls `done` until it returns true or `timeout` passes; sleeps 20 ms growing to 250 ms.
// Returns whether it became true. A failed poll (a call error) ends the run.
bool WaitUntil(absl::Duration timeout, const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(20);
  for (;;) {
    if (done()) return true;
    failures.ExitIfAny("polling");
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(250));
  }
}

class Chain {
 public:
  Chain(const Flags& flags, const std::string& run_id) : flags_(flags), run_id_(run_id) {}

  void Connect() {
    ukfiu_ = Open("ukfiu-intake", 1, "ukfiu.analyst.synth");
    nca_ = Open("analyst-alice", 2, "alice");
    const std::map<std::string, int> forces = {{"NFK", 11}, {"SFK", 12}, {"MPS", 13}, {"BF", 14}};
    for (const auto& [code, offset] : forces) {
      forces_[code] = Open(absl::StrCat("force-", code, "-psd"), offset,
                           absl::StrCat("psd.spoc.", absl::AsciiStrToLower(code)));
    }
    units_["ERSOU"] = Open("racu-ERSOU-cases", 21, "ersou.dci.synth");
    units_["NCAACU"] = Open("racu-NCAACU-cases", 22, "ncaacu.investigator.synth");
    ukfiu_stub_ = v1::Ukfiu::NewStub(ukfiu_.channel);
    nca_stub_ = v1::Nca::NewStub(nca_.channel);
    for (const auto& [code, ep] : forces_) force_stubs_[code] = v1::Force::NewStub(ep.channel);
    for (const auto& [code, ep] : units_) unit_stubs_[code] = v1::Racu::NewStub(ep.channel);
    // Fail fast and clearly when the chain is not there (calls themselves wait for it).
    std::vector<std::pair<std::string, const Endpoint*>> all = {{"ukfiu", &ukfiu_}, {"nca", &nca_}};
    for (const auto& [code, ep] : forces_) all.emplace_back("force-" + code, &ep);
    for (const auto& [code, ep] : units_) all.emplace_back("racu-" + code, &ep);
    for (const auto& [name, ep] : all) {
      if (!ep->channel->WaitForConnected(std::chrono::system_clock::now() +
                                         std::chrono::seconds(10))) {
        std::cerr << "sarloop-synth: cannot connect to " << name << " at " << ep->target
                  << " over mTLS within 10 s (is the chain up? sarloop-local status DIR)\n";
        std::exit(1);
      }
    }
  }

  std::string RequestId(absl::string_view step, int index) const {
    return absl::StrCat("synth-", run_id_, "-", step, "-", index);
  }

  v1::Ukfiu::Stub& ukfiu() { return *ukfiu_stub_; }
  v1::Nca::Stub& nca() { return *nca_stub_; }
  v1::Force::Stub& force(const std::string& code) { return *force_stubs_.at(code); }
  v1::Racu::Stub& unit(const std::string& code) { return *unit_stubs_.at(code); }
  const std::string& ukfiu_user() const { return ukfiu_.user; }
  const std::string& nca_user() const { return nca_.user; }
  const std::string& force_user(const std::string& code) const { return forces_.at(code).user; }
  const std::string& unit_user(const std::string& code) const { return units_.at(code).user; }

 private:
  Endpoint Open(const std::string& identity, int port_offset, std::string user) {
    const std::string dir = absl::StrCat(flags_.pki, "/", identity);
    const std::string target = absl::StrCat("localhost:", flags_.base_port + port_offset);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel = client::OpenChannel(target, client::IdentityFiles(dir), args);
    if (!channel.ok()) {
      std::cerr << "sarloop-synth: identity " << dir << ": " << channel.status() << "\n";
      std::exit(1);
    }
    return Endpoint{*std::move(channel), std::move(user), target};
  }

  const Flags& flags_;
  const std::string run_id_;
  Endpoint ukfiu_, nca_;
  std::map<std::string, Endpoint> forces_, units_;
  std::unique_ptr<v1::Ukfiu::Stub> ukfiu_stub_;
  std::unique_ptr<v1::Nca::Stub> nca_stub_;
  std::map<std::string, std::unique_ptr<v1::Force::Stub>> force_stubs_;
  std::map<std::string, std::unique_ptr<v1::Racu::Stub>> unit_stubs_;
};

// --------------------------------------------------------------- listings --

std::map<std::string, v1::Referral> ForceInbox(Chain& chain, const std::string& code) {
  std::map<std::string, v1::Referral> out;
  v1::ListInboxRequest req;
  req.set_page_size(1000);
  for (;;) {
    v1::ListInboxResponse resp;
    grpc::Status s = Call(chain.force_user(code), [&](grpc::ClientContext* ctx) {
      return chain.force(code).ListInbox(ctx, req, &resp);
    });
    if (!s.ok()) {
      failures.Add(absl::StrCat("Force(", code, ").ListInbox: ", Describe(s)));
      return out;
    }
    for (const v1::Referral& r : resp.referrals()) out[r.referral_id()] = r;
    if (resp.next_page_token().empty()) return out;
    req.set_page_token(resp.next_page_token());
  }
}

std::map<std::string, v1::Referral> UnitInbox(Chain& chain, const std::string& code) {
  std::map<std::string, v1::Referral> out;
  v1::ListHandoversRequest req;
  req.set_page_size(1000);
  for (;;) {
    v1::ListHandoversResponse resp;
    grpc::Status s = Call(chain.unit_user(code), [&](grpc::ClientContext* ctx) {
      return chain.unit(code).ListHandovers(ctx, req, &resp);
    });
    if (!s.ok()) {
      failures.Add(absl::StrCat("Racu(", code, ").ListHandovers: ", Describe(s)));
      return out;
    }
    for (const v1::Referral& r : resp.referrals()) out[r.referral_id()] = r;
    if (resp.next_page_token().empty()) return out;
    req.set_page_token(resp.next_page_token());
  }
}

std::map<std::string, v1::Referral> UkfiuReferrals(Chain& chain) {
  std::map<std::string, v1::Referral> out;
  v1::ListReferralsRequest req;
  req.set_page_size(1000);
  for (;;) {
    v1::ListReferralsResponse resp;
    grpc::Status s = Call(chain.ukfiu_user(), [&](grpc::ClientContext* ctx) {
      return chain.ukfiu().ListReferrals(ctx, req, &resp);
    });
    if (!s.ok()) {
      failures.Add(absl::StrCat("Ukfiu.ListReferrals: ", Describe(s)));
      return out;
    }
    for (const v1::Referral& r : resp.referrals()) out[r.referral_id()] = r;
    if (resp.next_page_token().empty()) return out;
    req.set_page_token(resp.next_page_token());
  }
}

std::map<std::string, v1::RegisterEntry> NcaRegister(Chain& chain) {
  std::map<std::string, v1::RegisterEntry> out;
  v1::ListRegisterRequest req;
  req.set_page_size(1000);
  for (;;) {
    v1::ListRegisterResponse resp;
    grpc::Status s = Call(chain.nca_user(), [&](grpc::ClientContext* ctx) {
      return chain.nca().ListRegister(ctx, req, &resp);
    });
    if (!s.ok()) {
      failures.Add(absl::StrCat("Nca.ListRegister: ", Describe(s)));
      return out;
    }
    for (const v1::RegisterEntry& e : resp.entries()) out[e.referral_id()] = e;
    if (resp.next_page_token().empty()) return out;
    req.set_page_token(resp.next_page_token());
  }
}

std::optional<v1::GetSummaryResponse> NcaSummary(Chain& chain) {
  v1::GetSummaryResponse resp;
  grpc::Status s = Call(chain.nca_user(), [&](grpc::ClientContext* ctx) {
    return chain.nca().GetSummary(ctx, v1::GetSummaryRequest(), &resp);
  });
  if (!s.ok()) {
    failures.Add(absl::StrCat("Nca.GetSummary: ", Describe(s)));
    return std::nullopt;
  }
  return resp;
}

// ---------------------------------------------------------------- summary --

using Counts = std::map<std::string, int64_t>;

std::string OutcomeKey(v1::OutcomeType type) { return absl::StrCat("outcome:", OutcomeName(type)); }

Counts CountsOf(const v1::OrganisationSummary& s) {
  Counts c = {{"referred", s.referred()},
              {"feedback_received", s.feedback_received()},
              {"declined_by_force", s.declined_by_force()},
              {"withdrawn", s.withdrawn()},
              {"redirected", s.redirected()},
              {"open", s.open()},
              {"handed_over", s.handed_over()},
              {"assistance_declined", s.assistance_declined()},
              {"reminded", s.reminded()},
              {"overdue", s.overdue()},
              {"escalated", s.escalated()}};
  for (int t = 1; t <= v1::OutcomeType_MAX; ++t) c[OutcomeKey(static_cast<v1::OutcomeType>(t))] = 0;
  for (const v1::OutcomeCount& o : s.outcomes()) c[OutcomeKey(o.type())] += o.count();
  return c;
}

Counts CountsOf(const OrgTally& t) {
  Counts c = {{"referred", t.referred},
              {"feedback_received", t.feedback_received},
              {"declined_by_force", t.declined_by_force},
              {"withdrawn", t.withdrawn},
              {"redirected", t.redirected},
              {"open", t.open},
              {"handed_over", t.handed_over},
              {"assistance_declined", t.assistance_declined},
              {"reminded", t.reminded},
              {"overdue", t.overdue},
              {"escalated", t.escalated}};
  for (int t2 = 1; t2 <= v1::OutcomeType_MAX; ++t2)
    c[OutcomeKey(static_cast<v1::OutcomeType>(t2))] = 0;
  for (const auto& [type, n] : t.outcomes) c[OutcomeKey(type)] += n;
  return c;
}

std::map<std::string, Counts> ByOrganisation(const v1::GetSummaryResponse& summary) {
  std::map<std::string, Counts> out;
  for (const v1::OrganisationSummary& s : summary.organisations()) {
    out[s.organisation()] = CountsOf(s);
  }
  return out;
}

// "ORG field: NCA has X, scenario expects Y" for every difference.
std::vector<std::string> Compare(const std::map<std::string, Counts>& expected,
                                 const std::map<std::string, Counts>& actual) {
  std::vector<std::string> out;
  std::set<std::string> orgs;
  for (const auto& [org, c] : expected) orgs.insert(org);
  for (const auto& [org, c] : actual) orgs.insert(org);
  static const Counts kZero;
  for (const std::string& org : orgs) {
    const Counts& e = expected.count(org) ? expected.at(org) : kZero;
    const Counts& a = actual.count(org) ? actual.at(org) : kZero;
    std::set<std::string> keys;
    for (const auto& [k, v] : e) keys.insert(k);
    for (const auto& [k, v] : a) keys.insert(k);
    for (const std::string& k : keys) {
      const int64_t ev = e.count(k) ? e.at(k) : 0, av = a.count(k) ? a.at(k) : 0;
      if (ev != av) {
        out.push_back(absl::StrCat(org, " ", k, ": NCA has ", av, ", scenario expects ", ev));
      }
    }
  }
  return out;
}

void PrintSummary(const v1::GetSummaryResponse& summary) {
  std::cout << "\nNCA register summary (as of " << absl::FormatTime(FromProto(summary.as_of()))
            << ", chain clock):\n";
  const std::vector<std::pair<std::string, std::string>> cols = {
      {"referred", "REFERRED"},          {"feedback_received", "FEEDBACK"},
      {"declined_by_force", "DECLINED"}, {"withdrawn", "WITHDRAWN"},
      {"redirected", "REDIRECTED"},      {"open", "OPEN"},
      {"handed_over", "HANDED-OVER"},    {"assistance_declined", "UNIT-DECLINED"},
      {"reminded", "REMINDED"},          {"overdue", "OVERDUE"},
      {"escalated", "ESCALATED"}};
  std::string line = absl::StrFormat("%-8s", "ORG");
  for (const auto& [k, h] : cols)
    absl::StrAppend(&line, absl::StrFormat(" %*s", static_cast<int>(h.size()), h));
  std::cout << line << "\n";
  auto row = [&](const std::string& name, const v1::OrganisationSummary& s) {
    const Counts c = CountsOf(s);
    std::string l = absl::StrFormat("%-8s", name);
    for (const auto& [k, h] : cols)
      absl::StrAppend(&l, absl::StrFormat(" %*d", static_cast<int>(h.size()), c.at(k)));
    std::cout << l << "\n";
  };
  for (const v1::OrganisationSummary& s : summary.organisations()) row(s.organisation(), s);
  row("TOTAL", summary.total());

  std::cout << "\nOutcomes by type (NCA register):\n";
  std::string head = absl::StrFormat("%-28s", "OUTCOME");
  for (const v1::OrganisationSummary& s : summary.organisations()) {
    absl::StrAppend(&head, absl::StrFormat(" %6s", s.organisation()));
  }
  absl::StrAppend(&head, absl::StrFormat(" %6s", "TOTAL"));
  std::cout << head << "\n";
  for (int t = 1; t <= v1::OutcomeType_MAX; ++t) {
    const std::string key = OutcomeKey(static_cast<v1::OutcomeType>(t));
    std::string l = absl::StrFormat("%-28s", OutcomeName(static_cast<v1::OutcomeType>(t)));
    for (const v1::OrganisationSummary& s : summary.organisations()) {
      absl::StrAppend(&l, absl::StrFormat(" %6d", CountsOf(s).at(key)));
    }
    absl::StrAppend(&l, absl::StrFormat(" %6d", CountsOf(summary.total()).at(key)));
    std::cout << l << "\n";
  }
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, absl::StrFormat("\\u%04x", static_cast<int>(c)));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonCounts(const Counts& c) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : c) parts.push_back(absl::StrCat(JsonString(k), ":", v));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

// ----------------------------------------------------------------- driver --

void PrintPlan(const Scenario& s, const Flags& flags) {
  std::map<std::string, std::map<Path, int>> paths;
  for (const ReferralPlan& r : s.referrals) ++paths[r.organisation][r.path];
  int subjects = 0;
  for (const SarPlan& sar : s.sars) subjects += sar.sar.subjects_size();
  std::cout << "sarloop-synth: seed " << s.seed << ", " << s.sars.size() << " SARs (" << subjects
            << " subjects), " << s.referrals.size() << " referrals, " << flags.threads
            << " threads, chain on localhost:" << flags.base_port + 1 << "..\n";
  for (const auto& [org, counts] : paths) {
    std::vector<std::string> parts;
    for (const auto& [p, n] : counts) parts.push_back(absl::StrCat(PathName(p), " ", n));
    std::cout << "  " << org << ": " << absl::StrJoin(parts, ", ") << "\n";
  }
}

// The register counts the scenario expects per organisation (on an empty register).
void PrintExpected(const Scenario& s) {
  std::cout << "expected register counts:\n";
  for (const auto& [org, tally] : Tally(s)) {
    std::vector<std::string> parts;
    for (const auto& [k, v] : CountsOf(tally)) {
      if (v != 0) parts.push_back(absl::StrCat(k, "=", v));
    }
    std::cout << "  " << org << ": " << absl::StrJoin(parts, " ") << "\n";
  }
}

class Driver {
 public:
  Driver(const Flags& flags, Chain& chain, Scenario scenario)
      : flags_(flags),
        chain_(chain),
        s_(std::move(scenario)),
        clock_(flags.clock_file),
        timeout_(absl::Seconds(flags.timeout_seconds)) {
    sar_ids_.resize(s_.sars.size());
    ids_.resize(s_.referrals.size());
    opened_at_.resize(s_.referrals.size());
  }

  int Run() {
    const absl::Time start = absl::Now();
    PrintPlan(s_, flags_);
    std::optional<v1::GetSummaryResponse> baseline;
    Phase("earlier runs' investigations report", [&] { EarlierProgress(); });
    Phase("baseline", [&] {
      baseline = NcaSummary(chain_);
      failures.ExitIfAny("baseline");
    });
    Phase("submit SARs", [&] { SubmitSars(); });
    Phase("refer", [&] { Refer(); });
    Phase("redirect", [&] { Redirect(); });
    Phase("delivery to forces", [&] { AwaitForceInboxes(); });
    Phase("force decisions", [&] { ForceSteps(); });
    Phase("UKFIU answers the forces' questions", [&] { AnswerQuestions(); });
    Phase("force decisions after answers", [&] { DecisionsAfterAnswers(); });
    Phase("delivery to units", [&] { AwaitUnitInboxes(); });
    Phase("unit decisions", [&] { UnitSteps(); });
    Phase("returned to forces", [&] { ReturnedSteps(); });
    Phase("register settles", [&] { AwaitSettled(); });
    Phase("clock +30 days: reminders", [&] { Reminders(); });
    Phase("late feedback and progress", [&] { LateFeedback(); });
    Phase("clock +58 days: escalations", [&] { Escalations(); });
    std::optional<v1::GetSummaryResponse> final_summary;
    std::vector<std::string> mismatches;
    Phase("NCA summary matches", [&] { final_summary = AwaitSummary(*baseline, mismatches); });
    Phase("every referral once, as planned", [&] {
      std::vector<std::string> wrong = CheckEntries(*baseline);
      mismatches.insert(mismatches.end(), wrong.begin(), wrong.end());
    });
    std::vector<std::string> deconfliction;
    int flagged = 0;
    Phase("deconfliction check",
          [&] { deconfliction = CheckDeconfliction(HasBaseline(*baseline), flagged); });
    const double total = absl::ToDoubleSeconds(absl::Now() - start);

    PrintSummary(*final_summary);
    if (HasBaseline(*baseline)) {
      std::cout << "\n(the register already held " << baseline->total().referred()
                << " referral(s) before this run; expected counts include them)\n";
    }
    std::cout << "\nTiming (seconds):\n";
    for (const auto& [name, secs] : timings_) {
      std::cout << absl::StrFormat("  %-32s %7.2f\n", name, secs);
    }
    std::cout << absl::StrFormat("  %-32s %7.2f\n", "total", total);
    std::cout << "\ndeconfliction: " << flagged << " referral(s) flagged in the register, "
              << DeconflictionPairs(s_).size()
              << " pair(s) sharing a subject across organisations\n";
    mismatches.insert(mismatches.end(), deconfliction.begin(), deconfliction.end());
    if (mismatches.empty()) {
      std::cout << "scenario check: NCA counts equal submitted counts\n";
    } else {
      std::cout << "scenario check: " << mismatches.size() << " mismatch(es):\n";
      for (const std::string& m : mismatches) std::cout << "  " << m << "\n";
    }
    std::cout << "seed " << s_.seed << " (rerun with --seed " << s_.seed << ")\n";
    WriteJson(*final_summary, Expected(*baseline), mismatches, flagged, total);
    return mismatches.empty() ? 0 : 1;
  }

 private:
  void Phase(const std::string& name, const std::function<void()>& fn) {
    std::cout << "[" << absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()) << "] "
              << name << " ..." << std::flush;
    const absl::Time t0 = absl::Now();
    fn();
    failures.ExitIfAny(name);
    const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    timings_.emplace_back(name, secs);
    std::cout << absl::StrFormat(" %.2f s\n", secs) << std::flush;
  }

  [[noreturn]] void TimedOut(const std::string& what, const std::vector<std::string>& missing) {
    std::cout << "\n";
    std::cerr << "sarloop-synth: timed out after " << flags_.timeout_seconds << " s waiting for "
              << what << "; " << missing.size() << " outstanding, e.g.:\n";
    for (size_t i = 0; i < missing.size() && i < 10; ++i) std::cerr << "  " << missing[i] << "\n";
    std::exit(1);
  }

  // A mutating call; records a failure naming the step and referral on error.
  void Do(const std::string& what, const std::string& user,
          const std::function<grpc::Status(grpc::ClientContext*)>& call) {
    grpc::Status s = Call(user, call);
    if (!s.ok()) failures.Add(absl::StrCat(what, ": ", Describe(s)));
  }

  void SubmitSars() {
    ParallelFor(static_cast<int>(s_.sars.size()), flags_.threads, [&](int i) {
      v1::SubmitSarRequest req;
      req.set_request_id(chain_.RequestId("submit", i));
      *req.mutable_sar() = s_.sars[i].sar;
      *req.mutable_sar()->mutable_submitted_at() = ToProto(clock_.Now() - absl::Minutes(5));
      v1::SubmitSarResponse resp;
      Do(absl::StrCat("Ukfiu.SubmitSar #", i), chain_.ukfiu_user(),
         [&](grpc::ClientContext* ctx) { return chain_.ukfiu().SubmitSar(ctx, req, &resp); });
      sar_ids_[i] = resp.sar().sar_id();
    });
  }

  void Refer() {
    std::vector<int> direct;
    for (size_t i = 0; i < s_.referrals.size(); ++i) {
      if (s_.referrals[i].redirected_from < 0) direct.push_back(static_cast<int>(i));
    }
    ParallelFor(static_cast<int>(direct.size()), flags_.threads, [&](int k) {
      const int i = direct[k];
      const ReferralPlan& r = s_.referrals[i];
      v1::ReferSarRequest req;
      req.set_request_id(chain_.RequestId("refer", i));
      req.set_sar_id(sar_ids_[r.sar]);
      req.set_organisation(r.organisation);
      *req.mutable_thr() = r.thr;
      req.set_route(r.indirect ? v1::REFERRAL_ROUTE_INDIRECT : v1::REFERRAL_ROUTE_DIRECT);
      v1::ReferSarResponse resp;
      Do(absl::StrCat("Ukfiu.ReferSar ", sar_ids_[r.sar], " -> ", r.organisation),
         chain_.ukfiu_user(),
         [&](grpc::ClientContext* ctx) { return chain_.ukfiu().ReferSar(ctx, req, &resp); });
      ids_[i] = resp.referral().referral_id();
    });
  }

  void Redirect() {
    std::vector<int> redirects;
    for (size_t i = 0; i < s_.referrals.size(); ++i) {
      if (s_.referrals[i].path == Path::kRedirected) redirects.push_back(static_cast<int>(i));
    }
    ParallelFor(static_cast<int>(redirects.size()), flags_.threads, [&](int k) {
      const int i = redirects[k];
      const ReferralPlan& r = s_.referrals[i];
      const ReferralPlan& next = s_.referrals[r.redirect_to];
      v1::RedirectReferralRequest req;
      req.set_request_id(chain_.RequestId("redirect", i));
      req.set_referral_id(ids_[i]);
      req.set_organisation(next.organisation);
      *req.mutable_thr() = next.thr;
      req.set_reason(r.reason);
      v1::RedirectReferralResponse resp;
      Do(absl::StrCat("Ukfiu.RedirectReferral ", ids_[i], " -> ", next.organisation),
         chain_.ukfiu_user(), [&](grpc::ClientContext* ctx) {
           return chain_.ukfiu().RedirectReferral(ctx, req, &resp);
         });
      ids_[r.redirect_to] = resp.referral().referral_id();
    });
  }

  // Every referral has reached its force (the ones still to act on as RECEIVED).
  void AwaitForceInboxes() {
    std::vector<std::string> missing;
    const bool ok = WaitUntil(timeout_, [&] {
      missing.clear();
      for (const char* f : kForces) {
        const auto inbox = ForceInbox(chain_, f);
        for (size_t i = 0; i < s_.referrals.size(); ++i) {
          const ReferralPlan& r = s_.referrals[i];
          if (r.organisation != f) continue;
          auto it = inbox.find(ids_[i]);
          const bool acts = r.path != Path::kRedirected;
          // A force that hands over on receipt has passed it to its unit already.
          const v1::ReferralState want =
              HandsOverOnReceipt(f) ? v1::REFERRAL_STATE_HANDED_OVER : v1::REFERRAL_STATE_RECEIVED;
          if (it == inbox.end()) {
            missing.push_back(absl::StrCat(ids_[i], " not yet in the ", f, " inbox"));
          } else if (acts && it->second.state() != want) {
            missing.push_back(absl::StrCat(ids_[i], " at ", f, " is ",
                                           StateName(it->second.state()), ", expected ",
                                           StateName(want)));
          }
        }
      }
      return missing.empty();
    });
    if (!ok) TimedOut("referrals to reach the forces", missing);
  }

  void Step(const std::string& force, const std::string& method, int i,
            const std::function<grpc::Status(v1::Force::Stub&, grpc::ClientContext*,
                                             const std::string& request_id,
                                             v1::ForceStepResponse*)>& fn) {
    v1::ForceStepResponse resp;
    const std::string request_id = chain_.RequestId(method, i);
    Do(absl::StrCat("Force(", force, ").", method, " ", ids_[i]), chain_.force_user(force),
       [&](grpc::ClientContext* ctx) { return fn(chain_.force(force), ctx, request_id, &resp); });
  }

  void Acknowledge(int i) {
    const std::string& org = s_.referrals[i].organisation;
    Step(org, "Acknowledge", i, [&](auto& stub, auto* ctx, const auto& rid, auto* resp) {
      v1::ForceStepRequest req;
      req.set_request_id(rid);
      req.set_referral_id(ids_[i]);
      return stub.Acknowledge(ctx, req, resp);
    });
  }

  void StartResearch(int i) {
    const std::string& org = s_.referrals[i].organisation;
    opened_at_[i] = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()));
    Step(org, "StartResearch", i, [&](auto& stub, auto* ctx, const auto& rid, auto* resp) {
      v1::ForceStepRequest req;
      req.set_request_id(rid);
      req.set_referral_id(ids_[i]);
      // What the research concerns, where the plan knows it already.
      const v1::CorruptionCategory category = s_.referrals[i].outcome.category();
      if (category != v1::CORRUPTION_CATEGORY_UNSPECIFIED) req.add_categories(category);
      return stub.StartResearch(ctx, req, resp);
    });
  }

  // The plan's outcome with its dates: opened when research (or the joint investigation)
  // started, closed now by the chain's clock.
  v1::Outcome Dated(int i) {
    v1::Outcome o = s_.referrals[i].outcome;
    const absl::Time closed = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()));
    *o.mutable_opened_at() = ToProto(std::min(opened_at_[i], closed));
    *o.mutable_closed_at() = ToProto(closed);
    return o;
  }

  // The open status recorded before the ending (charged; a case to answer), dated as opened
  // when the research or investigation opened; unset when the plan has none.
  std::optional<v1::Outcome> Interim(int i) {
    v1::Outcome o = s_.referrals[i].interim;
    if (o.type() == v1::OUTCOME_TYPE_UNSPECIFIED) return std::nullopt;
    const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()));
    *o.mutable_opened_at() = ToProto(std::min(opened_at_[i], now));
    return o;
  }

  void Close(int i) {
    const std::string& org = s_.referrals[i].organisation;
    if (const std::optional<v1::Outcome> interim = Interim(i)) {
      Step(org, "UpdateOutcome", i, [&](auto& stub, auto* ctx, const auto& rid, auto* resp) {
        v1::UpdateOutcomeRequest req;
        req.set_request_id(rid);
        req.set_referral_id(ids_[i]);
        *req.mutable_outcome() = *interim;
        return stub.UpdateOutcome(ctx, req, resp);
      });
    }
    // Dated once, outside the retries: a retry must send the same request (the services refuse
    // a request_id reused for a different one, and a clock second may pass between attempts).
    const v1::Outcome outcome = Dated(i);
    Step(org, "Close", i, [&](auto& stub, auto* ctx, const auto& rid, auto* resp) {
      v1::CloseReferralRequest req;
      req.set_request_id(rid);
      req.set_referral_id(ids_[i]);
      *req.mutable_outcome() = outcome;
      return stub.Close(ctx, req, resp);
    });
  }

  void Decline(int i) {
    const std::string& org = s_.referrals[i].organisation;
    Step(org, "Decline", i, [&](auto& stub, auto* ctx, const auto& rid, auto* resp) {
      v1::DeclineReferralRequest req;
      req.set_request_id(rid);
      req.set_referral_id(ids_[i]);
      req.set_reason(s_.referrals[i].reason);
      req.set_reason_code(s_.referrals[i].decline_code);
      req.set_named_organisation(s_.referrals[i].named_employer);
      return stub.Decline(ctx, req, resp);
    });
  }

  void HandOver(int i) {
    const std::string& org = s_.referrals[i].organisation;
    Step(org, "HandOver", i, [&](auto& stub, auto* ctx, const auto& rid, auto* resp) {
      v1::HandOverRequest req;
      req.set_request_id(rid);
      req.set_referral_id(ids_[i]);
      req.set_notes(s_.referrals[i].handover_notes);
      req.set_priority(s_.referrals[i].priority);
      req.set_unit(s_.referrals[i].unit);
      *req.mutable_thr() = DecisionThr(i, "Research supports a joint investigation: ");
      return stub.HandOver(ctx, req, resp);
    });
  }

  void Withdraw(int i) {
    v1::WithdrawReferralRequest req;
    req.set_request_id(chain_.RequestId("withdraw", i));
    req.set_referral_id(ids_[i]);
    req.set_reason(s_.referrals[i].reason);
    v1::WithdrawReferralResponse resp;
    Do(absl::StrCat("Ukfiu.WithdrawReferral ", ids_[i]), chain_.ukfiu_user(),
       [&](grpc::ClientContext* ctx) { return chain_.ukfiu().WithdrawReferral(ctx, req, &resp); });
  }

  void ForceSteps() {
    ParallelFor(static_cast<int>(s_.referrals.size()), flags_.threads, [&](int i) {
      const ReferralPlan& r = s_.referrals[i];
      switch (r.path) {
        case Path::kSilent:
        case Path::kRedirected:
          return;
        case Path::kStalled:
          Acknowledge(i);
          return;
        case Path::kWithdrawn:
          if (r.acknowledged_before_withdrawal) Acknowledge(i);
          Withdraw(i);
          return;
        default:
          break;
      }
      // Border Force's service handed it to the NCA's ACU as it arrived: nothing for it to do.
      if (HandsOverOnReceipt(r.organisation)) {
        opened_at_[i] = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()));
        return;
      }
      Acknowledge(i);
      StartResearch(i);
      if (r.iopc) ReferToIopc(i);
      // A question to UKFIU first: the decision waits for the answer ("force decisions after
      // answers").
      if (!r.question.empty()) {
        Ask(i);
        return;
      }
      Decide(i);
    });
  }

  // The referral to the IOPC, then the mode it decided.
  void ReferToIopc(int i) {
    const std::string& org = s_.referrals[i].organisation;
    for (v1::IopcMode mode : {v1::IOPC_MODE_UNSPECIFIED, v1::IOPC_MODE_DIRECTED}) {
      Step(org, mode == v1::IOPC_MODE_UNSPECIFIED ? "ReferToIopc" : "IopcMode", i,
           [&](auto& stub, auto* ctx, const auto& rid, auto* resp) {
             v1::ReferToIopcRequest req;
             req.set_request_id(rid);
             req.set_referral_id(ids_[i]);
             req.set_mode(mode);
             return stub.ReferToIopc(ctx, req, resp);
           });
    }
  }

  void Ask(int i) {
    const ReferralPlan& r = s_.referrals[i];
    v1::RequestInformationRequest req;
    req.set_request_id(chain_.RequestId("ask", i));
    req.set_referral_id(ids_[i]);
    req.set_question(r.question);
    req.add_attachments(absl::StrCat("goAML ", sar_ids_[r.sar]));
    v1::InformationThreadResponse resp;
    Do(absl::StrCat("Force(", r.organisation, ").RequestInformation ", ids_[i]),
       chain_.force_user(r.organisation), [&](grpc::ClientContext* ctx) {
         return chain_.force(r.organisation).RequestInformation(ctx, req, &resp);
       });
    std::lock_guard<std::mutex> lock(threads_mu_);
    threads_[i] = resp.thread().thread_id();
  }

  // UKFIU answers every question the forces asked, once each has reached it.
  void AnswerQuestions() {
    std::vector<std::string> missing;
    std::map<std::string, v1::InformationThread> waiting;
    const bool ok = WaitUntil(timeout_, [&] {
      missing.clear();
      waiting.clear();
      v1::ListThreadsRequest req;
      req.set_awaiting_our_answer(true);
      req.set_page_size(1000);
      while (true) {
        v1::ListThreadsResponse resp;
        grpc::Status s = Call(chain_.ukfiu_user(), [&](grpc::ClientContext* ctx) {
          return chain_.ukfiu().ListThreads(ctx, req, &resp);
        });
        if (!s.ok()) return false;
        for (const auto& t : resp.threads()) waiting[t.thread_id()] = t;
        if (resp.next_page_token().empty()) break;
        req.set_page_token(resp.next_page_token());
      }
      for (const auto& [i, thread] : threads_) {
        if (!waiting.count(thread)) missing.push_back(absl::StrCat(thread, " not yet at UKFIU"));
      }
      return missing.empty();
    });
    if (!ok) TimedOut("questions to reach UKFIU", missing);
    std::vector<std::pair<int, std::string>> asked(threads_.begin(), threads_.end());
    ParallelFor(static_cast<int>(asked.size()), flags_.threads, [&](int k) {
      const auto& [i, thread] = asked[k];
      v1::AnswerInformationRequest req;
      req.set_request_id(chain_.RequestId("answer", i));
      req.set_thread_id(thread);
      req.set_answer(s_.referrals[i].answer);
      v1::InformationThreadResponse resp;
      Do(absl::StrCat("Ukfiu.AnswerInformation ", thread), chain_.ukfiu_user(),
         [&](grpc::ClientContext* ctx) {
           return chain_.ukfiu().AnswerInformation(ctx, req, &resp);
         });
    });
  }

  // The forces that asked decide now.
  void DecisionsAfterAnswers() {
    std::vector<int> asked;
    for (const auto& [i, thread] : threads_) asked.push_back(i);
    ParallelFor(static_cast<int>(asked.size()), flags_.threads, [&](int k) { Decide(asked[k]); });
  }

  // The force's decision after research.
  void Decide(int i) {
    const ReferralPlan& r = s_.referrals[i];
    {
      switch (r.path) {
        case Path::kDecline:
          Decline(i);
          break;
        case Path::kClose:
          Close(i);
          break;
        case Path::kUnitOutcome:
        case Path::kUnitOpen:
        case Path::kUnitDeclinedThenClose:
        case Path::kUnitDeclinedThenDecline:
          HandOver(i);
          break;
        default:  // kLateClose: closed after the reminder.
          break;
      }
    }
  }

  void AwaitUnitInboxes() {
    std::vector<std::string> missing;
    const bool ok = WaitUntil(timeout_, [&] {
      missing.clear();
      for (const char* unit : {"ERSOU", "NCAACU"}) {
        const auto inbox = UnitInbox(chain_, unit);
        for (size_t i = 0; i < s_.referrals.size(); ++i) {
          const ReferralPlan& r = s_.referrals[i];
          if (!HandedOver(r.path) || r.unit != unit) continue;
          auto it = inbox.find(ids_[i]);
          if (it == inbox.end()) {
            missing.push_back(absl::StrCat(ids_[i], " (", r.organisation, ") not yet at ", unit));
          } else if (it->second.state() != v1::REFERRAL_STATE_HANDED_OVER) {
            missing.push_back(absl::StrCat(ids_[i], " at ", unit, " is ",
                                           StateName(it->second.state()),
                                           ", expected HANDED_OVER"));
          }
        }
      }
      return missing.empty();
    });
    if (!ok) TimedOut("handovers to reach the units", missing);
  }

  void UnitSteps() {
    std::vector<int> handed;
    for (size_t i = 0; i < s_.referrals.size(); ++i) {
      if (HandedOver(s_.referrals[i].path)) handed.push_back(static_cast<int>(i));
    }
    ParallelFor(static_cast<int>(handed.size()), flags_.threads, [&](int k) {
      const int i = handed[k];
      const ReferralPlan& r = s_.referrals[i];
      const std::string unit = r.unit;
      auto& stub = chain_.unit(unit);
      const std::string& user = chain_.unit_user(unit);
      v1::UnitStepResponse resp;
      if (AssistanceDeclined(r.path)) {
        v1::DeclineAssistanceRequest req;
        req.set_request_id(chain_.RequestId("decline-assistance", i));
        req.set_referral_id(ids_[i]);
        req.set_reason(r.assistance_reason);
        req.set_priority(r.priority);
        *req.mutable_thr() = DecisionThr(i, "Assessed for adoption and declined: ");
        Do(absl::StrCat("Racu(", unit, ").DeclineAssistance ", ids_[i]), user,
           [&](grpc::ClientContext* ctx) { return stub.DeclineAssistance(ctx, req, &resp); });
        return;
      }
      v1::AcceptHandoverRequest accept;
      accept.set_request_id(chain_.RequestId("accept", i));
      accept.set_referral_id(ids_[i]);
      accept.set_priority(r.priority);
      *accept.mutable_thr() = DecisionThr(i, "Adopted: ");
      opened_at_[i] = absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()));
      Do(absl::StrCat("Racu(", unit, ").Accept ", ids_[i]), user,
         [&](grpc::ClientContext* ctx) { return stub.Accept(ctx, accept, &resp); });
      if (r.path != Path::kUnitOutcome) return;
      if (const std::optional<v1::Outcome> interim = Interim(i)) {
        v1::UpdateUnitOutcomeRequest update;
        update.set_request_id(chain_.RequestId("update-outcome", i));
        update.set_referral_id(ids_[i]);
        *update.mutable_outcome() = *interim;
        Do(absl::StrCat("Racu(", unit, ").UpdateOutcome ", ids_[i]), user,
           [&](grpc::ClientContext* ctx) { return stub.UpdateOutcome(ctx, update, &resp); });
      }
      v1::RecordOutcomeRequest req;
      req.set_request_id(chain_.RequestId("record-outcome", i));
      req.set_referral_id(ids_[i]);
      *req.mutable_outcome() = Dated(i);
      Do(absl::StrCat("Racu(", unit, ").RecordOutcome ", ids_[i]), user,
         [&](grpc::ClientContext* ctx) { return stub.RecordOutcome(ctx, req, &resp); });
    });
  }

  // Joint investigations an earlier run left open on this chain report too: every open
  // investigation does, and one that fell silent would be chased like any other. UKFIU and the
  // register must have the update before the clock moves on.
  void EarlierProgress() {
    const std::set<std::string> mine(ids_.begin(), ids_.end());
    std::vector<std::string> earlier;
    for (const char* unit : {"ERSOU", "NCAACU"}) {
      for (const auto& [id, r] : UnitInbox(chain_, unit)) {
        if (r.state() != v1::REFERRAL_STATE_JOINT_INVESTIGATION || mine.count(id)) continue;
        earlier.push_back(id);
        v1::ReportUnitProgressRequest req;
        req.set_request_id(absl::StrCat(chain_.RequestId("earlier-progress", 0), "-", id));
        req.set_referral_id(id);
        req.set_status(v1::PROGRESS_STATUS_AWAITING_TRIAL);
        v1::UnitStepResponse resp;
        Do(absl::StrCat("Racu(", unit, ").ReportProgress ", id), chain_.unit_user(unit),
           [&](grpc::ClientContext* ctx) {
             return chain_.unit(unit).ReportProgress(ctx, req, &resp);
           });
      }
    }
    // Past this run's last jump (+58 days): an open investigation here is P2 to P4 (60 days on).
    const absl::Time later = clock_.Now() + absl::Seconds(59 * kDay);
    std::vector<std::string> missing;
    const bool ok = WaitUntil(timeout_, [&] {
      missing.clear();
      const auto uk = UkfiuReferrals(chain_);
      const auto reg = NcaRegister(chain_);
      for (const std::string& id : earlier) {
        auto u = uk.find(id);
        auto n = reg.find(id);
        if (u == uk.end() || FromProto(u->second.next_due_at()) < later || n == reg.end() ||
            FromProto(n->second.next_due_at()) < later) {
          missing.push_back(absl::StrCat(id, " progress not yet at ukfiu and the register"));
        }
      }
      return missing.empty();
    });
    if (!ok) TimedOut("earlier runs' progress to reach ukfiu and the register", missing);
  }

  // A handover's or a unit's THR: UKFIU's scores, with the decision's own rationale.
  v1::ThrAssessment DecisionThr(int i, absl::string_view why) {
    v1::ThrAssessment thr = s_.referrals[i].thr;
    thr.set_rationale(absl::StrCat(why, thr.rationale()));
    return thr;
  }

  void UnitProgress(int i) {
    const std::string unit = s_.referrals[i].unit;
    v1::ReportUnitProgressRequest req;
    req.set_request_id(chain_.RequestId("progress", i));
    req.set_referral_id(ids_[i]);
    req.set_status(v1::PROGRESS_STATUS_AWAITING_CHARGING_DECISION);
    req.set_note("Financial analysis complete; file with the CPS for a charging decision.");
    v1::UnitStepResponse resp;
    Do(absl::StrCat("Racu(", unit, ").ReportProgress ", ids_[i]), chain_.unit_user(unit),
       [&](grpc::ClientContext* ctx) { return chain_.unit(unit).ReportProgress(ctx, req, &resp); });
  }

  // Referrals whose unit declined assistance come back to the force (UNDER_RESEARCH), which then
  // closes or declines them.
  void ReturnedSteps() {
    std::vector<int> returned;
    for (size_t i = 0; i < s_.referrals.size(); ++i) {
      if (AssistanceDeclined(s_.referrals[i].path)) returned.push_back(static_cast<int>(i));
    }
    std::vector<std::string> missing;
    const bool ok = WaitUntil(timeout_, [&] {
      missing.clear();
      std::map<std::string, std::map<std::string, v1::Referral>> inboxes;
      for (int i : returned) {
        const std::string& org = s_.referrals[i].organisation;
        if (!inboxes.count(org)) inboxes[org] = ForceInbox(chain_, org);
        auto it = inboxes[org].find(ids_[i]);
        if (it == inboxes[org].end() || it->second.state() != v1::REFERRAL_STATE_UNDER_RESEARCH) {
          missing.push_back(
              absl::StrCat(ids_[i], " at ", org, " is ",
                           it == inboxes[org].end() ? "missing" : StateName(it->second.state()),
                           ", expected UNDER_RESEARCH after the unit declined"));
        }
      }
      return missing.empty();
    });
    if (!ok) TimedOut("declined handovers to return to their forces", missing);
    ParallelFor(static_cast<int>(returned.size()), flags_.threads, [&](int k) {
      const int i = returned[k];
      if (s_.referrals[i].path == Path::kUnitDeclinedThenClose) {
        Close(i);
      } else {
        Decline(i);
      }
    });
  }

  // What the register and ukfiu must show before the clock moves: every decision has reached the
  // NCA (state, unit, unit declines, outcome) and ukfiu knows which referrals have feedback.
  void AwaitSettled() {
    std::vector<std::string> missing;
    const bool ok = WaitUntil(timeout_, [&] {
      missing.clear();
      const auto reg = NcaRegister(chain_);
      const auto uk = UkfiuReferrals(chain_);
      for (size_t i = 0; i < s_.referrals.size(); ++i) {
        const ReferralPlan& r = s_.referrals[i];
        const v1::ReferralState want = StateBeforeClock(r.path);
        auto it = reg.find(ids_[i]);
        if (it == reg.end()) {
          missing.push_back(absl::StrCat(ids_[i], " (", r.organisation, ") not in the register"));
          continue;
        }
        const v1::RegisterEntry& e = it->second;
        if (e.state() != want) {
          missing.push_back(absl::StrCat(ids_[i], " (", r.organisation, ", ", PathName(r.path),
                                         ") register state ", StateName(e.state()), ", expected ",
                                         StateName(want)));
        } else if (e.assistance_declines() != (AssistanceDeclined(r.path) ? 1 : 0)) {
          missing.push_back(absl::StrCat(ids_[i], " register shows ", e.assistance_declines(),
                                         " unit decline(s)"));
        } else if (HandedOver(r.path) && e.unit() != r.unit) {
          missing.push_back(absl::StrCat(ids_[i], " register unit '", e.unit(), "'"));
        } else if (HasOutcome(r.path) && r.path != Path::kLateClose &&
                   e.outcome().type() != r.outcome.type()) {
          missing.push_back(
              absl::StrCat(ids_[i], " register outcome ", OutcomeName(e.outcome().type())));
        }
        auto u = uk.find(ids_[i]);
        if (u == uk.end()) {
          missing.push_back(absl::StrCat(ids_[i], " unknown to ukfiu"));
        } else if (IsTerminal(want) != IsTerminal(u->second.state()) ||
                   (IsTerminal(want) && u->second.state() != want)) {
          missing.push_back(absl::StrCat(ids_[i], " ukfiu state ", StateName(u->second.state()),
                                         ", expected ", StateName(want)));
        }
      }
      return missing.empty();
    });
    if (!ok) TimedOut("the register and ukfiu to reflect every decision", missing);
  }

  void RunFeedbackClock() {
    v1::RunFeedbackClockResponse resp;
    Do("Ukfiu.RunFeedbackClock", chain_.ukfiu_user(), [&](grpc::ClientContext* ctx) {
      return chain_.ukfiu().RunFeedbackClock(ctx, v1::RunFeedbackClockRequest(), &resp);
    });
    failures.ExitIfAny("RunFeedbackClock");
    std::cout << " [clock run: " << resp.reminders_sent() << " reminder(s), " << resp.escalations()
              << " escalation(s)]" << std::flush;
  }

  // Acknowledgement was due at 5 days and the first decision at 28: silence is reminded, an open
  // joint investigation (progress due after 90 days) is not.
  void Reminders() {
    clock_.Set(30 * kDay);
    RunFeedbackClock();
    std::vector<std::string> missing;
    const bool ok = WaitUntil(timeout_, [&] {
      missing.clear();
      const auto reg = NcaRegister(chain_);
      for (size_t i = 0; i < s_.referrals.size(); ++i) {
        if (!Reminded(s_.referrals[i].path)) continue;
        auto it = reg.find(ids_[i]);
        if (it == reg.end() || it->second.reminders() < 1) {
          missing.push_back(absl::StrCat(ids_[i], " (", s_.referrals[i].organisation, ", ",
                                         PathName(s_.referrals[i].path),
                                         ") has no reminder in the register"));
        }
      }
      return missing.empty();
    });
    if (!ok) TimedOut("reminders to reach the register", missing);
  }

  // Forces that researched but had not answered respond after the reminder, before the grace
  // period ends; ukfiu must know before the clock moves again.
  void LateFeedback() {
    std::vector<int> late, open;
    for (size_t i = 0; i < s_.referrals.size(); ++i) {
      if (s_.referrals[i].path == Path::kLateClose) late.push_back(static_cast<int>(i));
      if (s_.referrals[i].path == Path::kUnitOpen) open.push_back(static_cast<int>(i));
    }
    ParallelFor(static_cast<int>(late.size()), flags_.threads, [&](int k) { Close(late[k]); });
    // Open joint investigations report where they stand, which restarts their progress clock.
    ParallelFor(static_cast<int>(open.size()), flags_.threads,
                [&](int k) { UnitProgress(open[k]); });
    failures.ExitIfAny("late feedback");
    std::vector<std::string> missing;
    const bool ok = WaitUntil(timeout_, [&] {
      missing.clear();
      const auto uk = UkfiuReferrals(chain_);
      for (int i : late) {
        auto u = uk.find(ids_[i]);
        if (u == uk.end() || u->second.state() != v1::REFERRAL_STATE_CLOSED_BY_FORCE) {
          missing.push_back(absl::StrCat(ids_[i], " not yet CLOSED_BY_FORCE at ukfiu"));
        }
      }
      return missing.empty();
    });
    if (!ok) TimedOut("late closures to reach ukfiu", missing);
  }

  // Silence 28 days past its due time reaches the first rung of the ladder (acknowledgement due
  // at 5 days: rung 1 at 33; the first decision at 28: rung 1 at 56). A joint investigation that
  // reported at 30 days is due again at 60 at the earliest (P1): not yet.
  void Escalations() {
    clock_.Set(58 * kDay);
    RunFeedbackClock();
  }

  static bool HasBaseline(const v1::GetSummaryResponse& b) { return b.total().referred() > 0; }

  std::map<std::string, Counts> Expected(const v1::GetSummaryResponse& baseline) {
    std::map<std::string, Counts> expected = ByOrganisation(baseline);
    for (const auto& [org, tally] : Tally(s_)) {
      Counts& c = expected[org];
      for (const auto& [k, v] : CountsOf(tally)) c[k] += v;
    }
    return expected;
  }

  // Polls the summary until it equals the expectation; gives up at the timeout, or earlier once
  // the counts have not changed for 10 s. Returns the last summary and fills the differences.
  v1::GetSummaryResponse AwaitSummary(const v1::GetSummaryResponse& baseline,
                                      std::vector<std::string>& mismatches) {
    const auto expected = Expected(baseline);
    v1::GetSummaryResponse last;
    std::map<std::string, Counts> last_counts;
    absl::Time last_change = absl::Now();
    WaitUntil(timeout_, [&] {
      auto summary = NcaSummary(chain_);
      if (!summary) return false;
      last = *summary;
      auto counts = ByOrganisation(last);
      if (counts != last_counts) {
        last_counts = counts;
        last_change = absl::Now();
      }
      mismatches = Compare(expected, counts);
      return mismatches.empty() || absl::Now() - last_change > absl::Seconds(10);
    });
    return last;
  }

  // Referral by referral: each of this run's referrals is in the register once, in the state its
  // path ends in, with the outcome it was given; and the register holds nothing else this run
  // made (a duplicated referral would be an extra entry).
  std::vector<std::string> CheckEntries(const v1::GetSummaryResponse& baseline) {
    std::vector<std::string> out;
    const auto reg = NcaRegister(chain_);
    std::set<std::string> seen;
    for (size_t i = 0; i < s_.referrals.size(); ++i) {
      const ReferralPlan& r = s_.referrals[i];
      auto it = reg.find(ids_[i]);
      if (it == reg.end()) {
        out.push_back(absl::StrCat(ids_[i], " (", r.organisation, ") is not in the register"));
        continue;
      }
      if (!seen.insert(ids_[i]).second) {
        out.push_back(absl::StrCat(ids_[i], " was acknowledged twice"));
      }
      const v1::RegisterEntry& e = it->second;
      if (e.state() != FinalState(r.path)) {
        out.push_back(absl::StrCat(ids_[i], " (", r.organisation, ", ", PathName(r.path), ") is ",
                                   v1::ReferralState_Name(e.state()), ", expected ",
                                   v1::ReferralState_Name(FinalState(r.path))));
      }
      if (HasOutcome(r.path) && e.outcome().type() != r.outcome.type()) {
        out.push_back(absl::StrCat(ids_[i], " has outcome ",
                                   v1::OutcomeType_Name(e.outcome().type()), ", expected ",
                                   v1::OutcomeType_Name(r.outcome.type())));
      }
    }
    const int64_t expected_total =
        baseline.total().referred() + static_cast<int64_t>(s_.referrals.size());
    if (static_cast<int64_t>(reg.size()) != expected_total) {
      out.push_back(
          absl::StrCat("the register holds ", reg.size(), " entries, expected ", expected_total));
    }
    return out;
  }

  // Every pair of this run's referrals to different organisations that share a subject has at
  // least one side flagged, and (on a register that was empty before the run, where no earlier
  // referral can be involved) no referral is flagged with an organisation it shares no subject
  // with.
  std::vector<std::string> CheckDeconfliction(bool earlier_runs, int& flagged) {
    std::vector<std::string> out;
    const auto reg = NcaRegister(chain_);
    const auto allowed = DeconflictionAllowed(s_);
    std::vector<std::set<std::string>> with(s_.referrals.size());
    flagged = 0;
    for (size_t i = 0; i < s_.referrals.size(); ++i) {
      auto it = reg.find(ids_[i]);
      if (it == reg.end()) continue;
      with[i].insert(it->second.deconfliction_with().begin(),
                     it->second.deconfliction_with().end());
      if (!with[i].empty()) ++flagged;
      for (const std::string& org : with[i]) {
        if (!earlier_runs && !allowed[i].count(org)) {
          out.push_back(absl::StrCat("deconfliction: ", ids_[i], " (", s_.referrals[i].organisation,
                                     ") flagged with ", org,
                                     ", which has no open referral sharing a subject"));
        }
      }
    }
    for (const auto& [a, b] : DeconflictionPairs(s_)) {
      if (!with[a].count(s_.referrals[b].organisation) &&
          !with[b].count(s_.referrals[a].organisation)) {
        out.push_back(absl::StrCat("deconfliction: ", ids_[a], " (", s_.referrals[a].organisation,
                                   ") and ", ids_[b], " (", s_.referrals[b].organisation,
                                   ") share a subject but neither is flagged"));
      }
    }
    return out;
  }

  void WriteJson(const v1::GetSummaryResponse& summary,
                 const std::map<std::string, Counts>& expected,
                 const std::vector<std::string>& mismatches, int flagged, double total) {
    if (flags_.json_summary.empty()) return;
    std::vector<std::string> phases, orgs, mism;
    for (const auto& [name, secs] : timings_) {
      phases.push_back(absl::StrFormat("{\"phase\":%s,\"seconds\":%.3f}", JsonString(name), secs));
    }
    // Per organisation: what the NCA counts, what this run did, and what was expected (this run
    // plus whatever the register held before it).
    const auto this_run = Tally(s_);
    for (const v1::OrganisationSummary& o : summary.organisations()) {
      const auto r = this_run.find(o.organisation());
      const auto e = expected.find(o.organisation());
      orgs.push_back(absl::StrCat(
          "{\"organisation\":", JsonString(o.organisation()), ",\"nca\":", JsonCounts(CountsOf(o)),
          ",\"this_run\":", JsonCounts(r == this_run.end() ? Counts() : CountsOf(r->second)),
          ",\"expected\":", JsonCounts(e == expected.end() ? Counts() : e->second), "}"));
    }
    for (const std::string& m : mismatches) mism.push_back(JsonString(m));
    int subjects = 0;
    for (const SarPlan& sar : s_.sars) subjects += sar.sar.subjects_size();
    std::ofstream out(flags_.json_summary, std::ios::trunc);
    out << "{\"seed\":" << s_.seed << ",\"sars\":" << s_.sars.size() << ",\"subjects\":" << subjects
        << ",\"referrals\":" << s_.referrals.size() << ",\"threads\":" << flags_.threads
        << ",\"total_seconds\":" << absl::StrFormat("%.3f", total) << ",\"phases\":["
        << absl::StrJoin(phases, ",") << "]"
        << ",\"organisations\":[" << absl::StrJoin(orgs, ",") << "]"
        << ",\"nca_total\":" << JsonCounts(CountsOf(summary.total()))
        << ",\"deconfliction_flagged\":" << flagged
        << ",\"deconfliction_pairs\":" << DeconflictionPairs(s_).size()
        << ",\"ok\":" << (mismatches.empty() ? "true" : "false") << ",\"mismatches\":["
        << absl::StrJoin(mism, ",") << "]}\n";
    out.close();
    if (!out) {
      std::cerr << "sarloop-synth: cannot write " << flags_.json_summary << "\n";
      std::exit(1);
    }
  }

  const Flags& flags_;
  Chain& chain_;
  const Scenario s_;
  OffsetClock clock_;
  const absl::Duration timeout_;
  std::vector<std::string> sar_ids_;
  std::vector<std::string> ids_;        // referral ids, by plan index
  std::vector<absl::Time> opened_at_;   // research or joint investigation start, by plan index
  std::map<int, std::string> threads_;  // the question each asking referral put to UKFIU
  std::mutex threads_mu_;
  std::vector<std::pair<std::string, double>> timings_;
};

}  // namespace
}  // namespace sarloop::synth

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(argc, argv, "sarloop-synth", "")) return 0;
  namespace synth = sarloop::synth;
  const synth::Flags flags = synth::ParseFlags(argc, argv);
  sarloop::synth::SetCallPatience(absl::Seconds(flags.patience_seconds));
  // Request ids are unique per run (a rerun against the same chain is a new scenario); the
  // scenario itself follows from the seed alone.
  std::mt19937_64 run_rng(std::random_device{}());
  const std::string run_id = absl::StrFormat("%08x", static_cast<uint32_t>(run_rng()));
  if (flags.dry_run) {
    const synth::Scenario scenario = synth::MakeScenario(flags.seed, flags.sars);
    synth::PrintPlan(scenario, flags);
    synth::PrintExpected(scenario);
    return 0;
  }
  synth::Chain chain(flags, run_id);
  chain.Connect();
  synth::Driver driver(flags, chain, synth::MakeScenario(flags.seed, flags.sars));
  return driver.Run();
}
