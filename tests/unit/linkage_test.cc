// The indirect-links encoder, comparison kernels and screening index.
#include <random>
#include <set>

#include "common/linkage/linkage_encoding.h"
#include "common/linkage/seed_sequence.h"
#include "gtest/gtest.h"
#include "services/linkage/kernel.h"
#include "services/linkage/matcher.h"
#include "tools/synth/persons.h"

namespace sarloop::linkage {
namespace {

const std::string kKey(32, 'k');
const std::string kOtherKey(32, 'o');

PersonFields Alice() {
  return {"Alice Mary", "O'Brien", "1984-03-12", "12 Church Road, Norwich", "NR3 1AB"};
}

Encoder Make(const std::string& key = kKey, Hardening h = {}) {
  absl::StatusOr<Encoder> e = Encoder::Create(key, h);
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(*e);
}

TEST(LinkageEncoder, SameInputSameFilterAcrossEncoders) {
  Encoder a = Make();
  Encoder b = Make();
  Encoder c = a.Clone();
  const Filter fa = *a.Encode(Alice());
  EXPECT_EQ(fa, *a.Encode(Alice()));  // from the cache
  EXPECT_EQ(fa, *b.Encode(Alice()));
  EXPECT_EQ(fa, *c.Encode(Alice()));
  EXPECT_GT(Popcount(fa, Field::kName), 60);
  EXPECT_GT(Popcount(fa, Field::kDateOfBirth), 10);
  EXPECT_GT(Popcount(fa, Field::kAddress), 60);
}

TEST(LinkageEncoder, KeysAreSeparate) {
  for (Hardening h : {Hardening{}, Hardening::None()}) {
    const Filter a = *Make(kKey, h).Encode(Alice());
    const Filter b = *Make(kOtherKey, h).Encode(Alice());
    // Under another key the same person is no closer than two strangers.
    EXPECT_LT(Dice(a, b), 0.5) << h.salt_with_birth_decade;
    for (Field f : {Field::kName, Field::kDateOfBirth, Field::kAddress}) {
      EXPECT_LT(Dice(a, b, f), 0.6) << FieldName(f);
    }
  }
}

TEST(LinkageEncoder, NormalisationAndOrderDoNotMatter) {
  Encoder e = Make(kKey, Hardening::None());
  PersonFields b = Alice();
  b.given_names = "O'BRIEN";  // name order swapped
  b.surname = "alice  mary";
  b.address = "12 CHURCH RD NORWICH";
  b.postcode = "nr31ab";
  EXPECT_EQ(*e.Encode(Alice()), *e.Encode(b));
  PersonFields swapped = Alice();
  swapped.date_of_birth = "1984-12-03";  // day and month swapped
  EXPECT_EQ(Dice(*e.Encode(Alice()), *e.Encode(swapped), Field::kDateOfBirth), 1.0);
}

TEST(LinkageEncoder, APostcodeInTheAddressCountsAsThePostcode) {
  Encoder e = Make();
  PersonFields in_address = Alice();
  in_address.address = "12 Church Road, Norwich NR3 1AB";
  in_address.postcode.clear();
  EXPECT_EQ(*e.Encode(in_address), *e.Encode(Alice()));
  in_address.address = "12 Church Road, Norwich, nr31ab";
  EXPECT_EQ(*e.Encode(in_address), *e.Encode(Alice()));
}

TEST(LinkageEncoder, SimilarPeopleScoreHighStrangersLow) {
  Encoder e = Make();
  PersonFields typo = Alice();
  typo.surname = "OBrian";
  PersonFields stranger{"Robert", "Smith", "1961-07-30", "4 Mill Lane, Leeds", "LS6 2QT"};
  const Filter a = *e.Encode(Alice());
  EXPECT_GT(Dice(a, *e.Encode(typo)), 0.8);
  EXPECT_LT(Dice(a, *e.Encode(stranger)), 0.4);
}

TEST(LinkageEncoder, SaltingSeparatesBirthDecadesButNotAWrongLastDigit) {
  PersonFields other_decade = Alice();
  other_decade.date_of_birth = "1990-03-12";
  PersonFields last_digit = Alice();
  last_digit.date_of_birth = "1987-03-12";
  Encoder salted = Make(kKey, Hardening{true, 0.0});
  Encoder plain = Make(kKey, Hardening::None());
  EXPECT_EQ(Dice(*plain.Encode(Alice()), *plain.Encode(other_decade), Field::kName), 1.0);
  EXPECT_LT(Dice(*salted.Encode(Alice()), *salted.Encode(other_decade), Field::kName), 0.5);
  EXPECT_LT(Dice(*salted.Encode(Alice()), *salted.Encode(other_decade), Field::kAddress), 0.5);
  EXPECT_EQ(Dice(*salted.Encode(Alice()), *salted.Encode(last_digit), Field::kName), 1.0);
  EXPECT_EQ(Dice(*salted.Encode(Alice()), *salted.Encode(last_digit), Field::kAddress), 1.0);
}

// The flips come from each field's own content: a typo in the address, or no address at all,
// leaves the name and date of birth bit for bit as the clean record's, with the shipped
// hardening.
TEST(LinkageEncoder, FlipsLeaveIdenticalFieldsIdentical) {
  Encoder e = Make();
  const Filter clean = *e.Encode(Alice());
  PersonFields moved = Alice();
  moved.address = "7 Elm Grove, Leeds";
  moved.postcode = "LS6 2AB";
  PersonFields no_address = Alice();
  no_address.address.clear();
  no_address.postcode.clear();
  for (const PersonFields& p : {moved, no_address}) {
    const Filter f = *e.Encode(p);
    EXPECT_EQ(Dice(clean, f, Field::kName), 1.0);
    EXPECT_EQ(Dice(clean, f, Field::kDateOfBirth), 1.0);
    EXPECT_LT(Dice(clean, f, Field::kAddress), 0.5);
  }
  // ... and a flipped pattern is still there: the name field is not the unflipped one.
  const Filter unflipped = *Make(kKey, Hardening{true, 0.0}).Encode(Alice());
  EXPECT_LT(Dice(clean, unflipped, Field::kName), 1.0);
  // An absent field stays empty: nothing in it to hide.
  EXPECT_EQ(Popcount(*e.Encode(no_address), Field::kAddress), 0);
}

// The encoder's flips come from an mt19937_64 seeded through SeedSequence, which must give
// std::seed_seq's words: for every output length the engines ask for and the ones where the
// standard's constants change, short and long seeds, and the engine's stream after it.
TEST(SeedSequence, GivesTheStandardSeedSeqsWords) {
  std::mt19937 words(20261206);
  for (size_t seed_size : {0, 1, 3, 8, 9, 700}) {
    for (size_t n : {1, 2, 5, 6, 7, 38, 39, 67, 68, 622, 623, 624, 625, 1000}) {
      std::vector<uint32_t> seed(seed_size);
      for (uint32_t& w : seed) w = static_cast<uint32_t>(words());
      std::seed_seq standard(seed.begin(), seed.end());
      std::vector<uint32_t> want(n), got(n);
      standard.generate(want.begin(), want.end());
      SeedSequence(seed).generate(got.begin(), got.end());
      ASSERT_EQ(got, want) << "seed of " << seed_size << " words, " << n << " out";
      std::vector<uint64_t> wide(n);  // through the copying path
      SeedSequence(seed).generate(wide.begin(), wide.end());
      EXPECT_TRUE(std::equal(wide.begin(), wide.end(), want.begin()));
    }
  }
  std::array<uint32_t, 8> seed{1, 2, 3, 4, 5, 6, 7, 0xffffffffu};
  std::seed_seq standard(seed.begin(), seed.end());
  const SeedSequence fast(seed);
  std::mt19937_64 a(standard), b(fast);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a(), b());
  EXPECT_EQ(fast.size(), 8u);
}

// FNV-1a over a filter's bytes: a short name for an encoding in a known-answer test.
uint64_t Fingerprint(const Filter& f) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : ToBytes(f)) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Forces upload encodings once and ukfiu encodes each SAR's subjects as they arrive, with
// whatever build it runs: a faster encoder must give the same bits, or identical fields stop
// matching. These are the encodings of the shipped scheme (December 6, 2026).
TEST(LinkageEncoder, EncodingsAreTheShippedSchemesBitForBit) {
  Encoder e = Make();
  PersonFields no_dob = Alice();
  no_dob.date_of_birth.clear();
  PersonFields name_only{"Jon", "Smith", "", "", ""};
  std::vector<uint64_t> got;
  for (const PersonFields& p : {Alice(), no_dob, name_only}) {
    const std::vector<Filter> screened = *e.EncodeForScreening(p);
    for (const Filter& f : screened) got.push_back(Fingerprint(f));
  }
  got.push_back(Fingerprint(*Make(kOtherKey, Hardening{true, 0.25}).Encode(Alice())));
  const std::vector<uint64_t> want = {
      12221793979821335555ull, 12740224728017776095ull, 1988225326679067988ull,
      2965573710858801585ull,  9786151287273249680ull,  9483168282867334797ull,
      1139262373287188626ull,  3442112300430957526ull,  17973036231303955615ull,
      12549371816756395857ull, 1417037101714568519ull,  8402748048608793777ull,
      17978079838818395383ull, 7108362913002878767ull,  210710560705809444ull,
      6114945040302598973ull,  13783727403683876846ull, 12990209930203945968ull,
      15096296720242959383ull, 516217202964410102ull,   1037328511602717807ull,
      9717742727002426449ull,  16250934199486225737ull, 9130156436179777077ull};
  EXPECT_EQ(got, want);
}

// How many of a subject's screening encodings carry exactly the name and address bits of Alice's
// index record with date of birth `dob` (the salt is what decides it).
int ExactNameAndAddress(Encoder& e, const std::vector<Filter>& screened, const char* dob) {
  PersonFields indexed = Alice();
  indexed.date_of_birth = dob;
  const Filter record = *e.Encode(indexed);
  int n = 0;
  for (const Filter& f : screened) {
    n += Dice(f, record, Field::kName) == 1.0 && Dice(f, record, Field::kAddress) == 1.0;
  }
  return n;
}

// A subject without a date of birth is screened under every decade an index record can have:
// one of the encodings carries exactly the name and address bits of the same person's index
// record, whatever its decade; a subject with one gets a single encoding, Encode's.
TEST(LinkageEncoder, ScreeningEncodingsCoverAMissingDateOfBirth) {
  Encoder e = Make();
  PersonFields no_dob = Alice();
  no_dob.date_of_birth.clear();
  const std::vector<Filter> screened = *e.EncodeForScreening(no_dob);
  ASSERT_EQ(screened.size(), static_cast<size_t>(kMaxSubjectEncodings));
  EXPECT_EQ(screened[0], *e.Encode(no_dob));
  for (const char* dob : {"1923-01-02", "1961-07-30", "1984-03-12", "2011-12-01"}) {
    EXPECT_EQ(ExactNameAndAddress(e, screened, dob), 1) << dob;
  }
  const std::vector<Filter> with_dob = *e.EncodeForScreening(Alice());
  ASSERT_EQ(with_dob.size(), 1u);
  EXPECT_EQ(with_dob[0], *e.Encode(Alice()));
  Encoder plain = Make(kKey, Hardening::None());
  EXPECT_EQ(plain.EncodeForScreening(no_dob)->size(), 1u);
  EXPECT_EQ(e.EncodeForScreening(PersonFields{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Asked for, a subject with a date of birth is also screened under the decades either side of
// its own: a record whose year has a wrong tens digit then shares one encoding's name and address
// bits exactly, and a record two decades away shares none.
TEST(LinkageEncoder, NeighbouringDecadesCoverAWrongTensDigit) {
  Hardening h;
  h.neighbour_decades = 1;
  Encoder e = Make(kKey, h);
  const std::vector<Filter> screened = *e.EncodeForScreening(Alice());  // born 1984
  ASSERT_EQ(screened.size(), 3u);
  EXPECT_EQ(screened[0], *e.Encode(Alice()));
  EXPECT_EQ(ExactNameAndAddress(e, screened, "1974-03-12"), 1);
  EXPECT_EQ(ExactNameAndAddress(e, screened, "1994-03-12"), 1);
  EXPECT_EQ(ExactNameAndAddress(e, screened, "1964-03-12"), 0);
  // A subject without a date of birth is screened under every decade, as without the option.
  PersonFields no_dob = Alice();
  no_dob.date_of_birth.clear();
  EXPECT_EQ(e.EncodeForScreening(no_dob)->size(), static_cast<size_t>(kMaxSubjectEncodings));
}

TEST(LinkageEncoder, FlipsAreKeyedAndBounded) {
  Encoder noisy = Make(kKey, Hardening{false, 0.02});
  Encoder plain = Make(kKey, Hardening::None());
  const Filter n = *noisy.Encode(Alice());
  const Filter p = *plain.Encode(Alice());
  int flipped = 0;
  for (int i = 0; i < kFilterWords; ++i) flipped += std::popcount(n.w[i] ^ p.w[i]);
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 60);
  EXPECT_NE(n, *Make(kOtherKey, Hardening{false, 0.02}).Encode(Alice()));
}

TEST(LinkageEncoder, RefusesBadInput) {
  EXPECT_EQ(Encoder::Create("short").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Encoder::Create(kKey, Hardening{true, 0.5}).ok());
  Encoder e = Make();
  PersonFields bad = Alice();
  bad.date_of_birth = "1984-02-30";
  const absl::Status s = e.Encode(bad).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("date_of_birth"), std::string::npos);
  EXPECT_FALSE(e.Encode(PersonFields{}).ok());
}

TEST(LinkageEncoder, BytesRoundTrip) {
  const Filter f = *Make().Encode(Alice());
  const std::string bytes = ToBytes(f);
  ASSERT_EQ(bytes.size(), kFilterBytes);
  EXPECT_EQ(*FromBytes(bytes), f);
  EXPECT_FALSE(FromBytes(bytes.substr(1)).ok());
}

// Random filters at roughly the density of real encodings, plus near-copies so that some pairs
// pass any threshold, and some with a field missing.
std::vector<Filter> RandomFilters(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Filter> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (i % 5 == 4) {
      out[i] = out[i - 1];
      for (int flips = 0; flips < static_cast<int>(rng() % 80); ++flips) {
        const int bit = static_cast<int>(rng() % kFilterBits);
        out[i].w[bit / 64] ^= uint64_t{1} << (bit % 64);
      }
    } else {
      for (uint64_t& w : out[i].w) w = rng() & rng();  // about a quarter of bits set
    }
    if (i % 11 == 3) {  // no date of birth or no address
      const FieldSpan span = SpanOf(i % 2 ? Field::kDateOfBirth : Field::kAddress);
      for (int w = 0; w < span.words; ++w) out[i].w[span.first_word + w] = 0;
    }
  }
  return out;
}

struct Popcounts {
  std::vector<uint32_t> field[kFieldCount];
  Popcounts(const std::vector<Filter>& filters, size_t slots) {
    for (int f = 0; f < kFieldCount; ++f) {
      for (const Filter& x : filters) field[f].push_back(Popcount(x, static_cast<Field>(f)));
      field[f].resize(slots, 0);
    }
  }
  SlotPopcounts Slots() const { return {{field[0].data(), field[1].data(), field[2].data()}}; }
};

void Counts(const Filter& a, const Filter& b, uint32_t out[kFieldCount]) {
  for (int f = 0; f < kFieldCount; ++f) {
    const FieldSpan s = SpanOf(static_cast<Field>(f));
    out[f] = 0;
    for (int w = s.first_word; w < s.first_word + s.words; ++w) {
      out[f] += std::popcount(a.w[w] & b.w[w]);
    }
  }
}

TEST(LinkageKernel, EveryKernelMatchesTheReference) {
  const std::vector<Filter> records = RandomFilters(1003, 1);  // not a multiple of 8
  const std::vector<Filter> queries = RandomFilters(40, 2);
  std::vector<const Filter*> ptrs;
  for (const Filter& f : records) ptrs.push_back(&f);
  const size_t nblocks = (records.size() + 7) / 8;
  std::vector<Block> blocks(nblocks);
  ToBlocks(ptrs.data(), ptrs.size(), blocks.data());
  const Popcounts pops(records, nblocks * 8);

  const std::vector<Kernel> kernels = SupportedKernels();
  ASSERT_FALSE(kernels.empty());
  size_t total_hits = 0;
  for (uint32_t t : {1u, 300u, 500u, 800u, 950u}) {
    for (const Filter& f : queries) {
      const Query q = Query::From(f);
      std::vector<KernelHit> want;
      ScreenRowMajor(q, t, records.data(), pops.Slots(), records.size(), 7, &want);
      total_hits += want.size();
      for (const KernelHit& h : want) {  // the reference agrees with the rule written out
        uint32_t c[kFieldCount], r[kFieldCount];
        Counts(f, records[h.record - 7], c);
        for (int i = 0; i < kFieldCount; ++i) {
          EXPECT_EQ(h.and_count[i], c[i]);
          r[i] = pops.field[i][h.record - 7];
        }
        EXPECT_GE(Score(c, q.popcount, r) * 1000, t - 1e-6);
      }
      for (Kernel k : kernels) {
        std::vector<KernelHit> got;
        ScreenBlocks(k, q, t, blocks.data(), pops.Slots(), nblocks, 7, &got);
        ASSERT_EQ(got.size(), want.size()) << KernelName(k) << " t=" << t;
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_EQ(got[i].record, want[i].record) << KernelName(k);
          for (int fi = 0; fi < kFieldCount; ++fi) {
            EXPECT_EQ(got[i].and_count[fi], want[i].and_count[fi]) << KernelName(k);
          }
        }
      }
    }
  }
  // The thresholds span almost-everything-passes to almost-nothing-passes.
  EXPECT_GT(total_hits, queries.size() * records.size() / 2);
}

TEST(LinkageKernel, RuleIsExactAtTheBoundary) {
  // Every field has Dice exactly 0.8, so all three together give 0.8 and each two-field rule
  // 0.8 - 0.03.
  Filter q, r;
  q.w[0] = q.w[10] = (uint64_t{1} << 40) - 1;                             // 40 bits
  r.w[0] = r.w[10] = ((uint64_t{1} << 32) - 1) | (uint64_t{0xff} << 40);  // 32 shared
  q.w[8] = (uint64_t{1} << 20) - 1;                                       // 20 bits
  r.w[8] = ((uint64_t{1} << 16) - 1) | (uint64_t{0xf} << 20);             // 16 shared
  std::vector<const Filter*> ptrs = {&r};
  Block block;
  ToBlocks(ptrs.data(), 1, &block);
  const Popcounts pops({r}, 8);
  for (Kernel k : SupportedKernels()) {
    std::vector<KernelHit> at, above;
    ScreenBlocks(k, Query::From(q), 800, &block, pops.Slots(), 1, 0, &at);
    ScreenBlocks(k, Query::From(q), 801, &block, pops.Slots(), 1, 0, &above);
    EXPECT_EQ(at.size(), 1u) << KernelName(k);
    EXPECT_EQ(above.size(), 0u) << KernelName(k);
  }
}

TEST(LinkageKernel, MissingFieldsAreLeftOutNotCountedAgainst) {
  Encoder e = Make();
  PersonFields no_address = Alice();
  no_address.address.clear();
  no_address.postcode.clear();
  PersonFields moved = Alice();
  moved.address = "7 Station Road, Leeds";
  moved.postcode = "LS6 2QT";
  PersonFields name_only{"Alice Mary", "O'Brien", "", "", ""};
  const Filter rec = *e.Encode(Alice());
  const Query q_rec = Query::From(rec);
  uint32_t c[kFieldCount];
  const auto score = [&](const PersonFields& p) {
    const Query q = Query::From(*e.Encode(p));
    Counts(q.filter, rec, c);
    return Score(c, q.popcount, q_rec.popcount);
  };
  EXPECT_GT(score(no_address), 0.85);  // name + date of birth, less the penalty
  EXPECT_GT(score(moved), 0.85);
  EXPECT_LT(Dice(*e.Encode(moved), rec), 0.8);  // plain Dice would miss the move
  EXPECT_EQ(score(name_only), -1);              // a name alone never matches
}

TEST(ScreeningIndex, FindsExactlyThePairsThatMeetTheRule) {
  const std::vector<Filter> records = RandomFilters(2000, 3);
  std::vector<Filter> queries = RandomFilters(60, 4);
  for (size_t i = 0; i < 30; ++i) {  // near-copies of records
    queries[i] = records[i * 13];
    queries[i].w[i % kFilterWords] ^= 0xff00ff;
  }
  const ScreeningIndex index = ScreeningIndex::Build(records);
  size_t pruned = 0, found = 0;
  for (uint32_t t : {600u, 850u}) {
    for (uint32_t qi = 0; qi < queries.size(); ++qi) {
      const Query q = Query::From(queries[qi]);
      std::set<uint32_t> want;
      for (uint32_t r = 0; r < records.size(); ++r) {
        uint32_t c[kFieldCount], rp[kFieldCount];
        Counts(queries[qi], records[r], c);
        index.RecordPopcounts(r, rp);
        if (Meets(c, q.popcount, rp, t)) want.insert(r);
      }
      std::vector<Hit> hits;
      pruned +=
          records.size() - std::min(records.size(), index.Screen(q, qi, t, BestKernel(), &hits));
      std::set<uint32_t> got;
      for (const Hit& h : hits) {
        EXPECT_EQ(h.query, qi);
        got.insert(h.record);
      }
      found += got.size();
      EXPECT_EQ(got, want) << "query " << qi << " t=" << t;
    }
  }
  EXPECT_GT(found, 60u);
  EXPECT_GT(pruned, 0u);  // the bound does skip blocks
}

TEST(ScreeningIndex, BoundIsNeverBelowARecordInTheBox) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 20000; ++i) {
    uint32_t q[kFieldCount], lo[kFieldCount], hi[kFieldCount], r[kFieldCount], c[kFieldCount];
    for (int f = 0; f < kFieldCount; ++f) {
      q[f] = rng() % 200;
      lo[f] = rng() % 200;
      hi[f] = lo[f] + rng() % 60;
      r[f] = lo[f] + rng() % (hi[f] - lo[f] + 1);
      c[f] = std::min(q[f], r[f]);  // the best a record can do
    }
    const double score = Score(c, q, r);
    if (score < 0) continue;
    EXPECT_GE(ScoreBound(q, lo, hi), score - 1e-12);
  }
}

TEST(BulkScreen, EqualsTheIndexOnPairsThatShareABucket) {
  const std::vector<Filter> records = RandomFilters(3000, 5);
  std::vector<Filter> queries = RandomFilters(500, 6);
  // Some queries are copies of records, as real links are.
  for (size_t i = 0; i < 100; ++i) queries[i] = records[i * 7];
  const BlockingParams params{8, 10, 42};
  const BlockingKeys keys(params);
  const ScreeningIndex index = ScreeningIndex::Build(records);
  for (int threads : {1, 2}) {
    BulkStats stats;
    const std::vector<Hit> bulk =
        BulkScreen(queries, records, 700, params, threads, BestKernel(), &stats);
    std::vector<Hit> want;
    for (uint32_t q = 0; q < queries.size(); ++q) {
      std::vector<Hit> hits;
      index.Screen(Query::From(queries[q]), q, 700, BestKernel(), &hits);
      for (const Hit& h : hits) {
        if (keys.ShareBucket(queries[q], records[h.record])) want.push_back(h);
      }
    }
    std::sort(want.begin(), want.end(), [](const Hit& a, const Hit& b) {
      return a.query != b.query ? a.query < b.query : a.record < b.record;
    });
    EXPECT_EQ(bulk, want);
    EXPECT_GE(bulk.size(), 100u);
    EXPECT_LT(stats.slots_compared, uint64_t{queries.size()} * records.size());
  }
}

TEST(SyntheticPersons, DeterministicWithTruthAndErrors) {
  synth::PopulationParams params;
  params.index_size = 2000;
  params.subjects = 5000;
  params.same_person_rate = 0.2;
  const synth::Population a = synth::Generate(params);
  const synth::Population b = synth::Generate(params);
  ASSERT_EQ(a.index.size(), 2000u);
  ASSERT_EQ(a.subjects.size(), 5000u);
  size_t same = 0, with_errors = 0, family = 0;
  for (size_t i = 0; i < a.subjects.size(); ++i) {
    EXPECT_EQ(a.subjects[i].fields.given_names, b.subjects[i].fields.given_names);
    EXPECT_EQ(a.subjects[i].fields.address, b.subjects[i].fields.address);
    if (a.subjects[i].relation == synth::Relation::kSamePerson) {
      ++same;
      with_errors += !a.subjects[i].errors.empty();
    }
  }
  for (const auto& p : a.index) family += p.kind == "family";
  EXPECT_NEAR(same, 1000, 120);
  EXPECT_GT(with_errors, same / 3);
  EXPECT_GT(family, 100u);
  // Every generated person encodes.
  Encoder e = Make();
  for (const auto& s : a.subjects) ASSERT_TRUE(e.Encode(s.fields).ok()) << s.subject_ref;
  for (const auto& p : a.index) ASSERT_TRUE(e.Encode(p.fields).ok()) << p.record_id;
}

}  // namespace
}  // namespace sarloop::linkage
