// Text formatting shared by every layer's messages, so that a number or a shape reads the same
// in a config error, a trainer error and a wire error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cohort {

// Shortest text that reads back as the same double: "0", "0.1", "-2.5", "1e+300". Integers
// held in a double print without a fraction ("100").
std::string format_number(double v);

// printf-style formatting into a std::string.
std::string strformat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// `text` made safe to print on one line of a log or a message: control characters (newlines
// included) become \n, \t, \r or \xHH, backslashes are doubled, and text longer than
// `max_chars` is cut with "...". For strings that come from clients or files.
std::string printable(std::string_view text, size_t max_chars = 200);

}  // namespace cohort
