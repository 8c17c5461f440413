// Structured fields for one log line. A call's log line carries its method, status code, caller,
// referral and request ids and latency; with log_json they are keys of the JSON object (where log
// tooling indexes them), in text logs they stay in the message as before.
//
// The fields belong to the thread that sets them and are read by the formatter while that thread
// formats its own line (the loggers are synchronous), so no lock is needed.
#ifndef SARLOOP_COMMON_BASE_LOG_FIELDS_H_
#define SARLOOP_COMMON_BASE_LOG_FIELDS_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace sarloop {

struct LogField {
  std::string_view key;
  std::string value;
  // Written unquoted in JSON (a count or a latency); otherwise a string.
  bool number = false;
};

// Sets the fields for the lines logged on this thread until it goes out of scope. Empty values are
// left out.
class ScopedLogFields {
 public:
  explicit ScopedLogFields(std::initializer_list<LogField> fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  std::vector<LogField> fields_;
  // The enclosing scope's fields, current again when this one ends.
  std::vector<LogField>* const previous_;
};

// The current thread's fields as JSON members, each preceded by a comma (`,"code":"OK"`), or
// empty; strings escaped as in the message.
void AppendLogFieldsJson(std::string& out);

// `text` escaped as the inside of a JSON string.
void AppendJsonEscaped(std::string_view text, std::string& out);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_LOG_FIELDS_H_
