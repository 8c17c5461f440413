#include "tests/testutil/testutil.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "common/base/ids.h"
#include "common/referral/outcomes.h"

namespace sarloop::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sarloop-test-XXXXXX").string();
  char* made = ::mkdtemp(tmpl.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::shared_ptr<const Keyring> TestKeys() {
  static const std::shared_ptr<const Keyring> keys =
      Keyring::FromKeys({std::string(Keyring::kKeySize, 'k')}).value();
  return keys;
}

v1::ThrAssessment SampleThr() {
  v1::ThrAssessment thr;
  thr.set_threat(v1::THR_LEVEL_HIGH);
  thr.set_risk(v1::THR_LEVEL_MEDIUM);
  thr.set_harm(v1::THR_LEVEL_LOW);
  thr.set_rationale("Cash deposits inconsistent with salary; the officer has PNC access.");
  return thr;
}

v1::Outcome SampleOutcome(v1::OutcomeType type) {
  v1::Outcome o;
  o.set_type(type);
  if (type == v1::OUTCOME_TYPE_MISCONDUCT_MEETING || type == v1::OUTCOME_TYPE_MISCONDUCT_HEARING) {
    o.set_finding(v1::CONDUCT_FINDING_MISCONDUCT);
    o.set_misconduct_result(v1::MISCONDUCT_RESULT_FINAL_WRITTEN_WARNING);
  }
  if (type == v1::OUTCOME_TYPE_ACCELERATED_HEARING) {
    o.set_finding(v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
    o.set_misconduct_result(v1::MISCONDUCT_RESULT_DISMISSAL_WITHOUT_NOTICE);
  }
  if (type == v1::OUTCOME_TYPE_CASE_TO_ANSWER) o.set_finding(v1::CONDUCT_FINDING_GROSS_MISCONDUCT);
  o.set_category(v1::CORRUPTION_CATEGORY_THEFT_AND_FRAUD);
  // A person the outcome can befall.
  o.set_subject_role(type == v1::OUTCOME_TYPE_STAFF_MISCONDUCT_PROCEDURE ? v1::SUBJECT_ROLE_STAFF
                     : type == v1::OUTCOME_TYPE_CONTRACT_ENDED ? v1::SUBJECT_ROLE_CONTRACTOR
                                                               : v1::SUBJECT_ROLE_OFFICER);
  *o.mutable_opened_at() = ToProto(absl::FromUnixSeconds(1690000000));
  // An open outcome (charged, a case to answer) has not closed.
  if (!IsOpenOutcome(type)) *o.mutable_closed_at() = ToProto(absl::FromUnixSeconds(1699000000));
  o.set_learning_summary("Financial vulnerability not declared at vetting renewal.");
  return o;
}

v1::Sar SampleSar(const std::string& subject_name) {
  v1::Sar sar;
  sar.set_reporter_sector("bank");
  sar.set_reporter_reference("CASE-1");
  sar.set_narrative("Structured cash deposits below reporting thresholds.");
  sar.set_amount_pence(1250000);
  v1::Subject* s = sar.add_subjects();
  s->set_full_name(subject_name);
  s->set_date_of_birth("1985-04-12");
  s->set_address("1 High Street, Norwich");
  s->set_role(v1::SUBJECT_ROLE_OFFICER);
  s->set_employer_code("NFK");
  return sar;
}

bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace sarloop::testing
