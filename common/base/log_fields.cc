#include "common/base/log_fields.h"

#include "absl/strings/str_format.h"

namespace sarloop {
namespace {
thread_local std::vector<LogField>* current = nullptr;
}  // namespace

ScopedLogFields::ScopedLogFields(std::initializer_list<LogField> fields) : previous_(current) {
  for (const LogField& f : fields) {
    if (!f.value.empty()) fields_.push_back(f);
  }
  current = &fields_;
}

ScopedLogFields::~ScopedLogFields() { current = previous_; }

void AppendJsonEscaped(std::string_view text, std::string& out) {
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      out += absl::StrFormat("\\u%04x", u);
    } else {
      out.push_back(c);
    }
  }
}

void AppendLogFieldsJson(std::string& out) {
  if (current == nullptr) return;
  for (const LogField& f : *current) {
    out += ",\"";
    AppendJsonEscaped(f.key, out);
    out += "\":";
    if (f.number) {
      out += f.value;
    } else {
      out.push_back('"');
      AppendJsonEscaped(f.value, out);
      out.push_back('"');
    }
  }
}

}  // namespace sarloop
