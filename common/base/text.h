// Text as it may be stored and shown: what no field may hold, and a form of any bytes that can
// be written to a log line, an audit entry or a terminal without acting on them.
#ifndef SARLOOP_COMMON_BASE_TEXT_H_
#define SARLOOP_COMMON_BASE_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace sarloop {

// A code point no field may hold, whatever it is for: C0, DEL and C1 controls, the line and
// paragraph separators, and the bidi embedding, override and isolate controls that make text
// display as something else.
bool ForbiddenCodePoint(int32_t c);

// Whether `value` is well-formed UTF-8 holding no forbidden code point (line breaks and tabs
// allowed when `multiline`).
bool IsCleanText(absl::string_view value, bool multiline = false);

// `value` with every byte that is not well-formed UTF-8, and every forbidden code point (line
// breaks and tabs included), written as \xNN escapes of its bytes: one line of text that cannot
// forge another line, move the cursor, reorder what is displayed, or end a C string early. Clean
// text comes back unchanged.
std::string Printable(absl::string_view value);

// At most `max_bytes` of Printable(value), cut where a character ends.
std::string PrintablePrefix(absl::string_view value, size_t max_bytes);

}  // namespace sarloop

#endif  // SARLOOP_COMMON_BASE_TEXT_H_
