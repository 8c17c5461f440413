// sarloop-synth-persons: synthetic people for the indirect-links screen, as CSV files a force
// and UKFIU would feed to `sarloopctl linkage upload` and `sarloopctl linkage screen`, with the
// generator's truth beside them (tools/synth/persons.h states the error model).
//
//   sarloop-synth-persons --out DIR [--index N] [--subjects M] [--same-person-rate R] [--seed S]
//
// Writes DIR/personnel.csv (record_id,...), DIR/subjects.csv (subject_ref,...) and
// DIR/truth.csv (subject_ref,relation,record_id,errors).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/linkage/linkage_csv.h"
#include "common/version/version.h"
#include "tools/synth/persons.h"

namespace {

const char* RelationName(sarloop::synth::Relation r) {
  switch (r) {
    case sarloop::synth::Relation::kSamePerson:
      return "same_person";
    case sarloop::synth::Relation::kCoResident:
      return "co_resident";
    case sarloop::synth::Relation::kHardNegative:
      return "hard_negative";
    default:
      return "none";
  }
}

bool Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "sarloop-synth-persons: cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sarloop;
  if (PrintVersionOrHelp(argc, argv, "sarloop-synth-persons",
                         "usage: sarloop-synth-persons --out DIR [--index N] [--subjects M] "
                         "[--same-person-rate R] [--seed S]\n\nWrites a personnel index and SAR "
                         "subjects with the stated error model (CSV) and the truth of which "
                         "pairs are one person.\n")) {
    return 0;
  }
  // What one machine holds in memory: the population is built whole before it is written.
  constexpr size_t kMostPeople = 5'000'000;
  synth::PopulationParams params;
  params.index_size = 1000;
  params.subjects = 2000;
  std::string out_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    bool ok = v != nullptr;
    if (a == "--out" && v) {
      out_dir = v;
    } else if (a == "--index" && v) {
      ok = absl::SimpleAtoi(v, &params.index_size) && params.index_size >= 1 &&
           params.index_size <= kMostPeople;
    } else if (a == "--subjects" && v) {
      ok = absl::SimpleAtoi(v, &params.subjects) && params.subjects >= 1 &&
           params.subjects <= kMostPeople;
    } else if (a == "--same-person-rate" && v) {
      ok = absl::SimpleAtod(v, &params.same_person_rate) && params.same_person_rate >= 0 &&
           params.same_person_rate <= 0.9;
    } else if (a == "--seed" && v) {
      ok = absl::SimpleAtoi(v, &params.seed);
    } else {
      std::cerr << "usage: sarloop-synth-persons --out DIR [--index N] [--subjects M] "
                   "[--same-person-rate R] [--seed S]\n"
                   "  (N and M: 1 to "
                << kMostPeople << ")\n";
      return 2;
    }
    if (!ok) {
      std::cerr << "sarloop-synth-persons: " << a << ": bad value '" << (v ? v : "") << "'"
                << (a == "--index" || a == "--subjects"
                        ? absl::StrCat(" (a whole number, 1 to ", kMostPeople, ")")
                        : "")
                << "\n";
      return 2;
    }
    ++i;
  }
  if (out_dir.empty()) {
    std::cerr << "sarloop-synth-persons: --out DIR is required\n";
    return 2;
  }
  const synth::Population pop = synth::Generate(params);
  std::vector<linkage::PersonRow> index, subjects;
  for (const auto& p : pop.index) index.push_back({p.record_id, p.fields});
  std::string truth = "subject_ref,relation,record_id,errors\n";
  for (const auto& s : pop.subjects) {
    subjects.push_back({s.subject_ref, s.fields});
    absl::StrAppend(&truth, s.subject_ref, ",", RelationName(s.relation), ",",
                    s.index_position == UINT32_MAX ? "" : pop.index[s.index_position].record_id,
                    ",\"", absl::StrJoin(s.errors, ";"), "\"\n");
  }
  if (!Write(out_dir + "/personnel.csv", linkage::PeopleCsv(index, "record_id")) ||
      !Write(out_dir + "/subjects.csv", linkage::PeopleCsv(subjects, "subject_ref")) ||
      !Write(out_dir + "/truth.csv", truth)) {
    return 1;
  }
  std::cout << "wrote " << index.size() << " personnel records and " << subjects.size()
            << " subjects to " << out_dir
            << "\nerror model: " << synth::DescribeErrorModel(params.errors) << "\n";
  return 0;
}
