#include "common/rpc/request_checks.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/timestamp.pb.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <spdlog/spdlog.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status.h"
#include "common/base/text.h"
#include "sarloop/v1/options.pb.h"

namespace sarloop {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// 2000-01-01 and 2100-01-01 UTC.
constexpr int64_t kEarliestSeconds = 946684800;
constexpr int64_t kLatestSeconds = 4102444800;

bool LineBreakOrTab(UChar32 c) { return c == '\n' || c == '\r' || c == '\t'; }

// Where in a request a field is: a chain from the field up to the request, turned into
// "sar.subjects[2].full_name" only when something there is refused.
struct FieldPath {
  const FieldPath* parent;
  const FieldDescriptor* field;
  int index;  // within a repeated field; -1 otherwise
};

std::string PathOf(const FieldPath* at) {
  std::vector<const FieldPath*> chain;
  for (; at != nullptr; at = at->parent) chain.push_back(at);
  std::string path;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    if (!path.empty()) path += '.';
    path += (*it)->field->name();
    if ((*it)->index >= 0) absl::StrAppend(&path, "[", (*it)->index, "]");
  }
  return path;
}

// Checks `value`; when `rewrite` and it is not in NFC, sets `*nfc` to its NFC form.
absl::Status CheckString(const FieldPath& at, bool multiline, const std::string& value,
                         bool rewrite, std::optional<std::string>* nfc) {
  bool ascii = true;
  const int32_t length = static_cast<int32_t>(value.size());
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U8_NEXT(value.data(), i, length, c);
    if (c < 0) return FieldError(PathOf(&at), "is not valid UTF-8");
    if (c >= 0x80) ascii = false;
    if (ForbiddenCodePoint(c) && !(multiline && LineBreakOrTab(c))) {
      return FieldError(
          PathOf(&at),
          absl::StrFormat("contains the control character U+%04X%s", c,
                          LineBreakOrTab(c) ? " (line breaks and tabs are for free text)" : ""));
    }
  }
  if (ascii || !rewrite) return absl::OkStatus();  // ASCII is its own NFC form.
  UErrorCode err = U_ZERO_ERROR;
  const icu::Normalizer2* nfc_form = icu::Normalizer2::getNFCInstance(err);
  if (U_FAILURE(err)) return absl::InternalError("ICU has no NFC normaliser");
  const icu::UnicodeString text = icu::UnicodeString::fromUTF8(value);
  if (nfc_form->isNormalized(text, err) || U_FAILURE(err)) return absl::OkStatus();
  const icu::UnicodeString normal = nfc_form->normalize(text, err);
  if (U_FAILURE(err)) return FieldError(PathOf(&at), "cannot be put in Unicode normal form");
  normal.toUTF8String(nfc->emplace());
  return absl::OkStatus();
}

absl::Status CheckTimestamp(const FieldPath* at, const Message& ts) {
  const Descriptor* d = ts.GetDescriptor();
  const Reflection* r = ts.GetReflection();
  const int64_t seconds = r->GetInt64(ts, d->FindFieldByNumber(1));
  const int32_t nanos = r->GetInt32(ts, d->FindFieldByNumber(2));
  if (nanos < 0 || nanos > 999'999'999) {
    return FieldError(absl::StrCat(PathOf(at), ".nanos"), "must be 0 to 999,999,999");
  }
  if (seconds < kEarliestSeconds || seconds >= kLatestSeconds) {
    return FieldError(PathOf(at), "must be a time from 2000-01-01 to 2099-12-31 (UTC)");
  }
  return absl::OkStatus();
}

// What Walk reads in one message type: its text and message fields in field-number order (the
// order errors have always been found in), each with whether it is free text. Worked out once
// per type and thread: listing a message's set fields through reflection (which visits every
// field and sorts them) and reading each field's options was most of the walk's cost, and the
// walk runs on every request and every delivered envelope.
struct TextField {
  const FieldDescriptor* field;
  bool message;
  bool multiline;
};

const std::vector<TextField>& TextFieldsOf(const Descriptor* d) {
  thread_local std::unordered_map<const Descriptor*, std::vector<TextField>> plans;
  auto [it, made] = plans.try_emplace(d);
  if (made) {
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      const bool text = f->type() == FieldDescriptor::TYPE_STRING;
      const bool message = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
      if (text || message) {
        it->second.push_back({f, message, f->options().GetExtension(v1::multiline)});
      }
    }
    std::sort(it->second.begin(), it->second.end(), [](const TextField& a, const TextField& b) {
      return a.field->number() < b.field->number();
    });
  }
  return it->second;
}

absl::Status Walk(Message& m, const FieldPath* at, bool rewrite) {
  const Descriptor* d = m.GetDescriptor();
  if (d == google::protobuf::Timestamp::descriptor()) return CheckTimestamp(at, m);
  const Reflection* r = m.GetReflection();
  std::string scratch;
  for (const TextField& t : TextFieldsOf(d)) {
    const FieldDescriptor* f = t.field;
    if (f->is_repeated()) {
      const int size = r->FieldSize(m, f);
      for (int i = 0; i < size; ++i) {
        const FieldPath here{at, f, i};
        if (t.message) {
          RETURN_IF_ERROR(Walk(*r->MutableRepeatedMessage(&m, f, i), &here, rewrite));
          continue;
        }
        std::optional<std::string> nfc;
        RETURN_IF_ERROR(CheckString(
            here, t.multiline, r->GetRepeatedStringReference(m, f, i, &scratch), rewrite, &nfc));
        if (nfc) r->SetRepeatedString(&m, f, i, std::move(*nfc));
      }
      continue;
    }
    if (!r->HasField(m, f)) continue;
    const FieldPath here{at, f, -1};
    if (t.message) {
      RETURN_IF_ERROR(Walk(*r->MutableMessage(&m, f), &here, rewrite));
      continue;
    }
    std::optional<std::string> nfc;
    RETURN_IF_ERROR(
        CheckString(here, t.multiline, r->GetStringReference(m, f, &scratch), rewrite, &nfc));
    if (nfc) r->SetString(&m, f, std::move(*nfc));
  }
  return absl::OkStatus();
}

// --- Requests that do not parse. ----------------------------------------------------------

// Protobuf names the string field that was not UTF-8 only in a log line, written on the thread
// that parses (ParseRequest's).
thread_local std::string t_not_utf8_field;

google::protobuf::LogHandler* g_protobuf_default_log = nullptr;

void ProtobufLog(google::protobuf::LogLevel level, const char* filename, int line,
                 const std::string& message) {
  constexpr std::string_view kPrefix = "String field '";
  if (message.rfind(kPrefix, 0) == 0 && message.find("invalid UTF-8") != std::string::npos) {
    const size_t end = message.find('\'', kPrefix.size());
    if (end != std::string::npos) {
      t_not_utf8_field = message.substr(kPrefix.size(), end - kPrefix.size());
      return;  // the call's own log line says it
    }
  }
  if (g_protobuf_default_log != nullptr) g_protobuf_default_log(level, filename, line, message);
}

// The path from `type` to the field whose full name is `field` ("sar.subjects.full_name"), or ""
// if the request does not contain it. Breadth first: the shortest path.
std::string PathTo(const Descriptor* type, const std::string& field) {
  std::deque<std::pair<const Descriptor*, std::string>> queue{{type, ""}};
  std::set<const Descriptor*> seen{type};
  while (!queue.empty()) {
    auto [d, prefix] = queue.front();
    queue.pop_front();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      const std::string path = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
      if (f->full_name() == field) return path;
      if (f->message_type() != nullptr && seen.insert(f->message_type()).second) {
        queue.emplace_back(f->message_type(), path);
      }
    }
  }
  return "";
}

// The refusal of a request for `method` that does not parse; `field` is the string field protobuf
// named as not UTF-8, if any.
absl::Status Unparseable(std::string_view method, const std::string& field) {
  // "/sarloop.v1.Force/Close" -> "sarloop.v1.Force.Close".
  std::string name(method.substr(1));
  std::replace(name.begin(), name.end(), '/', '.');
  const google::protobuf::MethodDescriptor* m =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(name);
  const std::string type = m != nullptr ? m->input_type()->full_name() : "request";
  const std::string path = m != nullptr && !field.empty() ? PathTo(m->input_type(), field) : "";
  absl::Status status =
      !path.empty() ? FieldError(path, "is not valid UTF-8")
                    : absl::InvalidArgumentError(absl::StrCat(
                          "the request is not a well-formed ", type,
                          " message (malformed protobuf, or a string field that is not UTF-8)"));
  spdlog::info("call {} {} unparseable request{}{}", method,
               absl::StatusCodeToString(status.code()), path.empty() ? "" : " field=", path);
  return status;
}

}  // namespace

absl::Status CleanRequest(google::protobuf::Message& request) {
  return Walk(request, nullptr, /*rewrite=*/true);
}

absl::Status CheckRequestText(const google::protobuf::Message& request) {
  // Walk takes a mutable message only to rewrite it; with rewrite off it changes nothing.
  return Walk(const_cast<google::protobuf::Message&>(request), nullptr, /*rewrite=*/false);
}

absl::Status ParseRequest(grpc::ByteBuffer& bytes, std::string_view method,
                          google::protobuf::Message* request) {
  static std::once_flag once;
  std::call_once(once,
                 [] { g_protobuf_default_log = google::protobuf::SetLogHandler(ProtobufLog); });
  t_not_utf8_field.clear();
  grpc::ProtoBufferReader reader(&bytes);
  if (request->ParseFromZeroCopyStream(&reader)) return absl::OkStatus();
  std::string field = std::move(t_not_utf8_field);
  t_not_utf8_field.clear();
  return Unparseable(method, field);
}

}  // namespace sarloop
