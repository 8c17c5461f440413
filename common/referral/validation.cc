#include "common/referral/validation.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <regex>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/base/status.h"

namespace sarloop {

namespace {

// Text as the name check compares it: NFKC with Unicode case folding (so "ß" is "ss", "Ｊａｎｅ"
// is "jane", and invisible format characters such as a zero-width space are gone), accents
// removed ("Zoë" is "zoe"), then split into runs of letters and digits. Everything else
// (spaces, punctuation, symbols) separates.
std::vector<std::string> Tokens(absl::string_view text) {
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* fold = icu::Normalizer2::getNFKCCasefoldInstance(err);
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(err);
  std::vector<std::string> tokens;
  if (U_FAILURE(err)) return tokens;
  icu::UnicodeString u = fold->normalize(
      icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), text.size())), err);
  u = nfd->normalize(u, err);
  if (U_FAILURE(err)) return tokens;
  std::string current;
  auto end_token = [&] {
    if (!current.empty()) tokens.push_back(std::move(current));
    current.clear();
  };
  for (int32_t i = 0; i < u.length();) {
    const UChar32 c = u.char32At(i);
    i += U16_LENGTH(c);
    if (u_charType(c) == U_NON_SPACING_MARK) continue;
    if (u_isalnum(c)) {
      icu::UnicodeString one(c);
      one.toUTF8String(current);
    } else {
      end_token();
    }
  }
  end_token();
  return tokens;
}

size_t CodePoints(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// How a free text reads to the check: its words; its words with runs of single letters joined
// ("J a n e" is "jane"); and all of it run together ("Jane.Example" is "janeexample").
struct Reading {
  std::set<std::string> words;
  std::string joined;
};

Reading Read(absl::string_view text) {
  Reading r;
  const std::vector<std::string> tokens = Tokens(text);
  std::string run;
  for (const std::string& t : tokens) {
    r.words.insert(t);
    r.joined += t;
    if (CodePoints(t) == 1) {
      run += t;
      continue;
    }
    if (CodePoints(run) > 1) r.words.insert(run);
    run.clear();
  }
  if (CodePoints(run) > 1) r.words.insert(run);
  return r;
}

std::string Joined(const std::vector<std::string>& tokens, size_t from = 0, size_t to = -1) {
  std::string out;
  for (size_t i = from; i < std::min(to, tokens.size()); ++i) out += tokens[i];
  return out;
}

// A UK postcode in `tokens` (outward code, inward code; written together or apart), run
// together: "nr12ab".
std::string Postcode(const std::vector<std::string>& tokens) {
  static const std::regex kPostcode("[a-z]{1,2}[0-9][a-z0-9]?[0-9][a-z]{2}");
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (size_t n = 1; n <= 2 && i + n <= tokens.size(); ++n) {
      const std::string candidate = Joined(tokens, i, i + n);
      if (std::regex_match(candidate, kPostcode)) return candidate;
    }
  }
  return "";
}

const char* const kMonths[] = {"january",   "february", "march",    "april",
                               "may",       "june",     "july",     "august",
                               "september", "october",  "november", "december"};

// What of the subject `s` must not appear in a text for the NCA, as a Reading would hold it. Each
// entry is a whole word (`word`) or a run of text (`run`).
struct Needles {
  std::vector<std::string> words;
  std::vector<std::string> runs;
};

Needles NeedlesOf(const v1::Subject& s) {
  Needles n;
  const std::vector<std::string> name = Tokens(s.full_name());
  // Parts shorter than three letters ("Al", "Ng") are too common in ordinary words to refuse.
  for (const std::string& part : name) {
    if (CodePoints(part) >= 3) n.words.push_back(part);
  }
  // The name run together, in its order and surname first ("JaneExample", "ExampleJane"); a short
  // one ("Al Len") would also be found across the words of ordinary text ("call enforcement").
  if (name.size() >= 2 && CodePoints(Joined(name)) >= 8) {
    n.runs.push_back(Joined(name));
    n.runs.push_back(name.back() + Joined(name, 0, name.size() - 1));
  }
  // The address: its postcode, and each line with a house or flat number (or the first line,
  // usually a house name or the street), run together.
  const std::string postcode = Postcode(Tokens(s.address()));
  if (!postcode.empty()) n.runs.push_back(postcode);
  std::vector<std::string> lines = absl::StrSplit(s.address(), absl::ByAnyChar(",\n;"));
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::vector<std::string> line = Tokens(lines[i]);
    const std::string run = Joined(line);
    const bool numbered =
        std::any_of(run.begin(), run.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (run == postcode || CodePoints(run) < 6) continue;
    if (numbered || i == 0) n.runs.push_back(run);
  }
  // A date of birth as digits, day-first or year-first, or with the month's name.
  const std::string& dob = s.date_of_birth();
  if (dob.size() == 10) {
    const std::string y = dob.substr(0, 4), m = dob.substr(5, 2), d = dob.substr(8, 2);
    int month = 0, day = 0;
    n.runs.push_back(y + m + d);
    n.runs.push_back(d + m + y);
    if (absl::SimpleAtoi(m, &month) && absl::SimpleAtoi(d, &day) && month >= 1 && month <= 12) {
      n.runs.push_back(absl::StrCat(day, kMonths[month - 1], y));
      n.runs.push_back(absl::StrCat(kMonths[month - 1], day, y));
    }
  }
  return n;
}

// The needles of every subject of a SAR, worked out once for all the free-text fields an event
// has: each field's check used to work them out again (tokenising the names and addresses, and
// a regular expression over every address), about a third of the check's cost.
class SubjectNeedles {
 public:
  explicit SubjectNeedles(const v1::Sar& sar) : sar_(sar) {}
  const std::vector<Needles>& Get() {
    if (!made_) {
      for (const v1::Subject& s : sar_.subjects()) needles_.push_back(NeedlesOf(s));
      made_ = true;
    }
    return needles_;
  }

 private:
  const v1::Sar& sar_;
  bool made_ = false;
  std::vector<Needles> needles_;
};

absl::Status CheckFreeText(absl::string_view field, const std::string& value,
                           SubjectNeedles& subjects) {
  if (value.empty()) return absl::OkStatus();
  const Reading text = Read(value);
  for (const Needles& needles : subjects.Get()) {
    for (const std::string& w : needles.words) {
      if (text.words.count(w) > 0) {
        return FieldError(field, "must not name a subject of the SAR: it is sent to the NCA");
      }
    }
    for (const std::string& r : needles.runs) {
      if (absl::StrContains(text.joined, r)) {
        return FieldError(field,
                          "must not name a subject of the SAR or give their address or date of "
                          "birth: it is sent to the NCA");
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckNoSubjectData(const v1::LifecycleEvent& event, const v1::Sar& sar) {
  SubjectNeedles subjects(sar);
  RETURN_IF_ERROR(CheckFreeText("thr.rationale", event.thr().rationale(), subjects));
  RETURN_IF_ERROR(CheckFreeText(event.type() == v1::EVENT_TYPE_PROGRESS_UPDATED ? "note" : "reason",
                                event.reason(), subjects));
  RETURN_IF_ERROR(CheckFreeText("received_by", event.received_by(), subjects));
  return CheckFreeText("outcome.learning_summary", event.outcome().learning_summary(), subjects);
}

absl::Status CheckThr(absl::string_view field, const v1::ThrAssessment& thr) {
  Violations v;
  if (thr.threat() == v1::THR_LEVEL_UNSPECIFIED) {
    v.Add(FieldError(absl::StrCat(field, ".threat"), "is required"));
  }
  if (thr.risk() == v1::THR_LEVEL_UNSPECIFIED) {
    v.Add(FieldError(absl::StrCat(field, ".risk"), "is required"));
  }
  if (thr.harm() == v1::THR_LEVEL_UNSPECIFIED) {
    v.Add(FieldError(absl::StrCat(field, ".harm"), "is required"));
  }
  if (!v1::ThrLevel_IsValid(thr.threat()) || !v1::ThrLevel_IsValid(thr.risk()) ||
      !v1::ThrLevel_IsValid(thr.harm())) {
    v.Add(FieldError(field, "has an unknown level"));
  }
  v.Add(CheckText(absl::StrCat(field, ".rationale"), thr.rationale(), 4000, true));
  return v.status();
}

namespace {
// A date of birth: a real date (no 31 April), from 1900-01-01 to the date of `now`.
absl::Status CheckBirthDate(absl::string_view field, const std::string& date, absl::Time now) {
  if (date.empty()) return absl::OkStatus();
  absl::Time t;
  std::string err;
  if (date.size() != 10 || date[4] != '-' || date[7] != '-' ||
      !absl::ParseTime("%Y-%m-%d", date, absl::UTCTimeZone(), &t, &err) ||
      absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()) != date) {
    return FieldError(field, "must be a date YYYY-MM-DD");
  }
  if (t < absl::FromCivil(absl::CivilDay(1900, 1, 1), absl::UTCTimeZone())) {
    return FieldError(field, "is before 1900-01-01");
  }
  if (now != absl::InfiniteFuture() && t > now + kClockSkew) {
    return FieldError(field, "is in the future");
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status CheckSar(absl::string_view field, const v1::Sar& sar, absl::Time now) {
  const auto f = [&](absl::string_view sub) { return absl::StrCat(field, ".", sub); };
  // Every bad field, not only the first.
  Violations v;
  if (sar.has_submitted_at()) v.Add(CheckNotInFuture(f("submitted_at"), sar.submitted_at(), now));
  v.Add(CheckText(f("reporter_reference"), sar.reporter_reference(), 100, false));
  v.Add(CheckText(f("reporter_sector"), sar.reporter_sector(), 100, true));
  v.Add(CheckText(f("narrative"), sar.narrative(), 20000, true));
  if (sar.amount_pence() < 0) v.Add(FieldError(f("amount_pence"), "must not be negative"));
  if (sar.subjects_size() == 0) v.Add(FieldError(f("subjects"), "at least one is required"));
  if (sar.subjects_size() > kMostSubjectsPerSar) {
    v.Add(FieldError(f("subjects"), absl::StrCat("at most ", kMostSubjectsPerSar, " allowed")));
    return v.status();
  }
  for (int i = 0; i < sar.subjects_size(); ++i) {
    const v1::Subject& s = sar.subjects(i);
    const std::string p = absl::StrCat(field, ".subjects[", i, "]");
    v.Add(CheckText(absl::StrCat(p, ".full_name"), s.full_name(), 200, true));
    v.Add(CheckBirthDate(absl::StrCat(p, ".date_of_birth"), s.date_of_birth(), now));
    v.Add(CheckText(absl::StrCat(p, ".address"), s.address(), 500, false));
    v.Add(CheckText(absl::StrCat(p, ".employer_code"), s.employer_code(), 10, false));
    if (!v1::SubjectRole_IsValid(s.role())) {
      v.Add(FieldError(absl::StrCat(p, ".role"), "is not a known role"));
    }
  }
  if (sar.glossary_codes_size() > 20) {
    v.Add(FieldError(f("glossary_codes"), "at most 20 allowed"));
    return v.status();
  }
  for (int i = 0; i < sar.glossary_codes_size(); ++i) {
    const std::string& code = sar.glossary_codes(i);
    const std::string p = absl::StrCat(field, ".glossary_codes[", i, "]");
    const bool shaped = code.size() >= 5 && code.size() <= 10 && absl::StartsWith(code, "XX") &&
                        absl::EndsWith(code, "XX") &&
                        std::all_of(code.begin() + 2, code.end() - 2, [](char c) {
                          return absl::ascii_isupper(c) || absl::ascii_isdigit(c);
                        });
    if (!shaped) {
      v.Add(FieldError(p, "is not a glossary code (XX, 1 to 6 capital letters or digits, XX)"));
      continue;
    }
    for (int j = 0; j < i; ++j) {
      if (sar.glossary_codes(j) == code) {
        v.Add(FieldError(p, "is given twice"));
        break;
      }
    }
  }
  return v.status();
}

absl::Status CheckIndirectLink(absl::string_view field, const v1::IndirectLink& link) {
  const std::string& id = link.hit_id();
  if (id.size() != 20 || !absl::StartsWith(id, "HIT-") ||
      !std::all_of(id.begin() + 4, id.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
    return FieldError(absl::StrCat(field, ".hit_id"), "must be HIT- and 16 hex digits");
  }
  const std::string& rec = link.record_id();
  if (rec.empty() || rec.size() > 64 || !std::all_of(rec.begin(), rec.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
               c == '-';
      })) {
    return FieldError(absl::StrCat(field, ".record_id"),
                      "must be 1 to 64 letters, digits, '.', '_' or '-'");
  }
  if (link.score_milli() < 1 || link.score_milli() > 1000) {
    return FieldError(absl::StrCat(field, ".score_milli"), "must be 1 to 1000");
  }
  std::set<std::string> seen;
  for (int i = 0; i < link.matched_fields_size(); ++i) {
    const std::string& f = link.matched_fields(i);
    if ((f != "name" && f != "date_of_birth" && f != "address") || !seen.insert(f).second) {
      return FieldError(absl::StrCat(field, ".matched_fields[", i, "]"),
                        "must be one of name, date_of_birth, address, each once");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckReferralId(absl::string_view field, const std::string& id) {
  if (id.empty()) return FieldError(field, "is required");
  if (id.size() != 20 || id.rfind("REF-", 0) != 0) {
    return FieldError(field, "is not a referral id (REF- and 16 hex digits)");
  }
  for (size_t i = 4; i < id.size(); ++i) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(id[i]))) {
      return FieldError(field, "is not a referral id (REF- and 16 hex digits)");
    }
  }
  return absl::OkStatus();
}

}  // namespace sarloop
