// The client library's calls without a network: which failures are made again, for how long,
// and what each attempt's context carries. Its channel against a real service is in
// running_service_test.cc.
#include "common/client/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "absl/time/clock.h"
#include "tests/testutil/testutil.h"

namespace sarloop {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A call that answers from `answers` in turn and keeps each attempt's context deadline.
struct Scripted {
  explicit Scripted(std::vector<grpc::StatusCode> a) : answers(std::move(a)) {}

  std::vector<grpc::StatusCode> answers;
  std::vector<std::chrono::system_clock::time_point> deadlines;

  std::function<grpc::Status(grpc::ClientContext*)> Fn() {
    return [this](grpc::ClientContext* context) {
      deadlines.push_back(context->deadline());
      const grpc::StatusCode code = answers.at(deadlines.size() - 1);
      return code == grpc::StatusCode::OK ? grpc::Status::OK : grpc::Status(code, "scripted");
    };
  }
};

TEST(ClientCall, MakesATransientFailureAgainUntilItSucceeds) {
  Scripted call({grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::RESOURCE_EXHAUSTED,
                 grpc::StatusCode::DEADLINE_EXCEEDED, grpc::StatusCode::ABORTED,
                 grpc::StatusCode::OK});
  const grpc::Status status = client::CallWithRetry({.user = "jo"}, absl::Minutes(1), call.Fn());
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(call.deadlines.size(), 5u);
}

TEST(ClientCall, GivesAnAnswerThatIsNotTransientAtOnce) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::PERMISSION_DENIED,
        grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::NOT_FOUND,
        grpc::StatusCode::UNAUTHENTICATED}) {
    Scripted call({code, grpc::StatusCode::OK});
    const grpc::Status status = client::CallWithRetry({}, absl::Minutes(1), call.Fn());
    EXPECT_EQ(status.error_code(), code);
    EXPECT_EQ(call.deadlines.size(), 1u) << code;
  }
}

TEST(ClientCall, MakesTheNamedCodeAgainToo) {
  // NOT_FOUND while a delivery is on its way: worth asking again only where the caller says so.
  Scripted call({grpc::StatusCode::NOT_FOUND, grpc::StatusCode::UNAVAILABLE,
                 grpc::StatusCode::NOT_FOUND, grpc::StatusCode::OK});
  const grpc::Status status =
      client::CallWithRetry({}, absl::Minutes(1), call.Fn(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(call.deadlines.size(), 4u);
}

TEST(ClientCall, GivesUpWithTheLastAnswerWhenPatienceHasRunOut) {
  Scripted call({grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::OK});
  const grpc::Status status = client::CallWithRetry({}, absl::ZeroDuration(), call.Fn());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "scripted");
  EXPECT_EQ(call.deadlines.size(), 1u);
}

TEST(ClientCall, EachAttemptHasAFreshDeadlineCountedFromItsStart) {
  Scripted call({grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::OK});
  const auto before = std::chrono::system_clock::now();
  client::CallOptions options;
  options.deadline = absl::Seconds(7);
  ASSERT_TRUE(client::CallWithRetry(options, absl::Minutes(1), call.Fn()).ok());
  const auto after = std::chrono::system_clock::now();
  ASSERT_EQ(call.deadlines.size(), 2u);
  // The second attempt follows a backoff, so its deadline is later than the first's.
  EXPECT_LT(call.deadlines[0], call.deadlines[1]);
  for (const auto& deadline : call.deadlines) {
    EXPECT_GE(deadline, before + std::chrono::seconds(7) - std::chrono::milliseconds(1));
    EXPECT_LE(deadline, after + std::chrono::seconds(7) + std::chrono::milliseconds(1));
  }
}

TEST(ClientCall, AWatchHasNoDeadline) {
  grpc::ClientContext context;
  client::Prepare(&context, {.deadline = absl::InfiniteDuration(), .user = "jo"});
  EXPECT_EQ(context.deadline(), std::chrono::system_clock::time_point::max());
}

TEST(ClientCall, OnlyUnavailableSlowBusyAndAbortedAreTransient) {
  std::vector<grpc::StatusCode> transient;
  for (int code = 0; code <= 16; ++code) {
    if (client::Transient(static_cast<grpc::StatusCode>(code))) {
      transient.push_back(static_cast<grpc::StatusCode>(code));
    }
  }
  EXPECT_THAT(transient,
              ElementsAre(grpc::StatusCode::DEADLINE_EXCEEDED, grpc::StatusCode::RESOURCE_EXHAUSTED,
                          grpc::StatusCode::ABORTED, grpc::StatusCode::UNAVAILABLE));
}

TEST(ClientChannel, AnIdentityIsTheThreeFilesSarloopPkiWrites) {
  const v1::TlsConfig tls = client::IdentityFiles("/etc/sarloop/pki/force-NFK-psd");
  EXPECT_EQ(tls.cert_file(), "/etc/sarloop/pki/force-NFK-psd/cert.pem");
  EXPECT_EQ(tls.key_file(), "/etc/sarloop/pki/force-NFK-psd/key.pem");
  EXPECT_EQ(tls.ca_file(), "/etc/sarloop/pki/force-NFK-psd/ca.pem");
}

TEST(ClientChannel, AMissingFileIsNamed) {
  testing::TempDir dir;
  EXPECT_THAT(client::OpenChannel("localhost:1", client::IdentityFiles(dir.File("nobody"))),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tls.cert_file")));
}

}  // namespace
}  // namespace sarloop
