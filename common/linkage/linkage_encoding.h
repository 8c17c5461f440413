// Privacy-preserving encodings of people for the indirect-links screen (issue 9, DESIGN §1).
//
// A person (names, date of birth, address) becomes one 1,024-bit Bloom filter, a "cryptographic
// long-term key" split into three fields so that a hit can say which fields matched:
//
//   words 0..7   (512 bits)  name: padded bigrams of every name token, tokens sorted so that
//                            the order of given name and surname does not matter;
//   words 8..9   (128 bits)  date of birth: the year, and the day and month as an unordered
//                            pair and as numbers, so a day/month swap encodes the same;
//   words 10..15 (384 bits)  address: bigrams of the normalised street line and town (common
//                            abbreviations expanded), the house number, postcode and its
//                            outward code and sector.
//
// Who holds what: the data holders (forces and UKFIU) share the linkage key and encode; the
// linkage service holds only encodings and never the key.
//
// Hardening, against an attacker who holds the encodings and public name statistics:
//  - keyed random hashing: each token's bit positions come from HMAC-SHA256 under a per-field
//    key derived from the linkage key (not double hashing, whose structure known attacks use);
//  - salting: name and address tokens are salted with the decade of birth, so the same name
//    encodes differently for people born in different decades and a bit pattern's frequency no
//    longer follows the name's frequency. The decade, not the year: a wrong last digit of the
//    year (the commoner year error) keeps the salt. A record without a date of birth is salted
//    with the empty string; for screening, such a subject is also encoded under every decade a
//    person in an index could be born in (EncodeForScreening), so a missing date of birth costs
//    the screen more comparisons, not the link;
//  - BLIP: each bit of a field is flipped with a small probability, from a stream keyed by the
//    linkage key and that field's own content (and salt), so a field written identically on
//    both sides encodes identically whatever else differs, while near-identical fields do not
//    share exact patterns.
// The unhardened settings (no salt, no flips) exist for the privacy evaluation's comparison.
//
// Thread-safety: an Encoder caches token positions and is not thread-safe; use one per thread
// (Clone() shares nothing mutable).
#ifndef SARLOOP_COMMON_LINKAGE_LINKAGE_ENCODING_H_
#define SARLOOP_COMMON_LINKAGE_LINKAGE_ENCODING_H_

#include <array>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sarloop::linkage {

inline constexpr int kFilterWords = 16;
inline constexpr int kFilterBits = kFilterWords * 64;
inline constexpr size_t kFilterBytes = kFilterWords * 8;
inline constexpr size_t kKeyBytes = 32;
// The decades of birth a subject without a date of birth is also encoded under: everyone a
// personnel index can hold (officers, staff and declared family, born 1920 to 2019).
inline constexpr int kScreenedDecades[] = {1920, 1930, 1940, 1950, 1960,
                                           1970, 1980, 1990, 2000, 2010};
// The most encodings one subject can have (EncodeForScreening).
inline constexpr int kMaxSubjectEncodings = 1 + std::size(kScreenedDecades);

// One encoded person. Plain 64-bit words; byte order on the wire is little-endian.
struct alignas(64) Filter {
  std::array<uint64_t, kFilterWords> w{};
  friend bool operator==(const Filter&, const Filter&) = default;
};

enum class Field : int { kName = 0, kDateOfBirth = 1, kAddress = 2 };
inline constexpr int kFieldCount = 3;
struct FieldSpan {
  int first_word;
  int words;
};
// Where a field's bits lie in a Filter.
FieldSpan SpanOf(Field field);
// "name", "date_of_birth", "address".
absl::string_view FieldName(Field field);

// What a data holder knows of a person. Every field may be empty (unknown).
struct PersonFields {
  std::string given_names;  // one or more, space separated
  std::string surname;
  std::string date_of_birth;  // YYYY-MM-DD, or empty
  std::string address;        // street line and town, free text
  // UK postcode, any spacing; when empty, a postcode ending `address` is taken from there.
  std::string postcode;
};

struct Hardening {
  bool salt_with_birth_decade = true;
  // Probability that each bit is flipped (BLIP). 0 turns it off.
  double flip_probability = 0.02;
  // A subject whose date of birth is known is also screened under this many decades either side
  // of its own (a wrong tens digit of the year), when salting is on. 0: its own decade only.
  int neighbour_decades = 0;

  static Hardening None() { return Hardening{false, 0.0}; }
};

class Encoder {
 public:
  // `key` is the shared linkage key, exactly kKeyBytes. INVALID_ARGUMENT otherwise, or when the
  // flip probability is outside [0, 0.25].
  static absl::StatusOr<Encoder> Create(absl::string_view key, Hardening hardening = {});

  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;
  ~Encoder();

  // The same person, key and hardening always give the same filter. INVALID_ARGUMENT naming the
  // field when date_of_birth is set but not a valid YYYY-MM-DD date, or when nothing is set.
  absl::StatusOr<Filter> Encode(const PersonFields& person);

  // What a screen compares for a SAR subject: Encode's filter first; then, when the date of
  // birth is unknown and salting is on, the same person under each decade in kScreenedDecades
  // (an index record's salt is its decade of birth, which the subject's side does not know), or,
  // when it is known, under the neighbouring decades Hardening::neighbour_decades asks for.
  absl::StatusOr<std::vector<Filter>> EncodeForScreening(const PersonFields& person);

  // A fresh encoder with the same key and settings and an empty cache.
  Encoder Clone() const;

  const Hardening& hardening() const;

  struct State;  // opaque: defined in the .cc

 private:
  explicit Encoder(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Upper-case letters and single spaces: what the name tokens are made of (exposed for tests
// and for the synthetic data's own checks).
std::string NormaliseName(absl::string_view name);

// Number of set bits in the whole filter and in one field.
int Popcount(const Filter& f);
int Popcount(const Filter& f, Field field);
// Dice coefficient 2|a∩b|/(|a|+|b|) over the whole filter or one field; 0 when both are empty.
double Dice(const Filter& a, const Filter& b);
double Dice(const Filter& a, const Filter& b, Field field);

// kFilterBytes little-endian bytes, and back (INVALID_ARGUMENT when the size is wrong).
std::string ToBytes(const Filter& f);
absl::StatusOr<Filter> FromBytes(absl::string_view bytes);

}  // namespace sarloop::linkage

#endif  // SARLOOP_COMMON_LINKAGE_LINKAGE_ENCODING_H_
