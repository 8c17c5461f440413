#include "common/reference/reference.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/status.h"

namespace sarloop {
namespace internal {
extern const char kOrganisationsCsv[];
extern const char kRegionsCsv[];
}  // namespace internal

namespace {

// Rows of a simple CSV (no quoted commas: the reference files have none), header skipped.
std::vector<std::vector<std::string>> Rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripSuffix(line, "\r");
    if (line.empty()) continue;
    if (header) {
      header = false;
      continue;
    }
    rows.push_back(absl::StrSplit(line, ','));
  }
  return rows;
}

absl::StatusOr<v1::OrganisationKind> KindOf(const std::string& s) {
  v1::OrganisationKind kind;
  if (!v1::OrganisationKind_Parse(absl::StrCat("ORGANISATION_KIND_", s), &kind)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown organisation kind '", s, "'"));
  }
  return kind;
}

}  // namespace

const ReferenceData& ReferenceData::BuiltIn() {
  static const ReferenceData* data = [] {
    auto parsed = Parse(internal::kOrganisationsCsv, internal::kRegionsCsv);
    // The built-in copy is checked by a unit test; failing here means a broken build.
    if (!parsed.ok()) std::abort();
    return new ReferenceData(std::move(*parsed));
  }();
  return *data;
}

absl::StatusOr<ReferenceData> ReferenceData::Parse(const std::string& organisations_csv,
                                                   const std::string& regions_csv) {
  ReferenceData data;
  int line = 1;
  for (auto& r : Rows(regions_csv)) {
    ++line;
    if (r.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat("regions.csv line ", line, ": 3 columns"));
    }
    data.region_index_[r[0]] = data.regions_.size();
    data.regions_.push_back(Region{r[0], r[1], r[2]});
  }
  line = 1;
  for (auto& r : Rows(organisations_csv)) {
    ++line;
    if (r.size() != 6) {
      return absl::InvalidArgumentError(
          absl::StrCat("organisations.csv line ", line, ": 6 columns expected"));
    }
    v1::Organisation org;
    org.set_code(r[0]);
    org.set_name(r[1]);
    auto kind = KindOf(r[2]);
    if (!kind.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("organisations.csv line ", line, ": ", kind.status().message()));
    }
    org.set_kind(*kind);
    if (!r[3].empty() && !data.region_index_.count(r[3])) {
      return absl::InvalidArgumentError(
          absl::StrCat("organisations.csv line ", line, ": unknown region ", r[3]));
    }
    org.set_region(r[3]);
    org.set_rocu(r[4]);
    data.org_index_[org.code()] = data.organisations_.size();
    data.organisations_.push_back(std::move(org));
  }
  return data;
}

absl::StatusOr<ReferenceData> ReferenceData::Load(const std::string& dir) {
  auto read = [](const std::string& path) -> absl::StatusOr<std::string> {
    std::ifstream in(path);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  ASSIGN_OR_RETURN(std::string orgs, read(dir + "/organisations.csv"));
  ASSIGN_OR_RETURN(std::string regions, read(dir + "/regions.csv"));
  return Parse(orgs, regions);
}

const v1::Organisation* ReferenceData::FindOrganisation(const std::string& code) const {
  auto it = org_index_.find(code);
  return it == org_index_.end() ? nullptr : &organisations_[it->second];
}

const Region* ReferenceData::FindRegion(const std::string& code) const {
  auto it = region_index_.find(code);
  return it == region_index_.end() ? nullptr : &regions_[it->second];
}

bool ReferenceData::IsUnit(const std::string& code) const {
  if (code == "NCAACU") return true;
  for (const Region& r : regions_) {
    if (!r.rocu.empty() && r.rocu == code) return true;
  }
  return false;
}

}  // namespace sarloop
