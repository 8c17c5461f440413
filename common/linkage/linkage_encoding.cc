#include "common/linkage/linkage_encoding.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/crypto.h"
#include "common/linkage/seed_sequence.h"

namespace sarloop::linkage {
namespace {

// Bits each token sets, per field: about a quarter to a third of each field's bits are set for
// a typical UK name, date and address, where Bloom-filter similarity separates best.
constexpr int kHashesPerToken[kFieldCount] = {10, 8, 6};
constexpr FieldSpan kSpans[kFieldCount] = {{0, 8}, {8, 2}, {10, 6}};
// The cache is a speed-up only; past this many entries it starts again.
constexpr size_t kCacheLimit = 1 << 20;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// HMAC-SHA256 with the key's inner and outer states computed once, so each token costs two
// SHA-256 compressions and no key schedule.
class Hmac {
 public:
  explicit Hmac(absl::string_view key) : inner_(EVP_MD_CTX_new()), outer_(EVP_MD_CTX_new()) {
    unsigned char block[64] = {};
    std::memcpy(block, key.data(), std::min<size_t>(key.size(), sizeof block));
    unsigned char ipad[64], opad[64];
    for (int i = 0; i < 64; ++i) {
      ipad[i] = block[i] ^ 0x36;
      opad[i] = block[i] ^ 0x5c;
    }
    EVP_DigestInit_ex(inner_.get(), Sha256(), nullptr);
    EVP_DigestUpdate(inner_.get(), ipad, sizeof ipad);
    EVP_DigestInit_ex(outer_.get(), Sha256(), nullptr);
    EVP_DigestUpdate(outer_.get(), opad, sizeof opad);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
  }
  Hmac(const Hmac& other) : inner_(EVP_MD_CTX_new()), outer_(EVP_MD_CTX_new()) {
    EVP_MD_CTX_copy_ex(inner_.get(), other.inner_.get());
    EVP_MD_CTX_copy_ex(outer_.get(), other.outer_.get());
  }

  std::array<unsigned char, 32> Mac(absl::string_view a, absl::string_view b = {}) const {
    if (!work_) work_.reset(EVP_MD_CTX_new());
    std::array<unsigned char, 32> out;
    unsigned int len = 0;
    EVP_MD_CTX_copy_ex(work_.get(), inner_.get());
    EVP_DigestUpdate(work_.get(), a.data(), a.size());
    EVP_DigestUpdate(work_.get(), b.data(), b.size());
    EVP_DigestFinal_ex(work_.get(), out.data(), &len);
    EVP_MD_CTX_copy_ex(work_.get(), outer_.get());
    EVP_DigestUpdate(work_.get(), out.data(), out.size());
    EVP_DigestFinal_ex(work_.get(), out.data(), &len);
    return out;
  }

 private:
  MdCtx inner_, outer_;
  mutable MdCtx work_;
};

std::string DeriveKey(absl::string_view key, absl::string_view label) {
  return HmacSha256(key, absl::StrCat("sarloop linkage v1 ", label));
}

std::vector<std::string> Tokens(absl::string_view normalised) {
  return absl::StrSplit(normalised, ' ', absl::SkipEmpty());
}

// Padded bigrams: "_J", "JO", "OH", "HN", "N_".
void AddBigrams(absl::string_view token, absl::string_view tag, std::vector<std::string>* out) {
  const std::string padded = absl::StrCat("_", token, "_");
  for (size_t i = 0; i + 1 < padded.size(); ++i) {
    out->push_back(absl::StrCat(tag, padded.substr(i, 2)));
  }
}

const absl::flat_hash_map<std::string, std::string>& Abbreviations() {
  static const auto* map = new absl::flat_hash_map<std::string, std::string>{
      {"ST", "STREET"},   {"RD", "ROAD"},      {"AVE", "AVENUE"},    {"AV", "AVENUE"},
      {"LN", "LANE"},     {"DR", "DRIVE"},     {"CL", "CLOSE"},      {"CRES", "CRESCENT"},
      {"CT", "COURT"},    {"PL", "PLACE"},     {"SQ", "SQUARE"},     {"GDNS", "GARDENS"},
      {"TER", "TERRACE"}, {"TERR", "TERRACE"}, {"GRN", "GREEN"},     {"PK", "PARK"},
      {"HSE", "HOUSE"},   {"FLT", "FLAT"},     {"WY", "WAY"},        {"GRO", "GROVE"},
      {"MT", "MOUNT"},    {"UPR", "UPPER"},    {"LWR", "LOWER"},     {"NTH", "NORTH"},
      {"STH", "SOUTH"},   {"CRT", "COURT"},    {"BLVD", "BOULEVARD"}};
  return *map;
}

std::string NormaliseAddress(absl::string_view address) {
  std::string s;
  s.reserve(address.size());
  for (char c : address) {
    const unsigned char u = static_cast<unsigned char>(c);
    s.push_back(absl::ascii_isalnum(u) ? static_cast<char>(absl::ascii_toupper(u)) : ' ');
  }
  std::vector<std::string> out;
  for (std::string& t : Tokens(s)) {
    const auto it = Abbreviations().find(t);
    out.push_back(it == Abbreviations().end() ? std::move(t) : it->second);
  }
  return absl::StrJoin(out, " ");
}

std::string NormalisePostcode(absl::string_view postcode) {
  std::string s;
  for (char c : postcode) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u)) s.push_back(static_cast<char>(absl::ascii_toupper(u)));
  }
  return s;
}

struct Date {
  int year = 0, month = 0, day = 0;
};

absl::StatusOr<Date> ParseDate(absl::string_view s) {
  const auto bad = [] {
    return absl::InvalidArgumentError("date_of_birth: must be a valid date, YYYY-MM-DD");
  };
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return bad();
  Date d;
  if (!absl::SimpleAtoi(s.substr(0, 4), &d.year) || !absl::SimpleAtoi(s.substr(5, 2), &d.month) ||
      !absl::SimpleAtoi(s.substr(8, 2), &d.day)) {
    return bad();
  }
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (d.year < 1850 || d.year > 2200 || d.month < 1 || d.month > 12 || d.day < 1 ||
      d.day > kDays[d.month - 1]) {
    return bad();
  }
  const bool leap = (d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0;
  if (d.month == 2 && d.day == 29 && !leap) return bad();
  return d;
}

// A UK postcode at the end of a free-text address ("..., Norwich NR3 1AB" or "...NR31AB"): moves
// it to `postcode`, so addresses written either way encode alike.
bool IsInward(absl::string_view t) {
  return t.size() == 3 && absl::ascii_isdigit(static_cast<unsigned char>(t[0])) &&
         absl::ascii_isalpha(static_cast<unsigned char>(t[1])) &&
         absl::ascii_isalpha(static_cast<unsigned char>(t[2]));
}
bool IsOutward(absl::string_view t) {
  if (t.size() < 2 || t.size() > 4 || !absl::ascii_isalpha(static_cast<unsigned char>(t[0]))) {
    return false;
  }
  return std::any_of(t.begin(), t.end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); });
}
void ExtractPostcode(std::string* address, std::string* postcode) {
  std::vector<std::string> tokens = Tokens(NormaliseAddress(*address));
  if (tokens.size() >= 2 && IsInward(tokens.back()) && IsOutward(tokens[tokens.size() - 2])) {
    *postcode = absl::StrCat(tokens[tokens.size() - 2], tokens.back());
    tokens.resize(tokens.size() - 2);
  } else if (!tokens.empty() && tokens.back().size() >= 5 && tokens.back().size() <= 7 &&
             IsInward(absl::string_view(tokens.back()).substr(tokens.back().size() - 3)) &&
             IsOutward(absl::string_view(tokens.back()).substr(0, tokens.back().size() - 3))) {
    *postcode = tokens.back();
    tokens.pop_back();
  } else {
    return;
  }
  *address = absl::StrJoin(tokens, " ");
}

// A person as tokens per field, plus the salt (the decade of birth, or empty).
struct Tokenised {
  std::vector<std::string> tokens[kFieldCount];
  std::string salt;
};

std::string DecadeSalt(int year) { return absl::StrCat("D:", year / 10 * 10); }

absl::StatusOr<Tokenised> Tokenise(const PersonFields& p) {
  Tokenised t;
  std::vector<std::string> names =
      Tokens(NormaliseName(absl::StrCat(p.given_names, " ", p.surname)));
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) AddBigrams(n, "", &t.tokens[0]);

  if (!p.date_of_birth.empty()) {
    absl::StatusOr<Date> d = ParseDate(p.date_of_birth);
    if (!d.ok()) return d.status();
    const std::string y = absl::StrCat(d->year);
    auto& dob = t.tokens[1];
    // One token for the year and four for day and month, so that people born in the same year
    // share little of this field; day and month as an unordered pair and as numbers, so a swap
    // changes nothing and a wrong digit keeps some of it.
    const int lo = std::min(d->day, d->month), hi = std::max(d->day, d->month);
    dob.push_back(absl::StrCat("Y:", y));
    dob.push_back(absl::StrCat("DM:", lo, "/", hi));
    dob.push_back(absl::StrCat("YDM:", y, "/", lo, "/", hi));
    dob.push_back(absl::StrCat("N:", d->day));
    dob.push_back(absl::StrCat("N:", d->month));
    t.salt = DecadeSalt(d->year);
  }

  std::string address_text = p.address, postcode_text = p.postcode;
  if (postcode_text.empty()) ExtractPostcode(&address_text, &postcode_text);
  const std::string address = NormaliseAddress(address_text);
  bool number_seen = false;
  for (const std::string& token : Tokens(address)) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(token[0]))) {
      // The house number is what tells neighbours apart, so it carries the weight of four
      // tokens.
      if (!number_seen) {
        for (int i = 0; i < 4; ++i) t.tokens[2].push_back(absl::StrCat("H", i, ":", token));
      }
      number_seen = true;
      continue;
    }
    AddBigrams(token, "", &t.tokens[2]);
  }
  const std::string postcode = NormalisePostcode(postcode_text);
  if (postcode.size() >= 5 && postcode.size() <= 7) {
    const std::string outward = postcode.substr(0, postcode.size() - 3);
    t.tokens[2].push_back(absl::StrCat("PC:", postcode));
    t.tokens[2].push_back(absl::StrCat("PO:", outward));
    t.tokens[2].push_back(absl::StrCat("PS:", outward, postcode.substr(postcode.size() - 3, 1)));
  } else if (!postcode.empty()) {
    t.tokens[2].push_back(absl::StrCat("PC:", postcode));
  }
  if (t.tokens[0].empty() && t.tokens[1].empty() && t.tokens[2].empty()) {
    return absl::InvalidArgumentError(
        "person: at least one of given_names, surname, date_of_birth, address or postcode is "
        "required");
  }
  return t;
}

}  // namespace

struct Encoder::State {
  std::string key;
  Hardening hardening;
  std::vector<Hmac> field_macs;
  std::unique_ptr<Hmac> flip_mac;
  // (field, salt, token) -> the token's bit positions within its field.
  absl::flat_hash_map<std::string, std::array<uint16_t, 16>> cache;
};

namespace {

// The filter for tokenised fields under `salt`. Each field's flips come from a stream seeded by a
// keyed digest of that field's tokens and salt only, so a field that reads the same on both
// sides encodes the same even when the others differ.
Filter EncodeTokens(Encoder::State& state, const Tokenised& t, absl::string_view record_salt) {
  Filter filter;
  const bool salted = state.hardening.salt_with_birth_decade;
  const double p = state.hardening.flip_probability;
  for (int f = 0; f < kFieldCount; ++f) {
    if (t.tokens[f].empty()) continue;
    const FieldSpan span = kSpans[f];
    const unsigned field_bits = static_cast<unsigned>(span.words) * 64;
    // The date of birth carries its own year; salting it would add nothing.
    const absl::string_view salt = (salted && f != 1) ? record_salt : "";
    for (const std::string& token : t.tokens[f]) {
      std::string cache_key = absl::StrCat(f, "\x1f", salt, "\x1f", token);
      auto it = state.cache.find(cache_key);
      if (it == state.cache.end()) {
        if (state.cache.size() >= kCacheLimit) state.cache.clear();
        const auto mac = state.field_macs[f].Mac(absl::StrCat(salt, "\x1f"), token);
        std::array<uint16_t, 16> positions;
        for (int i = 0; i < 16; ++i) {
          positions[i] = static_cast<uint16_t>((mac[2 * i] << 8 | mac[2 * i + 1]) % field_bits);
        }
        it = state.cache.emplace(std::move(cache_key), positions).first;
      }
      for (int i = 0; i < kHashesPerToken[f]; ++i) {
        const unsigned bit = it->second[i];
        filter.w[span.first_word + bit / 64] |= uint64_t{1} << (bit % 64);
      }
    }
    if (p <= 0) continue;
    // Gaps between flipped bits are geometric; only a key holder can predict the stream.
    const auto seed_bytes = state.flip_mac->Mac(absl::StrCat(f, "\x1f", salt, "\x1f"),
                                                absl::StrJoin(t.tokens[f], "\x1e"));
    std::array<uint32_t, 8> seed_words;
    std::memcpy(seed_words.data(), seed_bytes.data(), 32);
    const SeedSequence seq(seed_words);
    std::mt19937_64 rng(seq);
    const double log_q = std::log1p(-p);
    for (int64_t bit = -1;;) {
      const double u = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;
      const double gap = std::floor(std::log(u) / log_q);
      if (gap >= field_bits) break;  // before the cast: tiny probabilities give huge gaps
      bit += 1 + static_cast<int64_t>(gap);
      if (bit >= field_bits) break;
      filter.w[span.first_word + bit / 64] ^= uint64_t{1} << (bit % 64);
    }
  }
  return filter;
}

}  // namespace

absl::StatusOr<Encoder> Encoder::Create(absl::string_view key, Hardening hardening) {
  if (key.size() != kKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("linkage key: must be ", kKeyBytes, " bytes, got ", key.size()));
  }
  if (!(hardening.flip_probability >= 0.0 && hardening.flip_probability <= 0.25)) {
    return absl::InvalidArgumentError("flip_probability: must be between 0 and 0.25");
  }
  auto state = std::make_unique<State>();
  state->key = std::string(key);
  state->hardening = hardening;
  for (int f = 0; f < kFieldCount; ++f) {
    const std::string k = DeriveKey(key, absl::StrCat("field ", FieldName(static_cast<Field>(f))));
    state->field_macs.emplace_back(k);
  }
  state->flip_mac = std::make_unique<Hmac>(DeriveKey(key, "flips"));
  return Encoder(std::move(state));
}

Encoder::Encoder(std::unique_ptr<State> state) : state_(std::move(state)) {}
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;
Encoder::~Encoder() {
  if (state_) OPENSSL_cleanse(state_->key.data(), state_->key.size());
}

Encoder Encoder::Clone() const { return *Create(state_->key, state_->hardening); }

const Hardening& Encoder::hardening() const { return state_->hardening; }

absl::StatusOr<Filter> Encoder::Encode(const PersonFields& person) {
  absl::StatusOr<Tokenised> t = Tokenise(person);
  if (!t.ok()) return t.status();
  return EncodeTokens(*state_, *t, t->salt);
}

absl::StatusOr<std::vector<Filter>> Encoder::EncodeForScreening(const PersonFields& person) {
  absl::StatusOr<Tokenised> t = Tokenise(person);
  if (!t.ok()) return t.status();
  std::vector<Filter> out{EncodeTokens(*state_, *t, t->salt)};
  if (!state_->hardening.salt_with_birth_decade) return out;
  if (t->salt.empty()) {
    for (int decade : kScreenedDecades) {
      out.push_back(EncodeTokens(*state_, *t, DecadeSalt(decade)));
    }
  } else if (int decade = 0; absl::SimpleAtoi(absl::string_view(t->salt).substr(2), &decade)) {
    for (int k = 1; k <= state_->hardening.neighbour_decades; ++k) {
      out.push_back(EncodeTokens(*state_, *t, DecadeSalt(decade - 10 * k)));
      out.push_back(EncodeTokens(*state_, *t, DecadeSalt(decade + 10 * k)));
    }
  }
  return out;
}

FieldSpan SpanOf(Field field) { return kSpans[static_cast<int>(field)]; }

absl::string_view FieldName(Field field) {
  switch (field) {
    case Field::kName:
      return "name";
    case Field::kDateOfBirth:
      return "date_of_birth";
    case Field::kAddress:
      return "address";
  }
  return "unknown";
}

std::string NormaliseName(absl::string_view name) {
  std::string out;
  bool space = true;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalpha(u)) {
      out.push_back(static_cast<char>(absl::ascii_toupper(u)));
      space = false;
    } else if (c == '\'' || c == '.') {
      // O'Brien and St. John keep their letters together.
    } else if (!space) {
      out.push_back(' ');
      space = true;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

int Popcount(const Filter& f) {
  int n = 0;
  for (uint64_t w : f.w) n += std::popcount(w);
  return n;
}

int Popcount(const Filter& f, Field field) {
  const FieldSpan s = SpanOf(field);
  int n = 0;
  for (int i = 0; i < s.words; ++i) n += std::popcount(f.w[s.first_word + i]);
  return n;
}

namespace {
double DiceOver(const Filter& a, const Filter& b, int first, int words) {
  int both = 0, na = 0, nb = 0;
  for (int i = first; i < first + words; ++i) {
    both += std::popcount(a.w[i] & b.w[i]);
    na += std::popcount(a.w[i]);
    nb += std::popcount(b.w[i]);
  }
  return na + nb == 0 ? 0.0 : 2.0 * both / (na + nb);
}
}  // namespace

double Dice(const Filter& a, const Filter& b) { return DiceOver(a, b, 0, kFilterWords); }

double Dice(const Filter& a, const Filter& b, Field field) {
  const FieldSpan s = SpanOf(field);
  return DiceOver(a, b, s.first_word, s.words);
}

std::string ToBytes(const Filter& f) {
  std::string out(kFilterBytes, '\0');
  for (int i = 0; i < kFilterWords; ++i) {
    for (int b = 0; b < 8; ++b) out[i * 8 + b] = static_cast<char>(f.w[i] >> (8 * b));
  }
  return out;
}

absl::StatusOr<Filter> FromBytes(absl::string_view bytes) {
  if (bytes.size() != kFilterBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("encoding: must be ", kFilterBytes, " bytes, got ", bytes.size()));
  }
  Filter f;
  for (int i = 0; i < kFilterWords; ++i) {
    uint64_t w = 0;
    for (int b = 7; b >= 0; --b) w = w << 8 | static_cast<unsigned char>(bytes[i * 8 + b]);
    f.w[i] = w;
  }
  return f;
}

}  // namespace sarloop::linkage
