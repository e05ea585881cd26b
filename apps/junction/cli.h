#pragma once

// The `junction` command line: global options, subcommands, exit codes.
// Data goes to stdout, diagnostics and logs to stderr.

namespace junction::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;  // unknown option or command, bad argument

// Parses argv, loads the configuration (junction.toml, JUNCTION_*, flags) and
// runs the chosen subcommand. Returns the process exit code. Runs on the main
// thread; never throws.
int Run(int argc, char** argv);

}  // namespace junction::cli
