// Helpers shared by the tests: status matchers, a temporary directory, and sample messages.
#ifndef SARLOOP_TESTS_TESTUTIL_TESTUTIL_H_
#define SARLOOP_TESTS_TESTUTIL_TESTUTIL_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/crypto.h"
#include "common/base/status.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop::testing {

// EXPECT_THAT(status, IsOk()); works for Status and StatusOr.
MATCHER(IsOk, "is OK") {
  if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
    *result_listener << arg.ToString();
    return arg.ok();
  } else {
    *result_listener << arg.status().ToString();
    return arg.ok();
  }
}

// EXPECT_THAT(status_or, IsOkAndHolds(value_matcher)).
MATCHER_P(IsOkAndHolds, value_matcher, "") {
  if (!arg.ok()) {
    *result_listener << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

// EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("thr.risk")));
MATCHER_P2(StatusIs, code, message_matcher, "") {
  absl::Status s;
  if constexpr (std::is_same_v<std::decay_t<arg_type>, absl::Status>) {
    s = arg;
  } else {
    s = arg.status();
  }
  *result_listener << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                            \
  auto SARLOOP_CONCAT_(statusor_, __LINE__) = (expr);              \
  ASSERT_TRUE(SARLOOP_CONCAT_(statusor_, __LINE__).ok())           \
      << SARLOOP_CONCAT_(statusor_, __LINE__).status().ToString(); \
  lhs = std::move(SARLOOP_CONCAT_(statusor_, __LINE__)).value()

// A fresh directory removed when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A keyring with one fixed key, for databases in tests.
std::shared_ptr<const Keyring> TestKeys();

// Valid samples that tests change one field of.
v1::ThrAssessment SampleThr();
v1::Outcome SampleOutcome(v1::OutcomeType type);
v1::Sar SampleSar(const std::string& subject_name = "Jane Example");

// Polls `done` every 10 ms for up to 10 s; its last answer.
bool Eventually(const std::function<bool()>& done);

}  // namespace sarloop::testing

#endif  // SARLOOP_TESTS_TESTUTIL_TESTUTIL_H_
