#include "common/base/text.h"

#include <unicode/utf8.h>

#include "absl/strings/str_format.h"

namespace sarloop {
namespace {
bool LineBreakOrTab(UChar32 c) { return c == '\n' || c == '\r' || c == '\t'; }
}  // namespace

bool ForbiddenCodePoint(int32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) ||  // C0, DEL, C1
         c == 0x2028 || c == 0x2029 ||            // line and paragraph separators
         (c >= 0x202A && c <= 0x202E) ||          // bidi embeddings and overrides
         (c >= 0x2066 && c <= 0x2069);            // bidi isolates
}

bool IsCleanText(absl::string_view value, bool multiline) {
  const int32_t length = static_cast<int32_t>(value.size());
  if (static_cast<size_t>(length) != value.size()) return false;
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U8_NEXT(value.data(), i, length, c);
    if (c < 0) return false;
    if (ForbiddenCodePoint(c) && !(multiline && LineBreakOrTab(c))) return false;
  }
  return true;
}

std::string Printable(absl::string_view value) {
  if (IsCleanText(value)) return std::string(value);
  std::string out;
  out.reserve(value.size() + 16);
  const int32_t length = static_cast<int32_t>(std::min<size_t>(value.size(), INT32_MAX));
  for (int32_t i = 0; i < length;) {
    const int32_t start = i;
    UChar32 c;
    U8_NEXT(value.data(), i, length, c);
    if (c >= 0 && !ForbiddenCodePoint(c)) {
      out.append(value.data() + start, static_cast<size_t>(i - start));
      continue;
    }
    for (int32_t b = start; b < i; ++b) {
      absl::StrAppendFormat(&out, "\\x%02X", static_cast<unsigned char>(value[b]));
    }
  }
  return out;
}

std::string PrintablePrefix(absl::string_view value, size_t max_bytes) {
  // Escaping at most quadruples the length: the text beyond that cannot be in the prefix.
  std::string shown = Printable(value.substr(0, max_bytes));
  if (shown.size() <= max_bytes) return shown;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(shown[cut]) & 0xC0) == 0x80) --cut;
  shown.resize(cut);
  return shown;
}

}  // namespace sarloop
