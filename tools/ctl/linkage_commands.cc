// linkage: the indirect-links screen (proto/sarloop/v1/linkage.proto). A force encodes its
// personnel index and uploads it; UKFIU encodes a SAR's subjects and screens them; either reads
// hits; the force gives its verdict. Encoding happens here, with the linkage key the data holders
// share: the linkage service never sees the key or a name.
//
// The linkage service's address: --linkage-target, else SARLOOP_LINKAGE_TARGET (env.sh of a local
// chain sets it, so `sarloopctl_as NFK linkage ...` talks to it as NFK's system), else --target.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/crypto.h"
#include "common/base/text.h"
#include "common/linkage/linkage_csv.h"
#include "common/linkage/linkage_encoding.h"
#include "sarloop/v1/linkage.grpc.pb.h"
#include "sarloop/v1/ukfiu.grpc.pb.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/table.h"
#include "tools/ctl/values.h"

namespace sarloop::ctl {
namespace {

using v1::Linkage;

constexpr int kRecordsPerCall = 5000;
constexpr int kSubjectsPerCall = 100;

// The linkage service: --linkage-target, else SARLOOP_LINKAGE_TARGET, else --target. (--target
// stays ukfiu's for `screen` from a SAR and for `ukfiu refer --hit`.)
std::optional<std::string> LinkageTarget(const Input& in) {
  if (auto target = in.args.Get("linkage-target")) return *target;
  const char* env = std::getenv("SARLOOP_LINKAGE_TARGET");
  if (env != nullptr && *env != '\0') return std::string(env);
  return std::nullopt;
}

Session LinkageSession(const Input& in, const Session& session) {
  GlobalOptions options = session.options();
  if (auto target = LinkageTarget(in)) options.target = *target;
  return Session(options);
}

absl::StatusOr<std::string> ReadText(const std::string& option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return UsageError(absl::StrCat("--", option, ": cannot read '", path, "'"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::StatusOr<linkage::Encoder> EncoderFromKey(const Args& args) {
  ASSIGN_OR_RETURN(std::string key_path, args.Require("key"));
  absl::StatusOr<std::string> key = ReadKeyFile(key_path, linkage::kKeyBytes, linkage::kKeyBytes);
  if (!key.ok()) return UsageError(absl::StrCat("--key: ", key.status().message()));
  absl::StatusOr<linkage::Encoder> encoder = linkage::Encoder::Create(*key);
  if (!encoder.ok()) return UsageError(absl::StrCat("--key: ", encoder.status().message()));
  return encoder;
}

// A person's id and encodings: one for an index record; for a subject to screen, more when its
// date of birth is unknown (Encoder::EncodeForScreening).
struct Encoded {
  std::string id;
  std::vector<std::string> encodings;
};

absl::StatusOr<Encoded> EncodePerson(linkage::Encoder& encoder, std::string id,
                                     const linkage::PersonFields& fields, bool for_screening) {
  Encoded out{std::move(id), {}};
  if (for_screening) {
    ASSIGN_OR_RETURN(std::vector<linkage::Filter> filters, encoder.EncodeForScreening(fields));
    for (const linkage::Filter& f : filters) out.encodings.push_back(linkage::ToBytes(f));
  } else {
    ASSIGN_OR_RETURN(linkage::Filter f, encoder.Encode(fields));
    out.encodings.push_back(linkage::ToBytes(f));
  }
  return out;
}

// Reads --csv with `id_column` and encodes each row with --key. A row that cannot be read or
// encoded (a date of birth that is no date, no id) is left out and named by line on stderr, and
// the rest go; a file with a wrong header, an unterminated quote or no good row at all is a usage
// error, and then nothing is sent.
absl::StatusOr<std::vector<Encoded>> EncodeCsv(const Args& args, absl::string_view id_column,
                                               bool for_screening) {
  ASSIGN_OR_RETURN(std::string csv_path, args.Require("csv"));
  ASSIGN_OR_RETURN(linkage::Encoder encoder, EncoderFromKey(args));
  ASSIGN_OR_RETURN(std::string text, ReadText("csv", csv_path));
  absl::StatusOr<linkage::PeopleFile> csv = linkage::ParsePeopleCsv(text, id_column);
  if (!csv.ok()) return UsageError(absl::StrCat("--csv ", csv_path, ": ", csv.status().message()));
  std::vector<linkage::PeopleFile::Bad> bad = std::move(csv->bad);
  std::vector<Encoded> out;
  for (size_t i = 0; i < csv->rows.size(); ++i) {
    absl::StatusOr<Encoded> e =
        EncodePerson(encoder, csv->rows[i].id, csv->rows[i].fields, for_screening);
    if (!e.ok()) {
      bad.push_back({csv->lines[i], std::string(e.status().message())});
      continue;
    }
    out.push_back(*std::move(e));
  }
  if (!bad.empty()) {
    // In file order, at most 20 named.
    std::sort(bad.begin(), bad.end(), [](const auto& a, const auto& b) { return a.line < b.line; });
    std::cerr << "sarloopctl: --csv " << csv_path << ": " << bad.size() << " of "
              << bad.size() + out.size() << " rows left out:\n";
    for (size_t i = 0; i < std::min<size_t>(bad.size(), 20); ++i) {
      std::cerr << "  line " << bad[i].line << ": " << bad[i].why << "\n";
    }
    if (bad.size() > 20) std::cerr << "  and " << bad.size() - 20 << " more\n";
  }
  if (out.empty()) {
    return UsageError(absl::StrCat(
        "--csv ", csv_path, ": no row could be read",
        bad.empty() ? "" : absl::StrCat(" (line ", bad.front().line, ": ", bad.front().why, ")")));
  }
  // An index upload replaces the force's whole index: a file most of whose rows are bad (dates
  // written another way, the wrong file) would leave a fraction of the personnel screened.
  if (!for_screening && bad.size() > out.size() && !args.Has("accept-bad-rows")) {
    return UsageError(absl::StrCat(
        "--csv ", csv_path, ": ", bad.size(), " of ", bad.size() + out.size(),
        " rows could not be read (first: line ", bad.front().line, ": ", bad.front().why,
        "); the upload would replace the index with the other ", out.size(),
        ". Correct the file, or give --accept-bad-rows to upload them anyway"));
  }
  return out;
}

std::string StatusName(v1::LinkStatus s) {
  switch (s) {
    case v1::LINK_STATUS_OPEN:
      return "open";
    case v1::LINK_STATUS_CONFIRMED:
      return "confirmed";
    case v1::LINK_STATUS_REJECTED:
      return "rejected";
    default:
      return "-";
  }
}

void PrintHits(const google::protobuf::RepeatedPtrField<v1::LinkageHit>& hits, std::ostream& out) {
  Table table({"HIT", "SAR", "SUBJECT", "ORG", "RECORD", "SCORE", "MATCHED", "STATUS", "FOUND"});
  for (const v1::LinkageHit& h : hits) {
    table.AddRow({h.hit_id(), h.sar_id(), h.subject_ref(), h.organisation(), h.record_id(),
                  absl::StrFormat("%.3f", h.score_milli() / 1000.0),
                  absl::StrJoin(h.matched_fields(), ","), StatusName(h.status()),
                  FormatTime(h.found_at())});
  }
  if (table.empty()) {
    out << "no hits\n";
  } else {
    table.Print(out);
  }
}

absl::Status Upload(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(std::vector<Encoded> records,
                   EncodeCsv(in.args, "record_id", /*for_screening=*/false));
  Session linkage = LinkageSession(in, session);
  const std::string base = session.options().request_id;
  v1::BeginIndexUploadRequest begin;
  begin.set_request_id(absl::StrCat(base, "-begin"));
  v1::BeginIndexUploadResponse started;
  RETURN_IF_ERROR(linkage.Call(&Linkage::Stub::BeginIndexUpload, begin, &started));
  for (size_t first = 0, part = 0; first < records.size(); first += kRecordsPerCall, ++part) {
    v1::UploadIndexRecordsRequest request;
    request.set_request_id(absl::StrCat(base, "-part-", part));
    request.set_upload_id(started.upload_id());
    for (size_t i = first; i < std::min(records.size(), first + kRecordsPerCall); ++i) {
      v1::EncodedRecord* r = request.add_records();
      r->set_record_id(records[i].id);
      r->set_encoding(records[i].encodings[0]);
    }
    v1::UploadIndexRecordsResponse response;
    RETURN_IF_ERROR(linkage.Call(&Linkage::Stub::UploadIndexRecords, request, &response));
  }
  v1::CommitIndexUploadRequest commit;
  commit.set_request_id(absl::StrCat(base, "-commit"));
  commit.set_upload_id(started.upload_id());
  commit.set_expected_records(static_cast<int64_t>(records.size()));
  v1::CommitIndexUploadResponse response;
  RETURN_IF_ERROR(linkage.Call(&Linkage::Stub::CommitIndexUpload, commit, &response));
  return Emit(session, response, [&](std::ostream& out) {
    KeyValues kv;
    kv.Add("upload", started.upload_id());
    kv.Add("index version", absl::StrCat(response.index_version()));
    kv.Add("records", absl::StrCat(response.records()));
    kv.Add("subjects re-screened", absl::StrCat(response.subjects_rescreened()));
    kv.Add("new hits", absl::StrCat(response.new_hits()));
    kv.Print(out);
  });
}

// The SAR's subjects as ukfiu holds them (the session's target is ukfiu), encoded.
absl::StatusOr<std::vector<Encoded>> EncodeSarSubjects(const Input& in, Session& session) {
  ASSIGN_OR_RETURN(linkage::Encoder encoder, EncoderFromKey(in.args));
  v1::GetSarRequest request;
  request.set_sar_id(in.operands[0]);
  v1::GetSarResponse response;
  RETURN_IF_ERROR(session.Call(&v1::Ukfiu::Stub::GetSar, request, &response));
  std::vector<Encoded> out;
  for (const v1::Subject& s : response.sar().subjects()) {
    // Name tokens are sorted before encoding, so the full name needs no splitting; a postcode
    // at the end of the address is found there.
    linkage::PersonFields p;
    p.given_names = s.full_name();
    p.date_of_birth = s.date_of_birth();
    p.address = s.address();
    ASSIGN_OR_RETURN(Encoded e, EncodePerson(encoder, s.subject_ref(), p, true));
    out.push_back(std::move(e));
  }
  return out;
}

absl::Status Screen(const Input& in, Session& session) {
  std::vector<Encoded> subjects;
  if (in.args.Has("csv")) {
    ASSIGN_OR_RETURN(subjects, EncodeCsv(in.args, "subject_ref", /*for_screening=*/true));
  } else {
    ASSIGN_OR_RETURN(subjects, EncodeSarSubjects(in, session));
  }
  if (subjects.empty()) return UsageError("no subjects to screen");
  Session linkage = LinkageSession(in, session);
  v1::ScreenSubjectsResponse all;
  for (size_t first = 0, part = 0; first < subjects.size(); first += kSubjectsPerCall, ++part) {
    v1::ScreenSubjectsRequest request;
    request.set_request_id(absl::StrCat(session.options().request_id, "-", part));
    request.set_sar_id(in.operands[0]);
    for (size_t i = first; i < std::min(subjects.size(), first + kSubjectsPerCall); ++i) {
      v1::EncodedSubject* s = request.add_subjects();
      s->set_subject_ref(subjects[i].id);
      s->set_encoding(subjects[i].encodings[0]);
      for (size_t j = 1; j < subjects[i].encodings.size(); ++j) {
        s->add_alternative_encodings(subjects[i].encodings[j]);
      }
    }
    v1::ScreenSubjectsResponse response;
    RETURN_IF_ERROR(linkage.Call(&Linkage::Stub::ScreenSubjects, request, &response));
    all.MergeFrom(response);
  }
  return Emit(session, all, [&](std::ostream& out) { PrintHits(all.hits(), out); });
}

absl::StatusOr<v1::LinkStatus> ReadLinkStatus(const Args& args) {
  std::optional<std::string> s = args.Get("status");
  if (!s) return v1::LINK_STATUS_UNSPECIFIED;
  if (*s == "open") return v1::LINK_STATUS_OPEN;
  if (*s == "confirmed") return v1::LINK_STATUS_CONFIRMED;
  if (*s == "rejected") return v1::LINK_STATUS_REJECTED;
  return UsageError(absl::StrCat("--status: '", *s, "' is not open, confirmed or rejected"));
}

absl::Status Hits(const Input& in, Session& session) {
  v1::ListHitsRequest request;
  if (auto org = in.args.Get("org")) request.set_organisation(OrgCode(*org));
  if (auto sar = in.args.Get("sar")) request.set_sar_id(*sar);
  ASSIGN_OR_RETURN(v1::LinkStatus status, ReadLinkStatus(in.args));
  request.set_status(status);
  ASSIGN_OR_RETURN(Paging paging, ReadPaging(in.args));
  Session linkage = LinkageSession(in, session);
  v1::ListHitsResponse response;
  RETURN_IF_ERROR(ListPages(linkage, &Linkage::Stub::ListHits, request, paging, &response));
  return Emit(session, response, [&](std::ostream& out) {
    PrintHits(response.hits(), out);
    PrintNextPage(response.next_page_token(), out);
  });
}

absl::Status Show(const Input& in, Session& session) {
  v1::GetHitRequest request;
  request.set_hit_id(in.operands[0]);
  Session linkage = LinkageSession(in, session);
  v1::GetHitResponse response;
  RETURN_IF_ERROR(linkage.Call(&Linkage::Stub::GetHit, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    const v1::LinkageHit& h = response.hit();
    KeyValues kv;
    kv.Add("hit", h.hit_id());
    kv.Add("sar", h.sar_id());
    kv.Add("subject", h.subject_ref());
    kv.Add("organisation", h.organisation());
    kv.Add("index record", h.record_id());
    kv.Add("score", absl::StrFormat("%.3f", h.score_milli() / 1000.0));
    kv.Add("matched fields", absl::StrJoin(h.matched_fields(), ","));
    kv.Add("status", StatusName(h.status()));
    kv.Add("found", FormatTime(h.found_at()));
    kv.Add("index version", absl::StrCat(h.index_version()));
    kv.AddIfSet("reason", h.feedback_reason());
    kv.Print(out);
  });
}

absl::Status Verdict(const Input& in, Session& session, bool confirmed) {
  v1::RecordLinkFeedbackRequest request;
  ASSIGN_OR_RETURN(std::string reason, in.args.Require("reason"));
  request.set_request_id(session.options().request_id);
  request.set_hit_id(in.operands[0]);
  request.set_confirmed(confirmed);
  request.set_reason(reason);
  Session linkage = LinkageSession(in, session);
  v1::RecordLinkFeedbackResponse response;
  RETURN_IF_ERROR(linkage.Call(&Linkage::Stub::RecordLinkFeedback, request, &response));
  return Emit(session, response, [&](std::ostream& out) {
    out << Printable(response.hit().hit_id()) << " " << StatusName(response.hit().status()) << "\n";
  });
}

absl::Status Confirm(const Input& in, Session& session) { return Verdict(in, session, true); }
absl::Status Reject(const Input& in, Session& session) { return Verdict(in, session, false); }

absl::Status Stats(const Input& in, Session& session) {
  Session linkage = LinkageSession(in, session);
  v1::GetLinkageStatsResponse response;
  RETURN_IF_ERROR(
      linkage.Call(&Linkage::Stub::GetLinkageStats, v1::GetLinkageStatsRequest(), &response));
  return Emit(session, response, [&](std::ostream& out) {
    Table table({"ORG", "INDEX", "RECORDS", "HITS", "OPEN", "CONFIRMED", "REJECTED", "PRECISION"});
    for (const auto& s : response.organisations()) {
      const bool decided = s.confirmed() + s.rejected() > 0;
      table.AddRow({s.organisation(), absl::StrCat("v", s.index_version()),
                    absl::StrCat(s.index_records()), absl::StrCat(s.hits()), absl::StrCat(s.open()),
                    absl::StrCat(s.confirmed()), absl::StrCat(s.rejected()),
                    decided ? absl::StrFormat("%.3f", s.precision()) : "-"});
    }
    table.Print(out);
    out << "\nsubjects stored: " << response.subjects_stored()
        << ", threshold: " << absl::StrFormat("%.3f", response.threshold_milli() / 1000.0) << "\n";
  });
}

absl::Status Keygen(const Input& in, Session&) {
  absl::Status written = WriteNewKeyFile(in.operands[0], linkage::kKeyBytes);
  if (!written.ok()) return UsageError(written.message());
  std::cout << "wrote " << in.operands[0]
            << " (32 random bytes): give it to every force and to UKFIU, never to the linkage "
               "service\n";
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::LinkageHit> FetchLinkageHit(const Input& in, const Session& session,
                                               const std::string& hit_id) {
  // --target is ukfiu's here: the linkage service is --linkage-target or SARLOOP_LINKAGE_TARGET.
  if (!LinkageTarget(in)) {
    return UsageError(
        "--hit needs the linkage service: --linkage-target or SARLOOP_LINKAGE_TARGET");
  }
  Session s = LinkageSession(in, session);
  v1::GetHitRequest request;
  request.set_hit_id(hit_id);
  v1::GetHitResponse response;
  RETURN_IF_ERROR(s.Call(&Linkage::Stub::GetHit, request, &response));
  return response.hit();
}

std::vector<Command> LinkageCommands() {
  return {
      {.group = "linkage",
       .verb = "keygen",
       .operands = {"FILE"},
       .summary = "write a new linkage key (offline; for the forces and UKFIU only)",
       .run = Keygen},
      {.group = "linkage",
       .verb = "upload",
       .synopsis = "--csv FILE --key FILE [--accept-bad-rows]",
       .summary = "encode the force's personnel index (CSV) and replace its index with it (a "
                  "file with more bad rows than good is refused unless --accept-bad-rows)",
       .options = {"csv", "key", "linkage-target", "accept-bad-rows"},
       .mutating = true,
       .run = Upload},
      {.group = "linkage",
       .verb = "screen",
       .operands = {"SAR_ID"},
       .synopsis = "--key FILE [--csv FILE]",
       .summary = "encode a SAR's subjects (from ukfiu, the target; or --csv) and screen them "
                  "against every index (UKFIU)",
       .options = {"csv", "key", "linkage-target"},
       .mutating = true,
       .run = Screen},
      {.group = "linkage",
       .verb = "hits",
       .synopsis = absl::StrCat("[--org CODE] [--status open|confirmed|rejected] [--sar SAR_ID] ",
                                kPagingSynopsis),
       .summary = "list hits, newest first (UKFIU)",
       .options = Concat({"org", "status", "sar", "linkage-target"}, kPagingOptions),
       .run = Hits},
      {.group = "linkage",
       .verb = "show",
       .operands = {"HIT_ID"},
       .summary = "show one hit (a force sees only hits in its own index)",
       .options = {"linkage-target"},
       .run = Show},
      {.group = "linkage",
       .verb = "confirm",
       .operands = {"HIT_ID"},
       .synopsis = "--reason TEXT",
       .summary = "the force confirms the index record is the SAR subject",
       .options = {"reason", "linkage-target"},
       .mutating = true,
       .run = Confirm},
      {.group = "linkage",
       .verb = "reject",
       .operands = {"HIT_ID"},
       .synopsis = "--reason TEXT",
       .summary = "the force says the index record is someone else",
       .options = {"reason", "linkage-target"},
       .mutating = true,
       .run = Reject},
      {.group = "linkage",
       .verb = "stats",
       .summary = "index sizes, hits and precision from the forces' verdicts, per organisation",
       .options = {"linkage-target"},
       .run = Stats},
  };
}

}  // namespace sarloop::ctl
