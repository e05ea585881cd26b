#pragma once

// The subcommands of `junction`, each a function of the parsed context.

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "junction/config.h"
#include "junction/status.h"

namespace junction::cli {

struct Context {
  const config::Config& config;
  std::ostream& out;   // data: stdout
  std::ostream& err;   // diagnostics: stderr
  bool json = false;   // --json: machine-readable output
  bool color = false;  // ANSI colours on `out`
};

inline constexpr std::string_view kBold = "\x1b[1m";
inline constexpr std::string_view kDim = "\x1b[2m";
inline constexpr std::string_view kReset = "\x1b[0m";

// `text` in an ANSI `style` when colours are on, else as is.
std::string Styled(const Context& context, std::string_view style, std::string_view text);
// `text` padded with spaces to `width` columns (never cut).
std::string Padded(std::string text, std::size_t width);
// Prints an aligned table: `header` in bold, then `rows`; the columns
// whose index is in `right` are right-aligned (numbers).
void PrintTable(const Context& context, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows,
                const std::vector<std::size_t>& right = {});
// Prints "junction: <what>: <message>" on stderr; returns kExitFailure.
int Fail(const Context& context, std::string_view what, const Status& status);

// `junction version`: version, git commit, build type, compiler.
int RunVersion(const Context& context);
// `junction config print`: every effective key, its value and its source.
int RunConfigPrint(const Context& context);

}  // namespace junction::cli
