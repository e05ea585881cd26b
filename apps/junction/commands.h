#pragma once

// The subcommands of `junction`, each a function of the parsed context.

#include <ostream>

#include "junction/config.h"

namespace junction::cli {

struct Context {
  const config::Config& config;
  std::ostream& out;   // data: stdout
  std::ostream& err;   // diagnostics: stderr
  bool json = false;   // --json: machine-readable output
  bool color = false;  // ANSI colours on `out`
};

// `junction version`: version, git commit, build type, compiler.
int RunVersion(const Context& context);
// `junction config print`: every effective key, its value and its source.
int RunConfigPrint(const Context& context);

}  // namespace junction::cli
