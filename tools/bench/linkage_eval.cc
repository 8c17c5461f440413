// sarloop-linkage-eval: the indirect-links screen measured in one run (issue 9, items 3 to 5).
//
//   sarloop-linkage-eval [--index N] [--subjects M] [--threads T] [--seed S]
//                        [--bulk-threshold X] [--tables L] [--bits B] [--kernel-queries Q]
//                        [--screen-queries Q] [--attack-records N] [--no-attacks]
//
// 1. Generates N personnel index records and M SAR subjects with the stated error model
//    (tools/synth/persons.h) and encodes both sides with the shipped hardening, and the index
//    again without it for the privacy comparison.
// 2. Kernel: comparisons per second per core of every kernel this CPU supports, beside the
//    reference (a plain 4-accumulator popcount loop over row-major filters) in the same run,
//    both streaming over the whole index and over cache-sized tiles. Every kernel's hits are
//    checked against the reference's on the same data; a difference fails the run (exit 1).
// 3. Screen on arrival: one subject against the whole index (exact, popcount-pruned) at a time.
// 4. End to end: every subject against every index record with LSH blocking and popcount
//    pruning on T threads, then blocking recall, precision and recall against the generator's
//    truth at a sweep of thresholds, recall by error, family and co-resident links.
// 5. Privacy: the frequency and pattern-mining attacks on the index's name fields, hardened
//    and unhardened.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <stdexcept>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/linkage_encoding.h"
#include "common/version/version.h"
#include "services/linkage/kernel.h"
#include "services/linkage/matcher.h"
#include "tools/bench/linkage_attacks.h"
#include "tools/synth/persons.h"

namespace sarloop::bench {
namespace {

using linkage::Filter;
using linkage::Hit;
using linkage::Kernel;
using Clock = std::chrono::steady_clock;

struct Flags {
  size_t index = 350000;
  size_t subjects = 1000000;
  int threads = 2;
  uint64_t seed = 20261127;
  double bulk_threshold = 0.70;
  int tables = 48;
  int bits = 12;
  size_t kernel_queries = 200;
  size_t screen_queries = 5000;
  size_t attack_records = 0;  // 0: the whole index
  bool attacks = true;
};

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

long PeakRssMib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    bool ok = true;
    if (a == "--no-attacks") {
      f->attacks = false;
      continue;
    } else if (a == "--index") {
      ok = absl::SimpleAtoi(v, &f->index) && f->index >= 100;
    } else if (a == "--subjects") {
      ok = absl::SimpleAtoi(v, &f->subjects) && f->subjects >= 100;
    } else if (a == "--threads") {
      ok = absl::SimpleAtoi(v, &f->threads) && f->threads >= 1 && f->threads <= 64;
    } else if (a == "--seed") {
      ok = absl::SimpleAtoi(v, &f->seed);
    } else if (a == "--bulk-threshold") {
      ok = absl::SimpleAtod(v, &f->bulk_threshold) && f->bulk_threshold > 0 &&
           f->bulk_threshold <= 1;
    } else if (a == "--tables") {
      ok = absl::SimpleAtoi(v, &f->tables) && f->tables >= 1 && f->tables <= 200;
    } else if (a == "--bits") {
      ok = absl::SimpleAtoi(v, &f->bits) && f->bits >= 1 && f->bits <= 20;
    } else if (a == "--kernel-queries") {
      ok = absl::SimpleAtoi(v, &f->kernel_queries) && f->kernel_queries >= 1;
    } else if (a == "--screen-queries") {
      ok = absl::SimpleAtoi(v, &f->screen_queries) && f->screen_queries >= 1;
    } else if (a == "--attack-records") {
      ok = absl::SimpleAtoi(v, &f->attack_records);
    } else {
      std::fprintf(stderr, "sarloop-linkage-eval: unknown flag %s (see the file's header)\n",
                   a.c_str());
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "sarloop-linkage-eval: %s: bad value '%s'\n", a.c_str(), v);
      return false;
    }
    ++i;
  }
  return true;
}

// Encodes people on `threads` threads, one encoder each.
template <typename Person, typename Fields>
std::vector<Filter> EncodeAll(const linkage::Encoder& proto, const std::vector<Person>& people,
                              Fields fields, int threads) {
  std::vector<Filter> out(people.size());
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      linkage::Encoder e = proto.Clone();
      for (size_t i = t; i < people.size(); i += threads) {
        absl::StatusOr<Filter> f = e.Encode(fields(people[i]));
        if (!f.ok()) {
          std::fprintf(stderr, "encode: %s\n", std::string(f.status().message()).c_str());
          std::exit(1);
        }
        out[i] = *f;
      }
    });
  }
  for (auto& th : pool) th.join();
  return out;
}

// Per-field popcounts, one array per field, padded with empty slots.
struct FieldPops {
  std::vector<uint32_t> field[linkage::kFieldCount];
  FieldPops(const std::vector<Filter>& filters, size_t slots) {
    for (int f = 0; f < linkage::kFieldCount; ++f) {
      field[f].reserve(slots);
      for (const Filter& x : filters) {
        field[f].push_back(linkage::Popcount(x, static_cast<linkage::Field>(f)));
      }
      field[f].resize(std::max(slots, filters.size()), 0);
    }
  }
  linkage::SlotPopcounts Slots(size_t first = 0) const {
    return {{field[0].data() + first, field[1].data() + first, field[2].data() + first}};
  }
  void Of(size_t i, uint32_t out[linkage::kFieldCount]) const {
    for (int f = 0; f < linkage::kFieldCount; ++f) out[f] = field[f][i];
  }
};

std::vector<linkage::Query> Queries(const std::vector<Filter>& filters) {
  std::vector<linkage::Query> out;
  out.reserve(filters.size());
  for (const Filter& f : filters) out.push_back(linkage::Query::From(f));
  return out;
}

// The rule's score for a pair, computed from the filters.
double PairScore(const Filter& a, const Filter& b) {
  const linkage::Query qa = linkage::Query::From(a), qb = linkage::Query::From(b);
  uint32_t c[linkage::kFieldCount];
  for (int f = 0; f < linkage::kFieldCount; ++f) {
    const linkage::FieldSpan s = linkage::SpanOf(static_cast<linkage::Field>(f));
    c[f] = 0;
    for (int w = s.first_word; w < s.first_word + s.words; ++w)
      c[f] += std::popcount(a.w[w] & b.w[w]);
  }
  return linkage::Score(c, qa.popcount, qb.popcount);
}

// Item 3: kernel throughput, one core.
bool KernelSection(const std::vector<Filter>& index, const std::vector<Filter>& subjects,
                   const Flags& flags) {
  const uint32_t t = 800;
  std::vector<const Filter*> ptrs;
  for (const Filter& f : index) ptrs.push_back(&f);
  const size_t nblocks = (index.size() + 7) / 8;
  std::vector<linkage::Block> blocks(nblocks);
  linkage::ToBlocks(ptrs.data(), ptrs.size(), blocks.data());
  const FieldPops pops(index, nblocks * 8);
  std::vector<Filter> query_filters;
  for (size_t i = 0; i < flags.kernel_queries; ++i) {
    query_filters.push_back(subjects[(i * 7919) % subjects.size()]);
  }
  const std::vector<linkage::Query> queries = Queries(query_filters);

  // Identical results first.
  bool identical = true;
  for (size_t q = 0; q < std::min<size_t>(queries.size(), 20); ++q) {
    std::vector<linkage::KernelHit> want;
    linkage::ScreenRowMajor(queries[q], 600, index.data(), pops.Slots(), index.size(), 0, &want);
    for (Kernel k : linkage::SupportedKernels()) {
      if (k == Kernel::kReference) continue;
      std::vector<linkage::KernelHit> got;
      linkage::ScreenBlocks(k, queries[q], 600, blocks.data(), pops.Slots(), nblocks, 0, &got);
      const bool same =
          got.size() == want.size() &&
          std::equal(got.begin(), got.end(), want.begin(), [](auto& a, auto& b) {
            return a.record == b.record && std::equal(a.and_count, a.and_count + 3, b.and_count);
          });
      if (!same) {
        std::fprintf(stderr, "kernel %s differs from the reference on query %zu\n",
                     std::string(linkage::KernelName(k)).c_str(), q);
        identical = false;
      }
    }
  }

  const size_t tile_blocks = 256;  // 2,048 records, 256 KiB: fits this CPU's L2
  const double pairs = static_cast<double>(queries.size()) * index.size();
  std::vector<linkage::KernelHit> hits;
  struct Row {
    std::string name;
    double per_s;
  };
  std::vector<Row> rows;
  {
    const auto start = Clock::now();
    for (const linkage::Query& q : queries) {
      hits.clear();
      linkage::ScreenRowMajor(q, t, index.data(), pops.Slots(), index.size(), 0, &hits);
    }
    rows.push_back({"reference, streaming the index per query", pairs / Seconds(start)});
  }
  {
    const auto start = Clock::now();
    for (size_t b = 0; b < index.size(); b += tile_blocks * 8) {
      const size_t n = std::min(tile_blocks * 8, index.size() - b);
      for (const linkage::Query& q : queries) {
        hits.clear();
        linkage::ScreenRowMajor(q, t, &index[b], pops.Slots(b), n, static_cast<uint32_t>(b), &hits);
      }
    }
    rows.push_back({"reference, tiled (2,048 records per tile)", pairs / Seconds(start)});
  }
  for (Kernel k : linkage::SupportedKernels()) {
    if (k == Kernel::kReference) continue;
    const auto start = Clock::now();
    for (size_t b = 0; b < nblocks; b += tile_blocks) {
      const size_t n = std::min(tile_blocks, nblocks - b);
      for (const linkage::Query& q : queries) {
        hits.clear();
        linkage::ScreenBlocks(k, q, t, &blocks[b], pops.Slots(b * 8), n,
                              static_cast<uint32_t>(b * 8), &hits);
      }
    }
    rows.push_back(
        {std::string(linkage::KernelName(k)) + ", blocked, tiled", pairs / Seconds(start)});
  }
  std::printf("\n## Kernel: comparisons per second, one core (%zu queries x %zu records)\n\n",
              queries.size(), index.size());
  std::printf("| kernel | M comparisons/s | x streaming reference | x tiled reference |\n");
  std::printf("|---|---:|---:|---:|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %.1f | %.2f | %.2f |\n", r.name.c_str(), r.per_s / 1e6,
                r.per_s / rows[0].per_s, r.per_s / rows[1].per_s);
  }
  std::printf(
      "\nEvery kernel's hits identical to the reference's (20 queries, threshold 0.6): %s\n",
      identical ? "yes" : "NO");
  return identical;
}

// Item 3/4: one subject screened on arrival.
void ScreenSection(const linkage::ScreeningIndex& index, const std::vector<Filter>& subjects,
                   uint32_t threshold, const Flags& flags) {
  std::vector<double> ms;
  std::vector<Hit> hits;
  size_t compared = 0;
  for (size_t i = 0; i < flags.screen_queries; ++i) {
    const linkage::Query q = linkage::Query::From(subjects[(i * 104729) % subjects.size()]);
    hits.clear();
    const auto start = Clock::now();
    compared += index.Screen(q, 0, threshold, linkage::BestKernel(), &hits);
    ms.push_back(Seconds(start) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  const auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * ms.size()))]; };
  std::printf(
      "\n## Screen on arrival: one subject against %zu records, exact, %s kernel, one thread\n\n"
      "| subjects | p50 ms | p99 ms | max ms | records compared per subject (mean) |\n"
      "|---:|---:|---:|---:|---:|\n| %zu | %.3f | %.3f | %.3f | %.0f |\n",
      index.size(), std::string(linkage::KernelName(linkage::BestKernel())).c_str(), ms.size(),
      pct(0.5), pct(0.99), ms.back(), static_cast<double>(compared) / ms.size());
}

struct Truth {
  const synth::Population& pop;
  bool IsPair(uint32_t subject, uint32_t record) const {
    const auto& s = pop.subjects[subject];
    return s.relation == synth::Relation::kSamePerson && s.index_position == record;
  }
};

void AccuracySection(const synth::Population& pop, const std::vector<Filter>& index,
                     const std::vector<Filter>& subjects, const std::vector<Hit>& hits,
                     const linkage::BlockingKeys& keys, double* chosen) {
  const Truth truth{pop};
  const FieldPops ipops(index, 0);
  const std::vector<linkage::Query> sq = Queries(subjects);
  const auto score = [&](const Hit& h) {
    uint32_t r[linkage::kFieldCount];
    ipops.Of(h.record, r);
    return linkage::HitScore(h, sq[h.query], r);
  };
  size_t pairs = 0, family_pairs = 0, shared = 0;
  std::vector<double> pair_dice;
  for (uint32_t s = 0; s < pop.subjects.size(); ++s) {
    const auto& subj = pop.subjects[s];
    if (subj.relation != synth::Relation::kSamePerson) continue;
    ++pairs;
    family_pairs += pop.index[subj.index_position].kind == "family";
    shared += keys.ShareBucket(subjects[s], index[subj.index_position]);
    pair_dice.push_back(PairScore(subjects[s], index[subj.index_position]));
  }
  std::printf("\n## Accuracy against the generator's truth\n\n");
  std::printf("True person links: %zu (of them %zu to declared family members).\n", pairs,
              family_pairs);
  std::printf("Blocking keeps %zu of %zu true pairs (%.2f%%).\n", shared, pairs,
              100.0 * shared / pairs);

  std::printf(
      "\n| threshold | hits | true | false | precision | recall (all person links) | "
      "true pairs >= threshold kept by blocking |\n|---:|---:|---:|---:|---:|---:|---:|\n");
  double best_f1 = -1;
  for (double t = 0.70; t <= 0.951; t += 0.025) {
    size_t tp = 0, fp = 0;
    for (const Hit& h : hits) {
      if (score(h) < t - 1e-12) continue;
      truth.IsPair(h.query, h.record) ? ++tp : ++fp;
    }
    size_t above = 0;
    for (double d : pair_dice) above += d >= t - 1e-12;
    const double precision = tp + fp ? double(tp) / (tp + fp) : 0;
    const double recall = double(tp) / pairs;
    std::printf("| %.3f | %zu | %zu | %zu | %.4f | %.4f | %.4f |\n", t, tp + fp, tp, fp, precision,
                recall, above ? double(tp) / above : 0);
    const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
    if (f1 > best_f1) best_f1 = f1, *chosen = t;
  }
  std::printf("\nChosen threshold (best F1): %.3f\n", *chosen);

  // At the chosen threshold: by error, family, co-residents and hard negatives.
  absl::flat_hash_map<uint64_t, bool> hit_pairs;
  absl::flat_hash_map<uint32_t, size_t> hits_per_subject;
  for (const Hit& h : hits) {
    if (score(h) < *chosen - 1e-12) continue;
    hit_pairs[uint64_t{h.query} << 32 | h.record] = true;
    ++hits_per_subject[h.query];
  }
  std::map<std::string, std::pair<size_t, size_t>> by_error;  // error -> (pairs, found)
  size_t family_found = 0, co = 0, co_host = 0, co_any = 0, neg = 0, neg_twin = 0;
  for (uint32_t s = 0; s < pop.subjects.size(); ++s) {
    const auto& subj = pop.subjects[s];
    const bool host_hit = subj.index_position != UINT32_MAX &&
                          hit_pairs.contains(uint64_t{s} << 32 | subj.index_position);
    switch (subj.relation) {
      case synth::Relation::kSamePerson: {
        std::vector<std::string> errors = subj.errors;
        if (errors.empty()) errors.push_back("(no error)");
        for (const std::string& e : errors) {
          ++by_error[e].first;
          by_error[e].second += host_hit;
        }
        family_found += host_hit && pop.index[subj.index_position].kind == "family";
        break;
      }
      case synth::Relation::kCoResident:
        ++co;
        co_host += host_hit;
        co_any += hits_per_subject.contains(s);
        break;
      case synth::Relation::kHardNegative:
        ++neg;
        neg_twin += host_hit;
        break;
      default:
        break;
    }
  }
  std::printf("\nAt %.3f:\n\n| links | subjects | found | rate |\n|---|---:|---:|---:|\n", *chosen);
  std::printf("| declared family members (a person link to a family record) | %zu | %zu | %.4f |\n",
              family_pairs, family_found, family_pairs ? double(family_found) / family_pairs : 0);
  std::printf(
      "| co-residents, not in the index: hit on the personnel member they live with | "
      "%zu | %zu | %.4f |\n",
      co, co_host, co ? double(co_host) / co : 0);
  std::printf("| co-residents: any hit | %zu | %zu | %.4f |\n", co, co_any,
              co ? double(co_any) / co : 0);
  std::printf(
      "| hard negatives (same name, someone else): hit on the namesake | %zu | %zu | %.4f |\n", neg,
      neg_twin, neg ? double(neg_twin) / neg : 0);
  // Links the year-of-birth salt cannot make: the year missing or different on one side.
  size_t salt_kept = 0, salt_kept_found = 0;
  for (uint32_t s = 0; s < pop.subjects.size(); ++s) {
    const auto& subj = pop.subjects[s];
    if (subj.relation != synth::Relation::kSamePerson) continue;
    const std::string& a = subj.fields.date_of_birth;
    const std::string& b = pop.index[subj.index_position].fields.date_of_birth;
    if (a.size() < 4 || b.size() < 4 || a.substr(0, 4) != b.substr(0, 4)) continue;
    ++salt_kept;
    salt_kept_found += hit_pairs.contains(uint64_t{s} << 32 | subj.index_position);
  }
  std::printf(
      "\nPerson links where both sides have the same year of birth (the salt matches): "
      "%zu of %zu; recall among them %.4f.\n",
      salt_kept, pairs, salt_kept ? double(salt_kept_found) / salt_kept : 0);
  std::printf(
      "\nRecall by error (a subject with several errors counts under each):\n\n"
      "| error | person links | found | recall |\n|---|---:|---:|---:|\n");
  for (const auto& [e, c] : by_error) {
    std::printf("| %s | %zu | %zu | %.4f |\n", e.c_str(), c.first, c.second,
                double(c.second) / c.first);
  }
}

// Recall of exact screening (no blocking) for same-person subjects, per encoding.
void ExactRecall(const char* label, const synth::Population& pop, const std::vector<Filter>& index,
                 const linkage::Encoder& encoder, double threshold, int threads) {
  std::vector<synth::Subject> linked;
  std::vector<synth::Subject> negatives;
  for (const auto& s : pop.subjects) {
    if (s.relation == synth::Relation::kSamePerson) linked.push_back(s);
    if (s.relation == synth::Relation::kHardNegative) negatives.push_back(s);
  }
  const auto fields = [](const synth::Subject& s) { return s.fields; };
  const std::vector<Filter> lf = EncodeAll(encoder, linked, fields, threads);
  const std::vector<Filter> nf = EncodeAll(encoder, negatives, fields, threads);
  const linkage::ScreeningIndex idx = linkage::ScreeningIndex::Build(index);
  const uint32_t t = static_cast<uint32_t>(threshold * 1000 + 0.5);
  size_t found = 0, twins = 0;
  std::vector<Hit> hits;
  for (uint32_t i = 0; i < lf.size(); ++i) {
    hits.clear();
    idx.Screen(linkage::Query::From(lf[i]), i, t, linkage::BestKernel(), &hits);
    for (const Hit& h : hits) found += h.record == linked[i].index_position;
  }
  for (uint32_t i = 0; i < nf.size(); ++i) {
    hits.clear();
    idx.Screen(linkage::Query::From(nf[i]), i, t, linkage::BestKernel(), &hits);
    for (const Hit& h : hits) twins += h.record == negatives[i].index_position;
  }
  std::printf("| %s | %.3f | %zu | %.4f | %zu | %.4f |\n", label, threshold, lf.size(),
              lf.empty() ? 0 : double(found) / lf.size(), nf.size(),
              nf.empty() ? 0 : double(twins) / nf.size());
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  const std::string key(linkage::kKeyBytes, '\x42');  // a fixed evaluation key
  std::printf(
      "# sarloop-linkage-eval: %zu index records, %zu SAR subjects, %d threads, seed %llu\n",
      flags.index, flags.subjects, flags.threads, static_cast<unsigned long long>(flags.seed));
  std::printf("\nKernels this CPU supports:");
  for (Kernel k : linkage::SupportedKernels()) {
    std::printf(" %s", std::string(linkage::KernelName(k)).c_str());
  }
  std::printf("\n");

  auto start = Clock::now();
  synth::PopulationParams params;
  params.index_size = flags.index;
  params.subjects = flags.subjects;
  params.seed = flags.seed;
  const synth::Population pop = synth::Generate(params);
  std::printf("\nGenerated in %.1f s. Error model: %s.\n", Seconds(start),
              synth::DescribeErrorModel(params.errors).c_str());

  const linkage::Hardening hardened;
  const linkage::Encoder enc = *linkage::Encoder::Create(key, hardened);
  const linkage::Encoder plain = *linkage::Encoder::Create(key, linkage::Hardening::None());
  start = Clock::now();
  const std::vector<Filter> index = EncodeAll(
      enc, pop.index, [](const synth::IndexPerson& p) { return p.fields; }, flags.threads);
  const std::vector<Filter> subjects = EncodeAll(
      enc, pop.subjects, [](const synth::Subject& s) { return s.fields; }, flags.threads);
  const double encode_s = Seconds(start);
  std::printf(
      "Encoded %zu people in %.1f s on %d threads (%.0f per second per thread); "
      "hardening: salt with year of birth %s, flip probability %.3f.\n",
      index.size() + subjects.size(), encode_s, flags.threads,
      (index.size() + subjects.size()) / encode_s / flags.threads,
      hardened.salt_with_birth_year ? "on" : "off", hardened.flip_probability);

  const bool identical = KernelSection(index, subjects, flags);

  // End to end.
  const linkage::BlockingParams blocking{flags.tables, flags.bits, 0x5a4c00b10c};
  const uint32_t bulk_t = static_cast<uint32_t>(flags.bulk_threshold * 1000 + 0.5);
  const long rss_before = PeakRssMib();
  start = Clock::now();
  linkage::BulkStats stats;
  const std::vector<Hit> hits = linkage::BulkScreen(subjects, index, bulk_t, blocking,
                                                    flags.threads, linkage::BestKernel(), &stats);
  const double bulk_s = Seconds(start);
  std::printf(
      "\n## End to end: %zu subjects x %zu records, %d threads, %s kernel\n\n"
      "| threshold | blocking | wall s | pairs in shared buckets | slots pruned by the bound | "
      "slots compared | share of all pairs compared | hits | peak RSS MiB (process; before) |\n"
      "|---:|---|---:|---:|---:|---:|---:|---:|---:|\n"
      "| %.3f | %d tables x %d bits | %.1f | %.3g | %.3g | %.3g | %.4f%% | %zu | %ld (%ld) |\n",
      subjects.size(), index.size(), flags.threads,
      std::string(linkage::KernelName(linkage::BestKernel())).c_str(), flags.bulk_threshold,
      flags.tables, flags.bits, bulk_s, double(stats.pairs_in_buckets), double(stats.slots_pruned),
      double(stats.slots_compared),
      100.0 * stats.slots_compared / (double(subjects.size()) * index.size()), hits.size(),
      PeakRssMib(), rss_before);

  double chosen = 0.8;
  AccuracySection(pop, index, subjects, hits, linkage::BlockingKeys(blocking), &chosen);

  const linkage::ScreeningIndex screening = linkage::ScreeningIndex::Build(index);
  ScreenSection(screening, subjects, static_cast<uint32_t>(chosen * 1000 + 0.5), flags);

  std::printf(
      "\n## Exact screening (no blocking), hardened and unhardened encodings\n\n"
      "| encoding | threshold | person links | recall | hard negatives | hit on the "
      "namesake |\n|---|---:|---:|---:|---:|---:|\n");
  ExactRecall("hardened (shipped)", pop, index, enc, chosen, flags.threads);
  const std::vector<Filter> plain_index = EncodeAll(
      plain, pop.index, [](const synth::IndexPerson& p) { return p.fields; }, flags.threads);
  ExactRecall("unhardened", pop, plain_index, plain, chosen, flags.threads);

  if (flags.attacks) {
    const size_t n =
        flags.attack_records ? std::min(flags.attack_records, index.size()) : index.size();
    std::vector<std::string> truth;
    for (size_t i = 0; i < n; ++i) {
      truth.push_back(CanonicalName(pop.index[i].fields.given_names, pop.index[i].fields.surname));
    }
    std::vector<std::string> public_names;
    for (const std::string& name : synth::SampleFullNames(n, flags.seed ^ 0x9e3779b97f4a7c15)) {
      public_names.push_back(CanonicalName(name, ""));
    }
    std::printf(
        "\n## Privacy: attacks on the index's name fields (%zu records; the attacker "
        "holds %zu public names from the same distribution)\n\n"
        "| encoding | attack | guesses | re-identified | rate | patterns found (right) "
        "| s |\n|---|---|---:|---:|---:|---:|---:|\n",
        n, public_names.size());
    for (int hardened_run = 0; hardened_run < 2; ++hardened_run) {
      const std::vector<Filter> attacked(
          (hardened_run ? index : plain_index).begin(),
          (hardened_run ? index : plain_index).begin() + static_cast<std::ptrdiff_t>(n));
      const char* label = hardened_run ? "hardened (shipped)" : "unhardened";
      auto t0 = Clock::now();
      const AttackResult f = FrequencyAttack(attacked, truth, public_names);
      std::printf(
          "| %s | frequency (%.1f%% of records share their name field with another) | "
          "%zu | %zu | %.4f%% | – | %.1f |\n",
          label, 100.0 * f.shared_fields / f.records, f.guesses, f.reidentified, 100 * f.rate(),
          Seconds(t0));
      t0 = Clock::now();
      const AttackResult p = PatternMiningAttack(attacked, truth, public_names, {});
      std::printf("| %s | pattern mining | %zu | %zu | %.4f%% | %zu (%zu) | %.1f |\n", label,
                  p.guesses, p.reidentified, 100 * p.rate(), p.patterns, p.patterns_right,
                  Seconds(t0));
    }
    // What guessing the most common name achieves with no encodings at all.
    absl::flat_hash_map<std::string, size_t> counts;
    for (const std::string& name : public_names) ++counts[name];
    std::string top;
    size_t top_count = 0;
    for (const auto& [name, c] : counts) {
      if (c > top_count) top_count = c, top = name;
    }
    size_t right = 0;
    for (const std::string& t : truth) right += t == top;
    std::printf("\nBaseline without encodings (guess \"%s\" for everyone): %.4f%%.\n", top.c_str(),
                100.0 * right / truth.size());
  }
  std::printf("\nPeak RSS %ld MiB.\n", PeakRssMib());
  return identical ? 0 : 1;
}

}  // namespace
}  // namespace sarloop::bench

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-linkage-eval",
          "usage: sarloop-linkage-eval [--index N] [--subjects M] [--threads T] [--seed S]\n"
          "       [--bulk-threshold X] [--tables L] [--bits B] [--kernel-queries Q]\n"
          "       [--screen-queries Q] [--attack-records N] [--no-attacks]\n\nThe indirect-links "
          "screen measured in one run: kernels, screening, accuracy and attacks.\n")) {
    return 0;
  }
  try {
    return sarloop::bench::Main(argc, argv);
  } catch (const std::logic_error& e) {  // std::stoi and friends on a flag's value
    std::cerr << "sarloop-linkage-eval: a flag's value is not a number in range (" << e.what()
              << ")\n";
    return 2;
  }
}
