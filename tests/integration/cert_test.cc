// Certificates at the edge of the real chain (the binaries over mTLS on loopback): which callers
// are refused and how, and certificate rotation on running services without a failed call.
//
// How a refusal shows is part of what is asserted. The TLS layer refuses a certificate the CA
// did not sign, one outside its validity and one on the CRL: the server ends the handshake, so
// the client's call fails UNAVAILABLE (TLS 1.3 lets the client finish its side first, so it only
// sees "Socket closed") and the server's log names OpenSSL's verify error. A certificate that
// verifies but does not carry exactly one URI SAN completes the handshake and is refused by
// PeerIdentity (common/security/identity.cc) with UNAUTHENTICATED. A valid identity calling an API
// not meant for its role is refused by the gate with PERMISSION_DENIED. A server certificate for
// another host is refused by the client's host name check.
#include <grpcpp/security/auth_context.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/base/ids.h"
#include "common/security/authz.h"
#include "sarloop/v1/delivery.grpc.pb.h"
#include "sarloop/v1/force.grpc.pb.h"
#include "sarloop/v1/nca.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tests/testutil/chain.h"

namespace sarloop {
namespace {

using ::sarloop::testing::Context;
using ::sarloop::testing::LocalChain;
using ::sarloop::testing::SampleSar;
using ::sarloop::testing::SampleThr;
using ::sarloop::testing::WaitFor;
using ::testing::HasSubstr;

// OpenSSL's X509_V_ERR_* codes, as gRPC 1.51 logs them ("Certificate verify failed with code N";
// its verify callback is installed when crl_dir is set, which sarloop-local's configs do).
constexpr int kCertNotYetValid = 9;  // X509_V_ERR_CERT_NOT_YET_VALID
constexpr int kCertHasExpired = 10;  // X509_V_ERR_CERT_HAS_EXPIRED
constexpr int kUnknownIssuer = 20;   // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
constexpr int kCertRevoked = 23;     // X509_V_ERR_CERT_REVOKED
constexpr char kNfkPsd[] = "spiffe://sarloop/force/NFK/psd";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string StatusText(const grpc::Status& s) {
  return absl::StrCat(s.error_code(), ": ", s.error_message());
}

// Prints how a refused call ended (the record of what each case looks like to a client) and
// returns its status.
grpc::Status Shown(const std::string& what, const grpc::Status& s) {
  std::cout << "refused " << what << ": " << StatusText(s) << std::endl;
  return s;
}

// What an instance's log gained since the mark was taken.
class LogMark {
 public:
  LogMark(const LocalChain& chain, std::string instance)
      : chain_(chain), instance_(std::move(instance)), offset_(ReadFile(Path()).size()) {}
  std::string Since() const {
    const std::string text = ReadFile(Path());
    return text.size() > offset_ ? text.substr(offset_) : "";
  }
  // Waits until `needle` was logged (the line is written as the handshake fails, but another
  // process on a busy machine may take its time).
  bool Logged(const std::string& needle) const {
    return WaitFor([&] { return absl::StrContains(Since(), needle); });
  }

 private:
  std::string Path() const { return chain_.LogFile(instance_); }
  const LocalChain& chain_;
  std::string instance_;
  size_t offset_;
};

// The lines of `log` that report a failed delivery attempt (common/messaging/messaging.cc:
// "delivery to DEST failed (...); retrying in ...").
std::vector<std::string> DeliveryFailures(const std::string& log) {
  std::vector<std::string> found;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "delivery to") && absl::StrContains(line, " failed ")) {
      found.emplace_back(line);
    }
  }
  return found;
}

std::string VerifyFailure(int code) {
  return absl::StrCat("Certificate verify failed with code ", code, "\n");
}

// Force.ListInbox, the call a force's own systems make, on `channel`.
grpc::Status ListInbox(const std::shared_ptr<grpc::Channel>& channel) {
  v1::ListInboxResponse resp;
  return v1::Force::NewStub(channel)->ListInbox(Context().get(), v1::ListInboxRequest(), &resp);
}

// The certificate the server presented on the connection a completed call used (PEM), from the
// client's view of the handshake.
std::string ServerPem(const grpc::ClientContext& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (!auth) return "";
  std::vector<grpc::string_ref> pem = auth->FindPropertyValues("x509_pem_cert");
  return pem.size() == 1 ? std::string(pem[0].data(), pem[0].size()) : "";
}

class CertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto chain = LocalChain::Up();
    ASSERT_TRUE(chain.ok()) << chain.status();
    chain_ = std::move(*chain);
  }

  // Issues a certificate in the chain's PKI: `options` as sarloop-pki issue takes them.
  void Issue(const std::string& name, const std::string& id, const std::string& options = "") {
    absl::Status s =
        chain_->Pki(absl::StrCat("issue ", chain_->pki_dir(), " ", name, " ", id, " ", options));
    ASSERT_TRUE(s.ok()) << s;
  }

  // A fresh channel (new handshake) to `instance` with the dev identity `identity`.
  std::shared_ptr<grpc::Channel> Fresh(const std::string& instance, const std::string& identity,
                                       const std::string& target_name_override = "") {
    grpc::ChannelArguments args;
    if (!target_name_override.empty()) args.SetSslTargetNameOverride(target_name_override);
    return chain_->Channel(instance, chain_->Tls(identity), args);
  }

  // Calls Force.ListInbox at `instance` presenting the client certificate in `tls` and expects
  // the server to end the handshake with OpenSSL verify error `code`, the client seeing
  // UNAVAILABLE.
  void ExpectHandshakeRefused(const std::string& what, const std::string& instance,
                              const v1::TlsConfig& tls, int code) {
    SCOPED_TRACE(what);
    LogMark mark(*chain_, instance);
    grpc::Status s =
        Shown(what, ListInbox(chain_->Channel(instance, tls, grpc::ChannelArguments())));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(s);
    EXPECT_TRUE(mark.Logged(VerifyFailure(code))) << instance << " log since the call:\n"
                                                  << mark.Since();
    EXPECT_THAT(mark.Since(), HasSubstr("Handshake failed"));
  }

  std::unique_ptr<LocalChain> chain_;
};

TEST_F(CertTest, RefusesBadCertificatesWrongRolesAndWrongHosts) {
  const std::string pki = chain_->pki_dir();
  // The genuine caller works, with the CA's CRL in every service's crl_dir and nothing revoked
  // yet: gRPC 1.51 finds the CRL by the CA's subject hash (<hash>.r0) and checks the client's
  // chain against it.
  ASSERT_RPC_OK(ListInbox(chain_->Channel("force-NFK", "force-NFK-psd")));

  // A certificate from another CA. Its CA has the same subject name as the real one (both are
  // made by sarloop-pki init), so this also shows a look-alike issuer is not mistaken for it.
  const std::string rogue = chain_->dir() + "/rogue-pki";
  ASSERT_TRUE(chain_->Pki(absl::StrCat("init ", rogue)).ok());
  ASSERT_TRUE(chain_->Pki(absl::StrCat("issue ", rogue, " psd ", kNfkPsd)).ok());
  v1::TlsConfig rogue_tls = chain_->Tls("force-NFK-psd");  // trusts the real CA for the server
  rogue_tls.set_cert_file(rogue + "/psd/cert.pem");
  rogue_tls.set_key_file(rogue + "/psd/key.pem");
  ExpectHandshakeRefused("certificate from an unknown CA", "force-NFK", rogue_tls, kUnknownIssuer);

  Issue("expired-psd", kNfkPsd, "--not-before 20200101000000Z --not-after 20210101000000Z");
  ExpectHandshakeRefused("expired certificate", "force-NFK", chain_->Tls("expired-psd"),
                         kCertHasExpired);

  const std::string in_a_month =
      absl::FormatTime("%Y%m%d%H%M%SZ", absl::Now() + absl::Hours(24 * 30), absl::UTCTimeZone());
  Issue("future-psd", kNfkPsd, absl::StrCat("--not-before ", in_a_month));
  ExpectHandshakeRefused("not yet valid certificate", "force-NFK", chain_->Tls("future-psd"),
                         kCertNotYetValid);

  // Revocation on a running service. The certificate is used first, so force-NFK has already
  // loaded the CRL that does not list it: sarloop-pki publishes the new CRL under the next
  // suffix, which OpenSSL's CRL directory lookup picks up at the next handshake.
  Issue("revoked-psd", kNfkPsd);
  ASSERT_RPC_OK(ListInbox(Fresh("force-NFK", "revoked-psd")));
  ASSERT_TRUE(chain_->Pki(absl::StrCat("revoke ", pki, " revoked-psd")).ok());
  ExpectHandshakeRefused("revoked certificate", "force-NFK", chain_->Tls("revoked-psd"),
                         kCertRevoked);
  // Every other caller still gets through with the new CRL, new connections included.
  ASSERT_RPC_OK(ListInbox(Fresh("force-NFK", "force-NFK-psd")));

  // Certificates that verify but do not carry exactly one URI SAN: the handshake completes (the
  // TLS layer does not look at URI SANs) and PeerIdentity refuses the call.
  Issue("no-uri-psd", kNfkPsd, "--no-uri");
  Issue("two-uri-psd", kNfkPsd, "--extra-uri spiffe://sarloop/force/SFK/psd");
  {
    LogMark mark(*chain_, "force-NFK");
    grpc::Status s = Shown("no URI SAN", ListInbox(Fresh("force-NFK", "no-uri-psd")));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << StatusText(s);
    EXPECT_THAT(s.error_message(), HasSubstr("exactly one URI SAN; it has 0"));
    s = Shown("two URI SANs", ListInbox(Fresh("force-NFK", "two-uri-psd")));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << StatusText(s);
    EXPECT_THAT(s.error_message(), HasSubstr("exactly one URI SAN; it has 2"));
    EXPECT_THAT(mark.Since(), ::testing::Not(HasSubstr("Handshake failed")));
  }

  // Valid certificates of another role: PERMISSION_DENIED naming the caller.
  {
    v1::SubmitSarRequest submit;
    submit.set_request_id(NewId("req-"));
    *submit.mutable_sar() = SampleSar();
    v1::SubmitSarResponse submitted;
    grpc::Status s = Shown("force-NFK-psd calling Ukfiu.SubmitSar",
                           v1::Ukfiu::NewStub(chain_->Channel("ukfiu", "force-NFK-psd"))
                               ->SubmitSar(Context().get(), submit, &submitted));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(s);
    EXPECT_THAT(s.error_message(), HasSubstr(kNfkPsd));
  }
  {
    grpc::Status s = Shown("analyst-alice calling Force.ListInbox",
                           ListInbox(chain_->Channel("force-NFK", "analyst-alice")));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(s);
    EXPECT_THAT(s.error_message(), HasSubstr("spiffe://sarloop/analyst/alice"));
  }
  {
    // The force's service identity is a peer for delivery, not an analyst.
    v1::GetSummaryResponse summary;
    grpc::Status s = Shown("force-NFK (service) calling Nca.GetSummary",
                           v1::Nca::NewStub(chain_->Channel("nca", "force-NFK"))
                               ->GetSummary(Context().get(), v1::GetSummaryRequest(), &summary));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(s);
    EXPECT_THAT(s.error_message(), HasSubstr("spiffe://sarloop/force/NFK"));
  }
  {
    grpc::Status s = Shown("racu-ERSOU-cases calling NFK's Force.ListInbox",
                           ListInbox(chain_->Channel("force-NFK", "racu-ERSOU-cases")));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << StatusText(s);
    EXPECT_THAT(s.error_message(), HasSubstr("spiffe://sarloop/racu/ERSOU/cases"));
  }

  // A server certificate for another host, refused by the client's host name check after the
  // handshake: UNAVAILABLE, and the server logs no failed handshake (it accepted the client).
  // First the real server's certificate (localhost, 127.0.0.1) offered to a client that expects
  // elsewhere.example...
  {
    LogMark mark(*chain_, "force-NFK");
    grpc::Status s = Shown("server certificate for localhost, client expects elsewhere.example",
                           ListInbox(Fresh("force-NFK", "force-NFK-psd", "elsewhere.example")));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(s);
    EXPECT_THAT(s.error_message(), HasSubstr("Hostname Verification Check failed"));
    EXPECT_THAT(mark.Since(), ::testing::Not(HasSubstr("Handshake failed")));
  }
  // ...then a running server given a certificate for elsewhere.example only (reissued in place;
  // it is live within the file watcher's refresh), which a client of localhost refuses while a
  // client expecting elsewhere.example accepts it: it is valid, just for another host.
  Issue("force-SFK", "spiffe://sarloop/force/SFK", "--server --host elsewhere.example");
  ASSERT_TRUE(WaitFor(
      [&] { return ListInbox(Fresh("force-SFK", "force-SFK-psd", "elsewhere.example")).ok(); },
      absl::Seconds(20)))
      << "force-SFK never presented the elsewhere.example certificate";
  LogMark mark(*chain_, "force-SFK");
  grpc::Status s = Shown("server certificate for elsewhere.example, client expects localhost",
                         ListInbox(Fresh("force-SFK", "force-SFK-psd")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << StatusText(s);
  EXPECT_THAT(s.error_message(), HasSubstr("Hostname Verification Check failed"));
  EXPECT_THAT(mark.Since(), ::testing::Not(HasSubstr("Handshake failed")));
}

// One caller's tally.
struct Tally {
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};
  std::mutex mu;
  std::vector<std::string> failures;  // the first few, for the report
  void Add(const std::string& what, const grpc::Status& s) {
    if (s.ok()) {
      ++ok;
      return;
    }
    ++failed;
    std::lock_guard<std::mutex> lock(mu);
    if (failures.size() < 10) failures.push_back(absl::StrCat(what, " ", StatusText(s)));
  }
  int64_t total() const { return ok + failed; }
};

// While clients call continuously (two on long-lived channels, one opening a new channel, hence
// a new handshake, for every call, one submitting and referring SARs so that ukfiu delivers to
// force-NFK and every service to the NCA), the server certificates of force-NFK, nca and ukfiu
// and the client certificates of the callers are rotated. No call fails, the services are not
// restarted, and new handshakes present the new certificates.
TEST_F(CertTest, RotationWithoutRestartOrAFailedCall) {
  const std::string pki = chain_->pki_dir();
  const std::vector<std::string> servers = {"force-NFK", "nca", "ukfiu"};
  const std::vector<std::string> clients = {"force-NFK-psd", "analyst-alice", "ukfiu-intake"};
  // The certificate each server presents to a new connection.
  auto presented = [&](const std::string& instance) {
    const std::string identity = instance == "force-NFK" ? "force-NFK-psd"
                                 : instance == "nca"     ? "analyst-alice"
                                                         : "ukfiu-intake";
    auto ctx = Context();
    grpc::Status s;
    if (instance == "nca") {
      v1::GetSummaryResponse resp;
      s = v1::Nca::NewStub(Fresh(instance, identity))
              ->GetSummary(ctx.get(), v1::GetSummaryRequest(), &resp);
    } else if (instance == "ukfiu") {
      v1::ListReferralsResponse resp;
      s = v1::Ukfiu::NewStub(Fresh(instance, identity))
              ->ListReferrals(ctx.get(), v1::ListReferralsRequest(), &resp);
    } else {
      v1::ListInboxResponse resp;
      s = v1::Force::NewStub(Fresh(instance, identity))
              ->ListInbox(ctx.get(), v1::ListInboxRequest(), &resp);
    }
    return s.ok() ? ServerPem(*ctx) : std::string();
  };
  std::map<std::string, std::string> old_pem;
  for (const std::string& server : servers) {
    old_pem[server] = presented(server);
    ASSERT_EQ(old_pem[server], ReadFile(absl::StrCat(pki, "/", server, "/cert.pem"))) << server;
  }

  std::atomic<bool> stop{false};
  Tally inbox, summary, fresh, referrals;
  std::mutex ids_mu;
  std::vector<std::string> referral_ids;
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    auto force = v1::Force::NewStub(chain_->Channel("force-NFK", "force-NFK-psd"));
    while (!stop) {
      v1::ListInboxResponse resp;
      inbox.Add("ListInbox", force->ListInbox(Context().get(), v1::ListInboxRequest(), &resp));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  threads.emplace_back([&] {
    auto nca = v1::Nca::NewStub(chain_->Channel("nca", "analyst-alice"));
    while (!stop) {
      v1::GetSummaryResponse resp;
      summary.Add("GetSummary", nca->GetSummary(Context().get(), v1::GetSummaryRequest(), &resp));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  threads.emplace_back([&] {
    // Each channel reads the identity files afresh, so this also catches a moment where the
    // files on disk are a mismatched key and certificate.
    for (int i = 0; !stop; ++i) {
      if (i % 2 == 0) {
        fresh.Add("ListInbox on a new channel", ListInbox(Fresh("force-NFK", "force-NFK-psd")));
      } else {
        v1::GetSummaryResponse resp;
        fresh.Add("GetSummary on a new channel",
                  v1::Nca::NewStub(Fresh("nca", "analyst-alice"))
                      ->GetSummary(Context().get(), v1::GetSummaryRequest(), &resp));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  threads.emplace_back([&] {
    auto ukfiu = v1::Ukfiu::NewStub(chain_->Channel("ukfiu", "ukfiu-intake"));
    for (int i = 0; !stop; ++i) {
      v1::SubmitSarRequest submit;
      submit.set_request_id(NewId("req-"));
      *submit.mutable_sar() = SampleSar(absl::StrCat("Rotation Subject ", i));
      v1::SubmitSarResponse sar;
      grpc::Status s = ukfiu->SubmitSar(Context().get(), submit, &sar);
      referrals.Add("SubmitSar", s);
      if (!s.ok()) continue;
      v1::ReferSarRequest refer;
      refer.set_request_id(NewId("req-"));
      refer.set_sar_id(sar.sar().sar_id());
      refer.set_organisation("NFK");
      *refer.mutable_thr() = SampleThr();
      v1::ReferSarResponse referral;
      s = ukfiu->ReferSar(Context().get(), refer, &referral);
      referrals.Add("ReferSar", s);
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(ids_mu);
        referral_ids.push_back(referral.referral().referral_id());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  auto calls = [&] { return inbox.total() + summary.total() + fresh.total() + referrals.total(); };

  // Traffic first, so the rotation happens under established connections.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<std::unique_ptr<LogMark>> marks;
  for (const char* name : {"ukfiu", "nca", "force-NFK", "force-SFK", "force-MPS", "force-BF",
                           "racu-ERSOU", "racu-NCAACU"}) {
    marks.push_back(std::make_unique<LogMark>(*chain_, name));
  }
  const int64_t calls_before = calls();
  const absl::Time rotation_start = absl::Now();
  for (const std::string& name : servers) {
    ASSERT_TRUE(chain_->Pki(absl::StrCat("rotate ", pki, " ", name)).ok()) << name;
  }
  for (const std::string& name : clients) {
    ASSERT_TRUE(chain_->Pki(absl::StrCat("rotate ", pki, " ", name)).ok()) << name;
  }
  // Each server presents its new certificate to new connections once its file watcher has
  // refreshed (common/security/tls.cc: every 5 s); then traffic goes on for two more seconds,
  // long-lived channels included.
  bool all_new = WaitFor(
      [&] {
        for (const std::string& server : servers) {
          const std::string pem = presented(server);
          if (pem != ReadFile(absl::StrCat(pki, "/", server, "/cert.pem"))) return false;
        }
        return true;
      },
      absl::Seconds(20));
  const absl::Duration to_new = absl::Now() - rotation_start;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const int64_t calls_during = calls() - calls_before;
  stop = true;
  for (auto& t : threads) t.join();

  ASSERT_TRUE(all_new) << "a server still presents its old certificate after 20 s";
  for (const std::string& server : servers) {
    const std::string pem = presented(server);
    EXPECT_NE(pem, old_pem[server]) << server;
    EXPECT_EQ(pem, ReadFile(absl::StrCat(pki, "/", server, "/cert.pem"))) << server;
  }
  std::cout << "rotation: new server certificates live after " << to_new << "; " << calls_during
            << " calls during the rotation (" << calls() << " in all: " << inbox.total()
            << " ListInbox, " << summary.total() << " GetSummary on long-lived "
            << "channels, " << fresh.total() << " on new channels, " << referrals.total()
            << " SubmitSar/ReferSar; " << referral_ids.size() << " referrals)" << std::endl;
  for (Tally* t : {&inbox, &summary, &fresh, &referrals}) {
    EXPECT_EQ(t->failed, 0) << ::testing::PrintToString(t->failures);
  }
  EXPECT_GT(inbox.ok, 0);
  EXPECT_GT(summary.ok, 0);
  EXPECT_GT(fresh.ok, 0);
  ASSERT_GT(referral_ids.size(), 0u);

  // Service to service: every referral reaches force-NFK and the NCA register, over connections
  // made with the rotated certificates where they were reconnected.
  auto nfk = v1::Force::NewStub(chain_->Channel("force-NFK", "force-NFK-psd"));
  for (const std::string& id : referral_ids) {
    EXPECT_TRUE(WaitFor([&] {
      v1::GetForceReferralRequest req;
      req.set_referral_id(id);
      v1::GetForceReferralResponse resp;
      return nfk->GetReferral(Context().get(), req, &resp).ok();
    })) << id;
  }
  auto nca = v1::Nca::NewStub(chain_->Channel("nca", "analyst-alice"));
  EXPECT_TRUE(WaitFor([&] {
    v1::ListRegisterRequest req;
    req.set_state(v1::REFERRAL_STATE_RECEIVED);
    req.set_page_size(1000);
    v1::ListRegisterResponse resp;
    return nca->ListRegister(Context().get(), req, &resp).ok() &&
           resp.entries_size() == static_cast<int>(referral_ids.size());
  }));
  // No handshake failed anywhere and no delivery attempt failed during the rotation: the outbox
  // retries, so a failure there would not show as a failed call.
  for (const auto& mark : marks) {
    const std::string log = mark->Since();
    EXPECT_THAT(log, ::testing::Not(HasSubstr("Handshake failed"))) << log;
    EXPECT_THAT(DeliveryFailures(log), ::testing::IsEmpty());
  }

  // ukfiu presents its new certificate as a client too. Its previous certificate is revoked
  // (sarloop-pki revoke --previous) and refused by force-SFK, yet ukfiu's first delivery to
  // force-SFK, over a connection it never opened before and so a new handshake, goes through.
  auto ops = v1::Ops::NewStub(chain_->Channel("ukfiu", "ukfiu-intake"));
  v1::GetBacklogResponse backlog;
  ASSERT_RPC_OK(ops->GetBacklog(Context().get(), v1::GetBacklogRequest(), &backlog));
  for (const auto& d : backlog.destinations()) {
    if (d.destination() == "SFK") {
      ASSERT_EQ(d.delivered() + d.pending(), 0) << "ukfiu already had a connection to force-SFK";
    }
  }
  std::string previous;  // the version directory sarloop-pki kept for the replaced certificate
  for (const auto& entry : std::filesystem::directory_iterator(pki + "/ukfiu")) {
    if (absl::StartsWith(entry.path().filename().string(), "..v") &&
        ReadFile(entry.path().string() + "/cert.pem") == old_pem["ukfiu"]) {
      previous = entry.path().string();
    }
  }
  ASSERT_FALSE(previous.empty()) << "no version directory holds ukfiu's previous certificate";
  ASSERT_TRUE(chain_->Pki(absl::StrCat("revoke ", pki, " ukfiu --previous")).ok());
  v1::TlsConfig old_ukfiu = chain_->Tls("ukfiu");
  old_ukfiu.set_cert_file(previous + "/cert.pem");
  old_ukfiu.set_key_file(previous + "/key.pem");
  ExpectHandshakeRefused("ukfiu's previous, revoked certificate", "force-SFK", old_ukfiu,
                         kCertRevoked);
  const std::string to_sfk = [&] {
    auto ukfiu = v1::Ukfiu::NewStub(chain_->Channel("ukfiu", "ukfiu-intake"));
    v1::SubmitSarRequest submit;
    submit.set_request_id(NewId("req-"));
    *submit.mutable_sar() = SampleSar("Suffolk Subject");
    v1::SubmitSarResponse sar;
    EXPECT_TRUE(ukfiu->SubmitSar(Context().get(), submit, &sar).ok());
    v1::ReferSarRequest refer;
    refer.set_request_id(NewId("req-"));
    refer.set_sar_id(sar.sar().sar_id());
    refer.set_organisation("SFK");
    *refer.mutable_thr() = SampleThr();
    v1::ReferSarResponse referral;
    EXPECT_TRUE(ukfiu->ReferSar(Context().get(), refer, &referral).ok());
    return referral.referral().referral_id();
  }();
  auto sfk = v1::Force::NewStub(chain_->Channel("force-SFK", "force-SFK-psd"));
  EXPECT_TRUE(WaitFor([&] {
    v1::GetForceReferralRequest req;
    req.set_referral_id(to_sfk);
    v1::GetForceReferralResponse resp;
    return sfk->GetReferral(Context().get(), req, &resp).ok();
  })) << "ukfiu's delivery to force-SFK did not arrive";
}

// A certificate the chain's own CA signed, carrying exactly the one URI SAN `uri` as given (made
// with the openssl CLI, not sarloop-pki, which refuses to issue anything but canonical IDs).
v1::TlsConfig SignedFor(const LocalChain& chain, const std::string& name, const std::string& uri) {
  const std::string dir = absl::StrCat(chain.dir(), "/forged-", name);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/ext.cnf") << "subjectAltName=URI:" << uri
                                  << "\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n";
  const std::string ca = chain.pki_dir() + "/ca";
  const std::string cmd = absl::StrCat(
      "cd '", dir, "' && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ",
      "-keyout key.pem -subj /CN=forged -out req.csr 2>/dev/null && openssl x509 -req -in req.csr ",
      "-CA '", ca, "/ca.pem' -CAkey '", ca, "/ca.key' -set_serial 0x", NewId("", 16),
      " -days 1 -extfile ext.cnf -out cert.pem 2>/dev/null");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  v1::TlsConfig tls;
  tls.set_cert_file(dir + "/cert.pem");
  tls.set_key_file(dir + "/key.pem");
  tls.set_ca_file(ca + "/ca.pem");
  return tls;
}

// Only a SPIFFE ID in canonical form is an identity: a certificate the CA signed for
// spiffe://sarloop/ukfiu/.. (or any other spelling the SPIFFE spec does not allow) is refused as
// no identity at all, never taken for UKFIU's intake. The same procedure with a canonical ID is
// let in, so the refusals are the IDs', not the certificates'.
TEST_F(CertTest, ANonCanonicalSpiffeIdIsNoIdentity) {
  auto list = [&](const v1::TlsConfig& tls) {
    v1::ListReferralsResponse resp;
    return v1::Ukfiu::NewStub(chain_->Channel("ukfiu", tls, grpc::ChannelArguments()))
        ->ListReferrals(Context().get(), v1::ListReferralsRequest(), &resp);
  };
  ASSERT_RPC_OK(list(SignedFor(*chain_, "canonical", "spiffe://sarloop/ukfiu/intake")));
  const char* forged[] = {
      "spiffe://sarloop/ukfiu/..",       "spiffe://sarloop/ukfiu/.",
      "spiffe://sarloop/ukfiu/",         "spiffe://sarloop//ukfiu",
      "spiffe://sarloop/ukfiu/%2e%2e",   "spiffe://sarloop/force/../ukfiu",
      "spiffe://sarloop/ukfiu/intake/",  "spiffe://SARLOOP/ukfiu/intake",
      "spiffe://sarloop/ukfiu/./intake", "spiffe://sarloop/ukfiu/in%74ake",
  };
  int n = 0;
  for (const char* uri : forged) {
    grpc::Status s = Shown(uri, list(SignedFor(*chain_, absl::StrCat("f", n++), uri)));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << uri << ": " << StatusText(s);
    EXPECT_THAT(s.error_message(), HasSubstr("canonical")) << uri;
  }
}

// Appends `line` to `instance`'s configuration and restarts it, so it runs with that setting.
void Reconfigure(LocalChain& chain, const std::string& instance, const std::string& line) {
  ASSERT_TRUE(chain.Stop(instance).ok());
  {
    std::ofstream conf(absl::StrCat(chain.dir(), "/config/", instance, ".textproto"),
                       std::ios::app);
    conf << line << "\n";
  }
  absl::Status started = chain.Start(instance);
  ASSERT_TRUE(started.ok()) << started;
}

// Replaces `path` in one step, as an operator's editor or configuration tool does.
void WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, path);
}

// TLS checks a certificate only at its handshake, so a connection opened before a revocation
// would be honoured for as long as it lasts: the server recycles connections after
// connection_max_age_seconds (plus a grace as long), and the revoked certificate's next
// handshake is refused. Here the age is 2 s; with the default ten minutes the same channel
// would keep working for the whole test, which is what the final check would catch.
TEST_F(CertTest, ARevokedCertificateStopsWorkingWhenItsConnectionIsRecycled) {
  Reconfigure(*chain_, "force-NFK", "connection_max_age_seconds: 2");
  Issue("recycled-psd", kNfkPsd);
  std::shared_ptr<grpc::Channel> channel = Fresh("force-NFK", "recycled-psd");
  ASSERT_RPC_OK(ListInbox(channel));
  ASSERT_TRUE(chain_->Pki(absl::StrCat("revoke ", chain_->pki_dir(), " recycled-psd")).ok());
  LogMark mark(*chain_, "force-NFK");
  const absl::Time revoked = absl::Now();
  grpc::Status last;
  const bool refused = WaitFor(
      [&] {
        last = ListInbox(channel);
        return last.error_code() == grpc::StatusCode::UNAVAILABLE;
      },
      absl::Seconds(60));
  std::cout << "the revoked certificate's channel was refused "
            << absl::ToDoubleSeconds(absl::Now() - revoked)
            << " s after the revocation: " << StatusText(last) << std::endl;
  EXPECT_TRUE(refused) << "the connection opened before the revocation still works: "
                       << StatusText(last);
  EXPECT_TRUE(mark.Logged(VerifyFailure(kCertRevoked))) << mark.Since();
  // Recycling ends connections, not service: a valid certificate's channel goes on working.
  std::shared_ptr<grpc::Channel> valid = Fresh("force-NFK", "force-NFK-psd");
  ASSERT_RPC_OK(ListInbox(valid));
  absl::SleepFor(absl::Seconds(5));  // past one age and grace: the connection was recycled
  EXPECT_RPC_OK(ListInbox(valid));
}

// The policy file is read again within a second of a change: a rule taken out refuses its callers
// from then on, put back it admits them again, and a file that does not parse leaves the policy
// in force as it was. No restart in between.
TEST_F(CertTest, AnEditedPolicyTakesHoldWithoutARestart) {
  const std::string policy = chain_->dir() + "/policy.textproto";
  WriteAtomically(policy, Policy::BuiltInText());
  Reconfigure(*chain_, "nca", absl::StrCat("authz_policy_file: \"", policy, "\""));
  auto summary = [&] {
    v1::GetSummaryResponse resp;
    return v1::Nca::NewStub(chain_->Channel("nca", "analyst-alice"))
        ->GetSummary(Context("alice").get(), v1::GetSummaryRequest(), &resp);
  };
  ASSERT_RPC_OK(summary());

  // Without the analysts' rule.
  const std::string full = Policy::BuiltInText();
  const size_t rule = full.find("description: \"NCA analysts query the register\"");
  ASSERT_NE(rule, std::string::npos);
  const size_t begin = full.rfind("rules {", rule);
  const size_t end = full.find("}\n", rule) + 2;
  const std::string without = full.substr(0, begin) + full.substr(end);
  const absl::Time edited = absl::Now();
  WriteAtomically(policy, without);
  grpc::Status s;
  EXPECT_TRUE(WaitFor(
      [&] {
        s = summary();
        return s.error_code() == grpc::StatusCode::PERMISSION_DENIED;
      },
      absl::Seconds(10)))
      << "the analysts' rule was taken out but the call still gets " << StatusText(s);
  std::cout << "a rule taken out took hold " << absl::ToDoubleSeconds(absl::Now() - edited)
            << " s after the edit" << std::endl;

  // A file that does not parse: the policy in force stays (still refusing), and it is logged.
  LogMark mark(*chain_, "nca");
  WriteAtomically(policy, "rules { this is not a policy");
  // The file is looked at again as calls come in, at most once a second.
  EXPECT_TRUE(WaitFor(
      [&] {
        EXPECT_EQ(summary().error_code(), grpc::StatusCode::PERMISSION_DENIED);
        return absl::StrContains(mark.Since(), "not reloaded, keeping the previous one");
      },
      absl::Seconds(10)))
      << "a policy that does not parse was not reported in the log:\n"
      << mark.Since();

  // The rule put back.
  WriteAtomically(policy, full);
  EXPECT_TRUE(WaitFor([&] { return summary().ok(); }, absl::Seconds(10)))
      << "the analysts' rule was put back but the call is still refused";
}

}  // namespace
}  // namespace sarloop
