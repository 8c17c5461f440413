// sarloop-linkage-eval: the indirect-links screen measured in one run (issue 9, items 3 to 5).
//
//   sarloop-linkage-eval [--index N] [--subjects M] [--threads T] [--seed S]
//                        [--bulk-threshold X] [--tables L] [--bits B] [--kernel-queries Q]
//                        [--screen-queries Q] [--attack-records N] [--graph-records N]
//                        [--node-subjects N] [--no-attacks] [--flip-probability P]
//                        [--neighbour-decades N] [--no-salt]
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
// 5. The node: a real LinkageDesk over SQLite answering writes while the whole index is uploaded
//    and stored subjects re-screened (--node-subjects of them).
// 6. The same index against subjects written with a harsher error model, at the same threshold;
//    then what any rule over the three fields' counts could reach on both models' candidates.
// 7. Privacy: the frequency, pattern-mining and graph-matching attacks on the index's name
//    fields, hardened and unhardened; then every figure beside its target.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/clock.h"
#include "common/base/crypto.h"
#include "common/linkage/linkage_encoding.h"
#include "common/server/server.h"
#include "common/storage/storage.h"
#include "common/version/version.h"
#include "services/linkage/desk.h"
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
  size_t graph_records = 20000;
  size_t node_subjects = 100000;
  bool attacks = true;
  // The hardening under evaluation; the defaults are what the service ships.
  linkage::Hardening hardening;
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
    } else if (a == "--no-salt") {
      f->hardening.salt_with_birth_decade = false;
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
    } else if (a == "--node-subjects") {
      ok = absl::SimpleAtoi(v, &f->node_subjects) && f->node_subjects >= 100;
    } else if (a == "--flip-probability") {
      ok = absl::SimpleAtod(v, &f->hardening.flip_probability) &&
           f->hardening.flip_probability >= 0 && f->hardening.flip_probability <= 0.25;
    } else if (a == "--neighbour-decades") {
      ok = absl::SimpleAtoi(v, &f->hardening.neighbour_decades) &&
           f->hardening.neighbour_decades >= 0 && f->hardening.neighbour_decades <= 3;
    } else if (a == "--graph-records") {
      ok = absl::SimpleAtoi(v, &f->graph_records) && f->graph_records >= 100 &&
           f->graph_records <= 100000;
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

// SAR subjects as a screen sees them: every encoding of each (Encoder::EncodeForScreening; more
// than one when the date of birth is unknown) in one list, subject by subject.
struct SubjectEncodings {
  std::vector<Filter> primary;    // per subject: its first encoding
  std::vector<Filter> flat;       // every encoding
  std::vector<uint32_t> first;    // per subject: where its encodings start in `flat`; one past
  std::vector<uint32_t> subject;  // per encoding: its subject
  size_t size() const { return primary.size(); }
};

SubjectEncodings EncodeSubjects(const linkage::Encoder& proto,
                                const std::vector<synth::Subject>& people, int threads) {
  std::vector<std::vector<Filter>> each(people.size());
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      linkage::Encoder e = proto.Clone();
      for (size_t i = t; i < people.size(); i += threads) {
        absl::StatusOr<std::vector<Filter>> f = e.EncodeForScreening(people[i].fields);
        if (!f.ok()) {
          std::fprintf(stderr, "encode: %s\n", std::string(f.status().message()).c_str());
          std::exit(1);
        }
        each[i] = std::move(*f);
      }
    });
  }
  for (auto& th : pool) th.join();
  SubjectEncodings out;
  out.primary.reserve(people.size());
  out.first.reserve(people.size() + 1);
  for (uint32_t i = 0; i < each.size(); ++i) {
    out.primary.push_back(each[i][0]);
    out.first.push_back(static_cast<uint32_t>(out.flat.size()));
    for (const Filter& f : each[i]) {
      out.flat.push_back(f);
      out.subject.push_back(i);
    }
    std::vector<Filter>().swap(each[i]);
  }
  out.first.push_back(static_cast<uint32_t>(out.flat.size()));
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

struct KernelFigures {
  bool identical = true;
  // The fastest blocked kernel against the two references, and which it is.
  std::string best;
  double x_streaming = 0, x_tiled = 0;
};

// Item 3: kernel throughput, one core.
KernelFigures KernelSection(const std::vector<Filter>& index, const std::vector<Filter>& subjects,
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
  KernelFigures out;
  out.identical = identical;
  for (size_t i = 2; i < rows.size(); ++i) {
    if (rows[i].per_s / rows[0].per_s > out.x_streaming) {
      out.best = rows[i].name;
      out.x_streaming = rows[i].per_s / rows[0].per_s;
      out.x_tiled = rows[i].per_s / rows[1].per_s;
    }
  }
  return out;
}

// Item 3/4: one subject screened on arrival: every encoding it has against the whole index.
// Returns the p99 in milliseconds.
double ScreenSection(const linkage::ScreeningIndex& index, const SubjectEncodings& subjects,
                     uint32_t threshold, const Flags& flags) {
  std::vector<double> ms;
  std::vector<Hit> hits;
  size_t compared = 0, encodings = 0;
  for (size_t i = 0; i < flags.screen_queries; ++i) {
    const size_t s = (i * 104729) % subjects.size();
    hits.clear();
    const auto start = Clock::now();
    for (uint32_t q = subjects.first[s]; q < subjects.first[s + 1]; ++q) {
      compared += index.Screen(linkage::Query::From(subjects.flat[q]), 0, threshold,
                               linkage::BestKernel(), &hits);
      ++encodings;
    }
    ms.push_back(Seconds(start) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  const auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * ms.size()))]; };
  std::printf(
      "\n## Screen on arrival: one subject (all its encodings) against %zu records, exact, %s "
      "kernel, one thread\n\n"
      "| subjects | encodings | p50 ms | p99 ms | max ms | records compared per subject (mean) "
      "|\n|---:|---:|---:|---:|---:|---:|\n| %zu | %zu | %.3f | %.3f | %.3f | %.0f |\n",
      index.size(), std::string(linkage::KernelName(linkage::BestKernel())).c_str(), ms.size(),
      encodings, pct(0.5), pct(0.99), ms.back(), static_cast<double>(compared) / ms.size());
  return pct(0.99);
}

struct Truth {
  const synth::Population& pop;
  bool IsPair(uint32_t subject, uint32_t record) const {
    const auto& s = pop.subjects[subject];
    return s.relation == synth::Relation::kSamePerson && s.index_position == record;
  }
};

// The best score of any of a subject's encodings against a record, by (subject, record).
using PairScores = absl::flat_hash_map<uint64_t, double>;
uint64_t PairKey(uint32_t subject, uint32_t record) { return uint64_t{subject} << 32 | record; }

PairScores BestPerPair(const std::vector<Filter>& index, const SubjectEncodings& subjects,
                       const std::vector<Hit>& hits) {
  const FieldPops ipops(index, 0);
  PairScores out;
  for (const Hit& h : hits) {
    uint32_t r[linkage::kFieldCount];
    ipops.Of(h.record, r);
    const double score = linkage::HitScore(h, linkage::Query::From(subjects.flat[h.query]), r);
    double& best =
        out.try_emplace(PairKey(subjects.subject[h.query], h.record), -1.0).first->second;
    best = std::max(best, score);
  }
  return out;
}

struct Accuracy {
  double precision = 0, recall = 0;
};

// The precision the chosen threshold keeps at least: the target's 0.95 and a margin.
constexpr double kChoicePrecision = 0.96;

// Precision and recall against the generator's truth at a sweep of thresholds, and at `*chosen`
// by error, family, co-residents and hard negatives. With `choose`, *chosen is chosen first: the
// threshold with the most recall at precision >= kChoicePrecision.
Accuracy AccuracySection(const synth::Population& pop, const std::vector<Filter>& index,
                         const SubjectEncodings& subjects, const std::vector<Hit>& hits,
                         const linkage::BlockingKeys& keys, bool choose, double* chosen) {
  const Truth truth{pop};
  const PairScores scores = BestPerPair(index, subjects, hits);
  size_t pairs = 0, family_pairs = 0, shared = 0;
  std::vector<double> pair_dice;
  for (uint32_t s = 0; s < pop.subjects.size(); ++s) {
    const auto& subj = pop.subjects[s];
    if (subj.relation != synth::Relation::kSamePerson) continue;
    ++pairs;
    family_pairs += pop.index[subj.index_position].kind == "family";
    bool any_shared = false;
    double best = -1;
    for (uint32_t q = subjects.first[s]; q < subjects.first[s + 1]; ++q) {
      any_shared = any_shared || keys.ShareBucket(subjects.flat[q], index[subj.index_position]);
      best = std::max(best, PairScore(subjects.flat[q], index[subj.index_position]));
    }
    shared += any_shared;
    pair_dice.push_back(best);
  }
  std::printf("\n## Accuracy against the generator's truth\n\n");
  std::printf("True person links: %zu (of them %zu to declared family members).\n", pairs,
              family_pairs);
  std::printf("Blocking keeps %zu of %zu true pairs (%.2f%%).\n", shared, pairs,
              100.0 * shared / pairs);

  std::printf(
      "\n| threshold | hits | true | false | precision | recall (all person links) | "
      "true pairs >= threshold kept by blocking |\n|---:|---:|---:|---:|---:|---:|---:|\n");
  const auto count_at = [&](double t) {
    size_t tp = 0, fp = 0;
    for (const auto& [key, score] : scores) {
      if (score < t - 1e-12) continue;
      truth.IsPair(static_cast<uint32_t>(key >> 32), static_cast<uint32_t>(key)) ? ++tp : ++fp;
    }
    return std::pair{tp, fp};
  };
  for (double t = 0.70; t <= 0.951; t += 0.025) {
    const auto [tp, fp] = count_at(t);
    size_t above = 0;
    for (double d : pair_dice) above += d >= t - 1e-12;
    const double precision = tp + fp ? double(tp) / (tp + fp) : 0;
    const double recall = double(tp) / pairs;
    std::printf("| %.3f | %zu | %zu | %zu | %.4f | %.4f | %.4f |\n", t, tp + fp, tp, fp, precision,
                recall, above ? double(tp) / above : 0);
  }
  if (choose) {
    // The operating point the target asks for: the most recall with precision at or above
    // kChoicePrecision (a margin over the 0.95 target), over thresholds in steps of 0.001 (the
    // service's unit); the best F1 when no threshold reaches that precision.
    std::vector<std::pair<double, bool>> ranked;
    ranked.reserve(scores.size());
    for (const auto& [key, score] : scores) {
      ranked.emplace_back(
          score, truth.IsPair(static_cast<uint32_t>(key >> 32), static_cast<uint32_t>(key)));
    }
    std::sort(ranked.begin(), ranked.end(), std::greater<>());
    double best_recall = -1, best_f1 = -1, f1_at = 0.85;
    size_t tp = 0, fp = 0, next = 0;
    for (int milli = 950; milli >= 700; --milli) {
      const double t = milli / 1000.0;
      while (next < ranked.size() && ranked[next].first >= t - 1e-12) {
        ranked[next++].second ? ++tp : ++fp;
      }
      const double precision = tp + fp ? double(tp) / (tp + fp) : 0;
      const double recall = double(tp) / pairs;
      if (precision >= kChoicePrecision && recall > best_recall) best_recall = recall, *chosen = t;
      const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
      if (f1 > best_f1) best_f1 = f1, f1_at = t;
    }
    if (best_recall < 0) *chosen = f1_at;
    std::printf(
        "\nChosen threshold: %.3f, the most recall with precision >= %.2f in steps of 0.001 "
        "(best F1 at %.3f).\n",
        *chosen, kChoicePrecision, f1_at);
  } else {
    std::printf("\nAt the chosen threshold: %.3f\n", *chosen);
  }

  // At the chosen threshold: by error, family, co-residents and hard negatives.
  Accuracy at_chosen;
  absl::flat_hash_map<uint64_t, bool> hit_pairs;
  absl::flat_hash_map<uint32_t, size_t> hits_per_subject;
  size_t tp = 0, fp = 0;
  for (const auto& [key, score] : scores) {
    if (score < *chosen - 1e-12) continue;
    hit_pairs[key] = true;
    ++hits_per_subject[static_cast<uint32_t>(key >> 32)];
    truth.IsPair(static_cast<uint32_t>(key >> 32), static_cast<uint32_t>(key)) ? ++tp : ++fp;
  }
  at_chosen.precision = tp + fp ? double(tp) / (tp + fp) : 0;
  at_chosen.recall = pairs ? double(tp) / pairs : 0;
  std::map<std::string, std::pair<size_t, size_t>> by_error;  // error -> (pairs, found)
  size_t family_found = 0, co = 0, co_host = 0, co_any = 0, neg = 0, neg_twin = 0;
  for (uint32_t s = 0; s < pop.subjects.size(); ++s) {
    const auto& subj = pop.subjects[s];
    const bool host_hit =
        subj.index_position != UINT32_MAX && hit_pairs.contains(PairKey(s, subj.index_position));
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
  // Who the false hits are: what stands between the threshold and more recall.
  size_t false_by[4] = {}, false_exact_dob = 0;
  for (const auto& [key, found] : hit_pairs) {
    const uint32_t s = static_cast<uint32_t>(key >> 32), record = static_cast<uint32_t>(key);
    if (truth.IsPair(s, record)) continue;
    ++false_by[static_cast<int>(pop.subjects[s].relation)];
    false_exact_dob += linkage::Dice(subjects.flat[subjects.first[s]], index[record],
                                     linkage::Field::kDateOfBirth) >= 0.95;
  }
  std::printf(
      "\nFalse hits at %.3f: %zu; the subject is nobody in the index %zu, an index person hit on "
      "another record %zu, a co-resident %zu, a namesake %zu; %zu share the record's date of "
      "birth exactly (its field's Dice >= 0.95).\n",
      *chosen, fp, false_by[static_cast<int>(synth::Relation::kNone)],
      false_by[static_cast<int>(synth::Relation::kSamePerson)],
      false_by[static_cast<int>(synth::Relation::kCoResident)],
      false_by[static_cast<int>(synth::Relation::kHardNegative)], false_exact_dob);
  // Links where the salt differs or is unknown on one side: the decade of birth missing or
  // different. A missing one is screened under every decade; a different one is not.
  size_t missing = 0, missing_found = 0, other_decade = 0, other_decade_found = 0;
  for (uint32_t s = 0; s < pop.subjects.size(); ++s) {
    const auto& subj = pop.subjects[s];
    if (subj.relation != synth::Relation::kSamePerson) continue;
    const std::string& a = subj.fields.date_of_birth;
    const std::string& b = pop.index[subj.index_position].fields.date_of_birth;
    const bool found = hit_pairs.contains(PairKey(s, subj.index_position));
    if (a.empty()) {
      ++missing;
      missing_found += found;
    } else if (a.substr(0, 3) != b.substr(0, 3)) {
      ++other_decade;
      other_decade_found += found;
    }
  }
  std::printf(
      "\nPerson links whose subject has no date of birth (screened under every decade): %zu, "
      "recall %.4f; whose decade of birth differs from the index's (the salt cannot match): "
      "%zu, recall %.4f.\n",
      missing, missing ? double(missing_found) / missing : 0, other_decade,
      other_decade ? double(other_decade_found) / other_decade : 0);
  std::printf(
      "\nRecall by error (a subject with several errors counts under each):\n\n"
      "| error | person links | found | recall |\n|---|---:|---:|---:|\n");
  for (const auto& [e, c] : by_error) {
    std::printf("| %s | %zu | %zu | %.4f |\n", e.c_str(), c.first, c.second,
                double(c.second) / c.first);
  }
  return at_chosen;
}

// What a rule over the three fields' counts could reach at best: a measurement, not a rule the
// service runs. The candidates are the bulk screen's hits (at --bulk-threshold); each field's
// Dice falls in one of nine bins, or "absent on a side", and an additive model with one weight
// per field and bin (the Fellegi-Sunter form, fitted as a logistic regression by Newton's
// method) scores a pair by its best encoding. Fitted on the model it is judged on, it is a
// ceiling for any rule that sees only these counts.
//
// With `classes` > 1 the name's weight is per bin and per class of how common the index record's
// surname is (Candidates::rarity): what a key holder could add to an encoding, and what the
// hardening hides, measured before anyone decides to pay its price in privacy.
class FieldBinModel {
 public:
  static constexpr int kBins = 10;  // nine by Dice, then absent
  static constexpr int kPatterns = kBins * kBins * kBins;

  explicit FieldBinModel(int classes = 1)
      : classes_(classes), weights_(kBins * classes + 2 * kBins + 1), w_(weights_, 0.0) {}

  static int Bin(uint32_t c, uint32_t q, uint32_t r, int field) {
    if (q < linkage::kPresentMin[field] || r < linkage::kPresentMin[field]) return kBins - 1;
    static constexpr double kEdges[] = {0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95};
    const double dice = 2.0 * c / (q + r);
    int b = 0;
    while (b < 8 && dice >= kEdges[b]) ++b;
    return b;
  }
  // `pattern`: the three bins, field 0 most significant (base kBins); `cls` the rarity class.
  double Score(int pattern, int cls = 0) const {
    const std::array<int, 4> at = Weights(pattern, cls);
    return w_[at[0]] + w_[at[1]] + w_[at[2]] + w_[at[3]];
  }
  // `counts[pattern * classes + cls]` = (true, false) candidates with that pattern and class.
  void Fit(const std::vector<std::pair<double, double>>& counts) {
    const int weights = weights_;
    for (int iteration = 0; iteration < 30; ++iteration) {
      std::vector<std::vector<double>> h(weights, std::vector<double>(weights, 0));
      std::vector<double> g(weights, 0);
      for (int cell = 0; cell < static_cast<int>(counts.size()); ++cell) {
        const auto [yes, no] = counts[cell];
        if (yes + no == 0) continue;
        const int pattern = cell / classes_, cls = cell % classes_;
        const std::array<int, 4> at = Weights(pattern, cls);
        const double p = 1 / (1 + std::exp(-Score(pattern, cls)));
        for (int i : at) {
          g[i] += yes - (yes + no) * p;
          for (int j : at) h[i][j] += (yes + no) * p * (1 - p);
        }
      }
      for (int i = 0; i < weights; ++i) {  // a little L2, so empty bins stay at 0
        g[i] -= w_[i];
        h[i][i] += 1;
      }
      // Newton's step: h x = g, by Gaussian elimination with partial pivoting.
      for (int i = 0; i < weights; ++i) {
        int pivot = i;
        for (int j = i + 1; j < weights; ++j) {
          if (std::fabs(h[j][i]) > std::fabs(h[pivot][i])) pivot = j;
        }
        std::swap(h[i], h[pivot]);
        std::swap(g[i], g[pivot]);
        for (int j = i + 1; j < weights; ++j) {
          const double m = h[j][i] / h[i][i];
          for (int k = i; k < weights; ++k) h[j][k] -= m * h[i][k];
          g[j] -= m * g[i];
        }
      }
      for (int i = weights - 1; i >= 0; --i) {
        double x = g[i];
        for (int k = i + 1; k < weights; ++k) x -= h[i][k] * g[k];
        g[i] = x / h[i][i];
      }
      for (int i = 0; i < weights; ++i) w_[i] += g[i];
    }
  }

 private:
  // The weights a pattern and class add: the name's bin (per class), the date of birth's, the
  // address's, and the constant.
  std::array<int, 4> Weights(int pattern, int cls) const {
    return {pattern / (kBins * kBins) * classes_ + cls, kBins * classes_ + pattern / kBins % kBins,
            kBins * classes_ + kBins + pattern % kBins, weights_ - 1};
  }

  int classes_;
  int weights_;
  std::vector<double> w_;
};

// How common the index record's surname is among the index's records, in four classes: the
// evidence the hardening hides. 0: 1,000 records or more (Smith, Jones), 1: 100-999, 2: 10-99,
// 3: fewer.
constexpr int kRarityClasses = 4;
std::vector<uint8_t> SurnameRarity(const synth::Population& pop) {
  absl::flat_hash_map<std::string, int> count;
  for (const auto& p : pop.index) ++count[p.fields.surname];
  std::vector<uint8_t> out;
  out.reserve(pop.index.size());
  for (const auto& p : pop.index) {
    const int n = count[p.fields.surname];
    out.push_back(n >= 1000 ? 0 : n >= 100 ? 1 : n >= 10 ? 2 : 3);
  }
  return out;
}

// One model's candidates: per hit, its pair, bins and the shipped rule's score.
struct Candidates {
  std::vector<uint64_t> pair;
  std::vector<int> pattern;
  std::vector<uint8_t> rarity;  // SurnameRarity of the hit's index record
  std::vector<double> shipped;
  std::vector<bool> truth;
  size_t true_pairs = 0;
};

Candidates CollectCandidates(const synth::Population& pop, const std::vector<Filter>& index,
                             const SubjectEncodings& subjects, const std::vector<Hit>& hits) {
  const Truth truth{pop};
  const FieldPops ipops(index, 0);
  const std::vector<uint8_t> rarity = SurnameRarity(pop);
  Candidates out;
  for (const Hit& h : hits) {
    uint32_t r[linkage::kFieldCount];
    ipops.Of(h.record, r);
    const linkage::Query q = linkage::Query::From(subjects.flat[h.query]);
    const uint32_t subject = subjects.subject[h.query];
    int pattern = 0;
    for (int f = 0; f < linkage::kFieldCount; ++f) {
      pattern = pattern * FieldBinModel::kBins +
                FieldBinModel::Bin(h.and_count[f], q.popcount[f], r[f], f);
    }
    out.pair.push_back(PairKey(subject, h.record));
    out.pattern.push_back(pattern);
    out.rarity.push_back(rarity[h.record]);
    out.shipped.push_back(linkage::HitScore(h, q, r));
    out.truth.push_back(truth.IsPair(subject, h.record));
  }
  for (const auto& s : pop.subjects) out.true_pairs += s.relation == synth::Relation::kSamePerson;
  return out;
}

// Candidates by pattern (and rarity class, with `classes` > 1): (true, false).
std::vector<std::pair<double, double>> PatternCounts(const Candidates& c, int classes = 1) {
  std::vector<std::pair<double, double>> counts(FieldBinModel::kPatterns * classes);
  for (size_t i = 0; i < c.pair.size(); ++i) {
    const int cell = c.pattern[i] * classes + (classes > 1 ? c.rarity[i] : 0);
    (c.truth[i] ? counts[cell].first : counts[cell].second) += 1;
  }
  return counts;
}

struct OperatingPoint {
  double threshold = 0, precision = 0, recall = 0;
};

// Each pair's best score, ranked: then the most recall at precision >= min_precision, or the
// precision and recall at `at` when given.
template <typename ScoreOf>
OperatingPoint Operate(const Candidates& c, ScoreOf score_of, double min_precision,
                       const double* at = nullptr) {
  absl::flat_hash_map<uint64_t, std::pair<double, bool>> best;
  for (size_t i = 0; i < c.pair.size(); ++i) {
    const double s = score_of(i);
    auto [it, added] = best.try_emplace(c.pair[i], s, c.truth[i]);
    if (!added) it->second.first = std::max(it->second.first, s);
  }
  std::vector<std::pair<double, bool>> ranked;
  for (const auto& [key, v] : best) ranked.push_back(v);
  std::sort(ranked.begin(), ranked.end(), std::greater<>());
  OperatingPoint out{0, 0, -1};
  size_t tp = 0, fp = 0;
  for (size_t i = 0; i < ranked.size(); ++i) {
    if (at != nullptr && ranked[i].first < *at) break;
    ranked[i].second ? ++tp : ++fp;
    if (i + 1 < ranked.size() && ranked[i + 1].first == ranked[i].first) continue;
    const double precision = double(tp) / (tp + fp), recall = double(tp) / c.true_pairs;
    if (at != nullptr) {
      out = {*at, precision, recall};
    } else if (precision >= min_precision && recall > out.recall) {
      out = {ranked[i].first, precision, recall};
    }
  }
  return out;
}

// The shipped rule and the additive model on both error models' candidates.
void RuleCeilingSection(const Candidates& project, const Candidates& harsh) {
  std::printf(
      "\n## What a rule over the three fields' counts could reach (candidates: the bulk "
      "screen's hits)\n\n"
      "| rule | most recall at precision >= 0.95, project's model | the same, harsher model | "
      "harsher model at the project's operating point (precision >= %.2f there): precision / "
      "recall |\n|---|---:|---:|---:|\n",
      kChoicePrecision);
  // `same_scale`: both models' pairs are scored by one function, so a threshold chosen on the
  // project's model means the same on the harsher one.
  const auto row = [&](const char* label, auto score_project, auto score_harsh, bool same_scale) {
    const OperatingPoint p = Operate(project, score_project, 0.95);
    const OperatingPoint h = Operate(harsh, score_harsh, 0.95);
    std::string transfer_cell = "–";
    if (same_scale) {
      const OperatingPoint chosen = Operate(project, score_project, kChoicePrecision);
      const OperatingPoint transfer = Operate(harsh, score_harsh, 0, &chosen.threshold);
      transfer_cell = absl::StrFormat("%.4f / %.4f", transfer.precision, transfer.recall);
    }
    std::printf("| %s | %.4f | %.4f | %s |\n", label, p.recall, h.recall, transfer_cell.c_str());
  };
  row(
      "the shipped rule", [&](size_t i) { return project.shipped[i]; },
      [&](size_t i) { return harsh.shipped[i]; }, true);
  FieldBinModel on_project, on_harsh;
  on_project.Fit(PatternCounts(project));
  on_harsh.Fit(PatternCounts(harsh));
  row(
      "a weight per field and Dice bin, fitted on the project's model",
      [&](size_t i) { return on_project.Score(project.pattern[i]); },
      [&](size_t i) { return on_project.Score(harsh.pattern[i]); }, true);
  row(
      "the same fitted on each model's own candidates (a ceiling: it knows the errors)",
      [&](size_t i) { return on_project.Score(project.pattern[i]); },
      [&](size_t i) { return on_harsh.Score(harsh.pattern[i]); }, false);
  // With the evidence the hardening hides: how common the index record's surname is.
  FieldBinModel rare_project(kRarityClasses), rare_harsh(kRarityClasses);
  rare_project.Fit(PatternCounts(project, kRarityClasses));
  rare_harsh.Fit(PatternCounts(harsh, kRarityClasses));
  row(
      "the name's weight also by how common the record's surname is (4 classes), fitted on the "
      "project's model",
      [&](size_t i) { return rare_project.Score(project.pattern[i], project.rarity[i]); },
      [&](size_t i) { return rare_project.Score(harsh.pattern[i], harsh.rarity[i]); }, true);
  row(
      "the same fitted on each model's own candidates",
      [&](size_t i) { return rare_project.Score(project.pattern[i], project.rarity[i]); },
      [&](size_t i) { return rare_harsh.Score(harsh.pattern[i], harsh.rarity[i]); }, false);
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
  const SubjectEncodings lf = EncodeSubjects(encoder, linked, threads);
  const SubjectEncodings nf = EncodeSubjects(encoder, negatives, threads);
  const linkage::ScreeningIndex idx = linkage::ScreeningIndex::Build(index);
  const uint32_t t = static_cast<uint32_t>(threshold * 1000 + 0.5);
  const auto found = [&](const SubjectEncodings& e, const std::vector<synth::Subject>& people) {
    size_t n = 0;
    std::vector<Hit> hits;
    for (uint32_t i = 0; i < people.size(); ++i) {
      bool hit = false;
      for (uint32_t q = e.first[i]; q < e.first[i + 1] && !hit; ++q) {
        hits.clear();
        idx.Screen(linkage::Query::From(e.flat[q]), i, t, linkage::BestKernel(), &hits);
        for (const Hit& h : hits) hit = hit || h.record == people[i].index_position;
      }
      n += hit;
    }
    return n;
  };
  const size_t links = found(lf, linked), twins = found(nf, negatives);
  std::printf("| %s | %.3f | %zu | %.4f | %zu | %.4f |\n", label, threshold, linked.size(),
              linked.empty() ? 0 : double(links) / linked.size(), negatives.size(),
              negatives.empty() ? 0 : double(twins) / negatives.size());
}

// Item 2 of issue 25: the node keeps answering writes while a force uploads a whole index and
// every stored subject is re-screened against it. A real LinkageDesk over SQLite in a temporary
// directory: `node_subjects` subjects stored through Screen (100 a call, as UKFIU sends them),
// then the index uploaded in 5,000-record calls and committed, while another thread makes one
// small write (another force's BeginIndexUpload) every 10 ms and times it.
struct NodeFigures {
  size_t writes = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double upload_s = 0, commit_s = 0;
  int64_t rescreened = 0, new_hits = 0;
  bool ok = false;
};

NodeFigures NodeSection(const std::vector<Filter>& index, const SubjectEncodings& subjects,
                        size_t node_subjects, uint32_t threshold_milli, int threads) {
  NodeFigures out;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("sarloop-linkage-eval-", getpid());
  std::filesystem::create_directories(dir);
  const auto fail = [&](const absl::Status& s) {
    std::fprintf(stderr, "node: %s\n", s.ToString().c_str());
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return out;
  };
  {
    absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(
        (dir / "linkage.db").string(),
        ServiceMigrations(linkage::LinkageMigrations(), linkage::LinkageMigrationsAfterAudit()),
        Keyring::FromKeys({std::string(Keyring::kKeySize, 'e')}).value(),
        /*readers=*/2);  // as the service opens it
    if (!db.ok()) return fail(db.status());
    std::unique_ptr<sarloop::Clock> clock = NewSystemClock();
    linkage::LinkageOptions options;
    options.threshold_milli = threshold_milli;
    options.subjects_per_minute = 1 << 30;
    options.rescreen_threads = threads;
    // Each probe below begins an upload and leaves it open: the service's limit on those is
    // lifted here, so every probe is the same small write.
    options.max_open_uploads = std::numeric_limits<int>::max();
    absl::StatusOr<std::unique_ptr<linkage::LinkageDesk>> desk =
        linkage::LinkageDesk::Load(**db, *clock, options);
    if (!desk.ok()) return fail(desk.status());
    const auto as = [](const std::string& kind, const std::string& org) {
      Call c;
      c.identity =
          Identity{absl::StrCat("spiffe://sarloop/", kind, "/", org, "/eval"), kind, org, "eval"};
      c.scope = c.identity.uri;
      return c;
    };
    const Call ukfiu = as("ukfiu", "UKFIU"), nfk = as("force", "NFK"), sfk = as("force", "SFK");
    int64_t request = 0;
    const auto next_id = [&request] { return absl::StrCat("eval-", ++request); };

    const size_t n = std::min(node_subjects, subjects.size());
    for (size_t first = 0; first < n; first += 100) {
      v1::ScreenSubjectsRequest r;
      r.set_request_id(next_id());
      r.set_sar_id(absl::StrFormat("SAR-%016x", first / 100 + 1));
      for (size_t i = first; i < std::min(n, first + 100); ++i) {
        v1::EncodedSubject* e = r.add_subjects();
        e->set_subject_ref(absl::StrCat("S", i));
        e->set_encoding(linkage::ToBytes(subjects.flat[subjects.first[i]]));
        for (uint32_t q = subjects.first[i] + 1; q < subjects.first[i + 1]; ++q) {
          e->add_alternative_encodings(linkage::ToBytes(subjects.flat[q]));
        }
      }
      absl::Status s = (*desk)->Screen(ukfiu, r).status();
      if (!s.ok()) return fail(s);
    }

    std::atomic<bool> done{false};
    std::vector<double> ms;
    std::atomic<int64_t> probe_id{0};
    absl::Status probe_error;  // the first probe that failed: the figures would not be writes
    std::thread probe([&] {
      while (!done.load() && probe_error.ok()) {
        v1::BeginIndexUploadRequest r;
        r.set_request_id(absl::StrCat("probe-", ++probe_id));
        const auto start = Clock::now();
        probe_error = (*desk)->BeginUpload(sfk, r).status();
        if (probe_error.ok()) ms.push_back(Seconds(start) * 1e3);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    const auto start = Clock::now();
    v1::BeginIndexUploadRequest begin;
    begin.set_request_id(next_id());
    absl::StatusOr<v1::BeginIndexUploadResponse> started = (*desk)->BeginUpload(nfk, begin);
    absl::Status status = started.status();
    for (size_t first = 0; status.ok() && first < index.size(); first += 5000) {
      v1::UploadIndexRecordsRequest r;
      r.set_request_id(next_id());
      r.set_upload_id(started->upload_id());
      for (size_t i = first; i < std::min(index.size(), first + 5000); ++i) {
        v1::EncodedRecord* rec = r.add_records();
        rec->set_record_id(absl::StrFormat("P%07d", i));
        rec->set_encoding(linkage::ToBytes(index[i]));
      }
      status = (*desk)->UploadRecords(nfk, r).status();
    }
    out.upload_s = Seconds(start);
    const auto commit_start = Clock::now();
    absl::StatusOr<v1::CommitIndexUploadResponse> committed;
    if (status.ok()) {
      v1::CommitIndexUploadRequest c;
      c.set_request_id(next_id());
      c.set_upload_id(started->upload_id());
      c.set_expected_records(static_cast<int64_t>(index.size()));
      committed = (*desk)->CommitUpload(nfk, c);
      status = committed.status();
    }
    out.commit_s = Seconds(commit_start);
    done = true;
    probe.join();
    if (!status.ok()) return fail(status);
    if (!probe_error.ok()) return fail(probe_error);
    out.rescreened = committed->subjects_rescreened();
    out.new_hits = committed->new_hits();
    std::sort(ms.begin(), ms.end());
    out.writes = ms.size();
    if (!ms.empty()) {
      out.p50_ms = ms[ms.size() / 2];
      out.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
      out.max_ms = ms.back();
    }
    out.ok = true;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::printf(
      "\n## The node during a %zu-record upload and re-screen (SQLite, synchronous=FULL)\n\n"
      "| stored subjects re-screened | new hits | upload s | commit (re-screen) s | writes "
      "meanwhile | p50 ms | p99 ms | max ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n"
      "| %lld | %lld | %.1f | %.1f | %zu | %.1f | %.1f | %.1f |\n",
      index.size(), static_cast<long long>(out.rescreened), static_cast<long long>(out.new_hits),
      out.upload_s, out.commit_s, out.writes, out.p50_ms, out.p99_ms, out.max_ms);
  return out;
}

// The bulk screen of every subject encoding against the index, as the service's re-screen runs
// it, with its table; the wall time in *wall_s.
std::vector<Hit> EndToEnd(const SubjectEncodings& subjects, const std::vector<Filter>& index,
                          const Flags& flags, const linkage::BlockingParams& blocking,
                          double* wall_s) {
  const uint32_t bulk_t = static_cast<uint32_t>(flags.bulk_threshold * 1000 + 0.5);
  const long rss_before = PeakRssMib();
  const auto start = Clock::now();
  linkage::BulkStats stats;
  std::vector<Hit> hits = linkage::BulkScreen(subjects.flat, index, bulk_t, blocking, flags.threads,
                                              linkage::BestKernel(), &stats);
  *wall_s = Seconds(start);
  std::printf(
      "\n## End to end: %zu subjects (%zu encodings) x %zu records, %d threads, %s kernel\n\n"
      "| threshold | blocking | wall s | pairs in shared buckets | slots pruned by the bound | "
      "slots compared | share of all pairs compared | hits | peak RSS MiB (process; before) "
      "|\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n"
      "| %.3f | %d tables x %d bits | %.1f | %.3g | %.3g | %.3g | %.4f%% | %zu | %ld (%ld) |\n",
      subjects.size(), subjects.flat.size(), index.size(), flags.threads,
      std::string(linkage::KernelName(linkage::BestKernel())).c_str(), flags.bulk_threshold,
      flags.tables, flags.bits, *wall_s, double(stats.pairs_in_buckets), double(stats.slots_pruned),
      double(stats.slots_compared),
      100.0 * stats.slots_compared / (double(subjects.flat.size()) * index.size()), hits.size(),
      PeakRssMib(), rss_before);
  return hits;
}

// Of the true person links that reach the threshold, how many the blocking keeps in a shared
// bucket: {above, kept}.
std::pair<size_t, size_t> KeptByBlocking(const synth::Population& pop,
                                         const SubjectEncodings& subjects,
                                         const std::vector<Filter>& index,
                                         const linkage::BlockingKeys& keys, double threshold) {
  size_t above = 0, kept = 0;
  for (uint32_t s = 0; s < pop.subjects.size(); ++s) {
    const auto& subj = pop.subjects[s];
    if (subj.relation != synth::Relation::kSamePerson) continue;
    for (uint32_t q = subjects.first[s]; q < subjects.first[s + 1]; ++q) {
      if (PairScore(subjects.flat[q], index[subj.index_position]) >= threshold - 1e-12) {
        ++above;
        kept += keys.ShareBucket(subjects.flat[q], index[subj.index_position]);
        break;
      }
    }
  }
  return {above, kept};
}

// The attacks on the index's name fields, hardened and unhardened, with their table; the best
// re-identification rate any of them reached on the hardened encodings.
double AttackSection(const synth::Population& pop, const std::vector<Filter>& index,
                     const std::vector<Filter>& plain_index, const Flags& flags) {
  double hardened_attack = 0;
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
    t0 = Clock::now();
    GraphAttackOptions graph_options;
    graph_options.max_records = flags.graph_records;
    const AttackResult g = GraphMatchingAttack(attacked, truth, public_names, graph_options);
    std::printf(
        "| %s | graph matching (the first %zu records, as many public names) | %zu | %zu | "
        "%.4f%% | – | %.1f |\n",
        label, g.records, g.guesses, g.reidentified, 100 * g.rate(), Seconds(t0));
    // The strongest attacker of the published attack: a plaintext list holding exactly the
    // people encoded (a staff list, say), only not which encoding is whose.
    t0 = Clock::now();
    const AttackResult o = GraphMatchingAttack(attacked, truth, truth, graph_options);
    std::printf(
        "| %s | graph matching, the attacker holding the same %zu people's names | %zu | %zu | "
        "%.4f%% | – | %.1f |\n",
        label, o.records, o.guesses, o.reidentified, 100 * o.rate(), Seconds(t0));
    if (hardened_run) {
      hardened_attack = std::max({hardened_attack, f.rate(), p.rate(), g.rate(), o.rate()});
    }
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
  return hardened_attack;
}

// Every figure the closing table sets beside its target, from one run.
struct RunFigures {
  KernelFigures kernel;
  size_t subjects = 0, index = 0;
  double encode_s = 0, bulk_s = 0;
  long e2e_rss = 0;
  size_t above = 0, kept = 0;  // KeptByBlocking
  double screen_p99 = 0;
  double chosen = 0;
  Accuracy accuracy, harsh;
  double harsh_s = 0;
  NodeFigures node;
  std::optional<double> hardened_attack;  // when the attacks ran
};

// One line of the closing table: a figure beside its target.
struct Target {
  std::string measure, result, target;
  bool met;
};

void PrintTargets(const RunFigures& r, int threads) {
  const auto f3 = [](double x) { return absl::StrFormat("%.3f", x); };
  std::vector<Target> targets = {
      {absl::StrCat("kernel (", r.kernel.best, ") against the reference, one core"),
       absl::StrFormat("%.2f x streaming, %.2f x tiled", r.kernel.x_streaming, r.kernel.x_tiled),
       ">= 3 x", r.kernel.x_streaming >= 3 || r.kernel.x_tiled >= 3},
      {absl::StrFormat("%zu x %zu end to end, %d threads", r.subjects, r.index, threads),
       absl::StrFormat("encode %.0f s + screen %.0f s = %.0f s, peak RSS %ld MiB", r.encode_s,
                       r.bulk_s, r.encode_s + r.bulk_s, r.e2e_rss),
       "<= 180 s, 2,048 MiB", r.encode_s + r.bulk_s <= 180 && r.e2e_rss <= 2048},
      {"true pairs at or above the threshold kept by the blocking",
       absl::StrFormat("%.2f%% (%zu of %zu)", r.above ? 100.0 * r.kept / r.above : 0, r.kept,
                       r.above),
       ">= 99.5%", r.above == 0 || 1.0 * r.kept / r.above >= 0.995},
      {"one subject screened on arrival, p99", absl::StrFormat("%.2f ms", r.screen_p99), "<= 10 ms",
       r.screen_p99 <= 10},
      {absl::StrFormat("precision / recall at %.3f, the project's error model", r.chosen),
       absl::StrCat(f3(r.accuracy.precision), " / ", f3(r.accuracy.recall)), ">= 0.95 / 0.95",
       r.accuracy.precision >= 0.95 && r.accuracy.recall >= 0.95},
      {absl::StrFormat("precision / recall at %.3f, the harsher model (screen %.0f s)", r.chosen,
                       r.harsh_s),
       absl::StrCat(f3(r.harsh.precision), " / ", f3(r.harsh.recall)), ">= 0.95 / 0.95",
       r.harsh.precision >= 0.95 && r.harsh.recall >= 0.95},
      {absl::StrFormat("a write during a %zu-record upload and re-screen of %lld subjects, p99",
                       r.index, static_cast<long long>(r.node.rescreened)),
       r.node.ok ? absl::StrFormat("%.1f ms (%zu writes, max %.1f ms)", r.node.p99_ms,
                                   r.node.writes, r.node.max_ms)
                 : std::string("did not run"),
       "<= 100 ms", r.node.ok && r.node.p99_ms <= 100},
  };
  if (r.hardened_attack) {
    targets.push_back({"re-identified by the best attack, hardened encodings",
                       absl::StrFormat("%.4f%%", 100 * *r.hardened_attack), "<= 1%",
                       *r.hardened_attack <= 0.01});
  }
  std::printf(
      "\n## Every figure beside its target (this run)\n\n| measure | result | target | met "
      "|\n|---|---|---|---|\n");
  for (const Target& t : targets) {
    std::printf("| %s | %s | %s | %s |\n", t.measure.c_str(), t.result.c_str(), t.target.c_str(),
                t.met ? "yes" : "no");
  }
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

  RunFigures r;
  const linkage::Hardening hardened = flags.hardening;
  const linkage::Encoder enc = *linkage::Encoder::Create(key, hardened);
  const linkage::Encoder plain = *linkage::Encoder::Create(key, linkage::Hardening::None());
  start = Clock::now();
  const std::vector<Filter> index = EncodeAll(
      enc, pop.index, [](const synth::IndexPerson& p) { return p.fields; }, flags.threads);
  const SubjectEncodings subjects = EncodeSubjects(enc, pop.subjects, flags.threads);
  r.encode_s = Seconds(start);
  r.subjects = subjects.size();
  r.index = index.size();
  std::printf(
      "Encoded %zu people in %.1f s on %d threads (%.0f per second per thread); "
      "hardening: salt with decade of birth %s, flip probability %.3f; %zu subject encodings "
      "(those without a date of birth under every decade too; those with one under %d "
      "neighbouring decades either side).\n",
      index.size() + subjects.size(), r.encode_s, flags.threads,
      (index.size() + subjects.size()) / r.encode_s / flags.threads,
      hardened.salt_with_birth_decade ? "on" : "off", hardened.flip_probability,
      subjects.flat.size(), hardened.neighbour_decades);

  r.kernel = KernelSection(index, subjects.primary, flags);

  const linkage::BlockingParams blocking{flags.tables, flags.bits, 0x5a4c00b10c};
  const linkage::BlockingKeys keys(blocking);
  const std::vector<Hit> hits = EndToEnd(subjects, index, flags, blocking, &r.bulk_s);
  r.e2e_rss = PeakRssMib();

  r.chosen = 0.8;
  r.accuracy = AccuracySection(pop, index, subjects, hits, keys, /*choose=*/true, &r.chosen);
  std::tie(r.above, r.kept) = KeptByBlocking(pop, subjects, index, keys, r.chosen);
  const uint32_t chosen_t = static_cast<uint32_t>(r.chosen * 1000 + 0.5);

  const linkage::ScreeningIndex screening = linkage::ScreeningIndex::Build(index);
  r.screen_p99 = ScreenSection(screening, subjects, chosen_t, flags);

  std::printf(
      "\n## Exact screening (no blocking), hardened and unhardened encodings\n\n"
      "| encoding | threshold | person links | recall | hard negatives | hit on the "
      "namesake |\n|---|---:|---:|---:|---:|---:|\n");
  ExactRecall("hardened (shipped)", pop, index, enc, r.chosen, flags.threads);
  const std::vector<Filter> plain_index = EncodeAll(
      plain, pop.index, [](const synth::IndexPerson& p) { return p.fields; }, flags.threads);
  ExactRecall("unhardened", pop, plain_index, plain, r.chosen, flags.threads);

  r.node = NodeSection(index, subjects, flags.node_subjects, chosen_t, flags.threads);

  // The same index against subjects written down with a harsher error model than the one the
  // threshold was chosen on, at that threshold.
  {
    synth::PopulationParams hp = params;
    hp.errors = synth::ErrorModel::Harsh();
    const synth::Population hpop = synth::Generate(hp);
    for (size_t i = 0; i < pop.index.size(); ++i) {
      if (hpop.index[i].fields.date_of_birth != pop.index[i].fields.date_of_birth ||
          hpop.index[i].fields.surname != pop.index[i].fields.surname) {
        std::fprintf(stderr, "the harsher model's index differs from the first at %zu\n", i);
        return 1;
      }
    }
    std::printf("\n# The harsher error model, the same index and threshold\n\nError model: %s.\n",
                synth::DescribeErrorModel(hp.errors).c_str());
    const SubjectEncodings hsubjects = EncodeSubjects(enc, hpop.subjects, flags.threads);
    const std::vector<Hit> hhits = EndToEnd(hsubjects, index, flags, blocking, &r.harsh_s);
    r.harsh = AccuracySection(hpop, index, hsubjects, hhits, keys, /*choose=*/false, &r.chosen);
    RuleCeilingSection(CollectCandidates(pop, index, subjects, hits),
                       CollectCandidates(hpop, index, hsubjects, hhits));
  }

  if (flags.attacks) r.hardened_attack = AttackSection(pop, index, plain_index, flags);
  std::printf("\nPeak RSS %ld MiB.\n", PeakRssMib());
  PrintTargets(r, flags.threads);
  return r.kernel.identical ? 0 : 1;
}

}  // namespace
}  // namespace sarloop::bench

int main(int argc, char** argv) {
  if (sarloop::PrintVersionOrHelp(
          argc, argv, "sarloop-linkage-eval",
          "usage: sarloop-linkage-eval [--index N] [--subjects M] [--threads T] [--seed S]\n"
          "       [--bulk-threshold X] [--tables L] [--bits B] [--kernel-queries Q]\n"
          "       [--screen-queries Q] [--attack-records N] [--graph-records N]\n"
          "       [--node-subjects N] [--no-attacks] [--flip-probability P]\n"
          "       [--neighbour-decades N] [--no-salt]\n\n"
          "The indirect-links "
          "screen measured in one run: kernels, screening, accuracy and attacks.\n")) {
    return 0;
  }
  return sarloop::bench::Main(argc, argv);
}
