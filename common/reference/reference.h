// Reference data: the organisations and regions of common/reference/*.csv, built into every
// binary (or read from a directory given in the configuration).
#ifndef SARLOOP_COMMON_REFERENCE_REFERENCE_H_
#define SARLOOP_COMMON_REFERENCE_REFERENCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sarloop/v1/types.pb.h"

namespace sarloop {

struct Region {
  std::string code;
  std::string name;
  std::string rocu;  // empty for London
};

class ReferenceData {
 public:
  // The copy built into the binary.
  static const ReferenceData& BuiltIn();
  // Parses CSV text in the organisations.csv and regions.csv formats. INVALID_ARGUMENT naming the
  // line when a row is malformed or refers to an unknown region.
  static absl::StatusOr<ReferenceData> Parse(const std::string& organisations_csv,
                                             const std::string& regions_csv);
  // Reads DIR/organisations.csv and DIR/regions.csv.
  static absl::StatusOr<ReferenceData> Load(const std::string& dir);

  // nullptr when unknown. Codes are matched exactly (upper case).
  const v1::Organisation* FindOrganisation(const std::string& code) const;
  const Region* FindRegion(const std::string& code) const;
  const std::vector<v1::Organisation>& organisations() const { return organisations_; }
  const std::vector<Region>& regions() const { return regions_; }
  // Whether `code` is an anti-corruption unit a force can hand a referral over to: a region's
  // ROCU, or the NCA's own Anti-Corruption Unit (NCAACU), which serves the national agencies.
  bool IsUnit(const std::string& code) const;

 private:
  std::vector<v1::Organisation> organisations_;
  std::vector<Region> regions_;
  std::map<std::string, size_t> org_index_;
  std::map<std::string, size_t> region_index_;
};

}  // namespace sarloop

#endif  // SARLOOP_COMMON_REFERENCE_REFERENCE_H_
