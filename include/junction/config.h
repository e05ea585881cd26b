#pragma once

// Configuration: a schema of known keys, and the effective values loaded from
// defaults < junction.toml < JUNCTION_* environment variables < flags.
//
//   config::Schema schema;
//   JUNCTION_RETURN_IF_ERROR(config::AddCoreKeys(schema));
//   JUNCTION_ASSIGN_OR_RETURN(config::Config cfg,
//                             config::Load(schema, {.env = config::ProcessEnvironment()}));
//   std::string level = cfg.GetString("log.level");
//
// Keys are dotted names of lowercase segments ([a-z0-9_]+), e.g. `log.level`.
// A segment `*` matches one user-named table: `topics.*.partitions` accepts
// `topics.orders.partitions`. The environment variable of a key is JUNCTION_
// followed by the key uppercased with '.' -> '_' (JUNCTION_LOG_LEVEL); for a
// wildcard key the matched segment is taken lowercased.
//
// Text syntax of values (environment, flags, and TOML strings where noted):
//   int 42; bool true/false; double 0.25; string list a,b,c (comma-separated);
//   duration "250ms" (units ns us ms s m h; TOML: a string);
//   byte size "64MiB" (B, KB MB GB TB = 1000^n, KiB MiB GiB TiB = 1024^n; a
//   bare integer is bytes; TOML: a string or an integer).

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "junction/result.h"
#include "junction/status.h"

namespace junction::config {

enum class Type : std::uint8_t {
  kString,
  kInt,
  kBool,
  kDouble,
  kDuration,
  kByteSize,
  kEnum,
  kStringList,
};

// A byte count, kept distinct from plain integers.
struct ByteSize {
  std::uint64_t bytes = 0;
  friend bool operator==(ByteSize, ByteSize) = default;
};

// kString and kEnum hold std::string; kDuration std::chrono::nanoseconds.
using Value = std::variant<std::string, std::int64_t, bool, double, std::chrono::nanoseconds,
                           ByteSize, std::vector<std::string>>;

struct KeySpec {
  std::string name;
  Type type = Type::kString;
  Value default_value;
  std::string description;  // one line, shown by `junction config print`
  std::int64_t min = std::numeric_limits<std::int64_t>::min();  // kInt only, inclusive
  std::int64_t max = std::numeric_limits<std::int64_t>::max();  // kInt only, inclusive
  std::vector<std::string> allowed;                             // kEnum only
};

// Builders for KeySpec.
KeySpec StringKey(std::string name, std::string default_value, std::string description);
KeySpec IntKey(std::string name, std::int64_t default_value, std::int64_t min, std::int64_t max,
               std::string description);
KeySpec BoolKey(std::string name, bool default_value, std::string description);
KeySpec DoubleKey(std::string name, double default_value, std::string description);
KeySpec DurationKey(std::string name, std::chrono::nanoseconds default_value,
                    std::string description);
KeySpec ByteSizeKey(std::string name, std::uint64_t default_bytes, std::string description);
KeySpec EnumKey(std::string name, std::string default_value, std::vector<std::string> allowed,
                std::string description);
KeySpec StringListKey(std::string name, std::vector<std::string> default_value,
                      std::string description);

// The environment variable a key maps to: "log.level" -> "JUNCTION_LOG_LEVEL",
// "topics.*.partitions" -> "JUNCTION_TOPICS_*_PARTITIONS".
std::string EnvVarName(std::string_view key);
// The variable naming the config file; never an error when unknown to the schema.
inline constexpr std::string_view kConfigEnvVar = "JUNCTION_CONFIG";

// Parses `text` as a value of `spec`'s type (the text syntax above).
// InvalidArgument naming what was expected: "expected one of a, b; got \"c\"".
Result<Value> ParseValue(const KeySpec& spec, std::string_view text);
// The text syntax of a value: "250ms", "64MiB", "a,b", "true".
std::string FormatValue(const Value& value);

// The set of known keys. Modules add theirs at start-up, before Load.
// Not thread-safe while being built; read-only (any thread) afterwards.
class Schema {
 public:
  // InvalidArgument for a malformed name, a default of the wrong type or out
  // of range, or a name or environment variable that an earlier key already
  // claims (including through wildcards).
  Status Add(KeySpec spec);

  // The spec whose name matches `key` (wildcards included), or nullptr.
  const KeySpec* Find(std::string_view key) const;
  // The closest known key for a "did you mean" hint, or empty.
  std::string Suggest(std::string_view key) const;
  const std::vector<KeySpec>& keys() const { return keys_; }

 private:
  std::vector<KeySpec> keys_;
};

// Registers the keys the core uses: log.level, log.format, service.name.
Status AddCoreKeys(Schema& schema);

// Where an effective value came from.
struct Source {
  enum class Kind : std::uint8_t { kDefault, kFile, kEnv, kFlag };
  Kind kind = Kind::kDefault;
  std::string name;  // file path, variable name, or flag ("--log-level")
  int line = 0;      // kFile only

  // "default", "junction.toml:12", "JUNCTION_LOG_LEVEL", "--log-level".
  std::string ToString() const;
};

// A value given on the command line, which wins over everything else.
struct Flag {
  std::string key;    // "log.level"
  std::string value;  // text syntax
  std::string flag;   // as the user typed it, for messages and sources: "--log-level"
};

struct LoadOptions {
  // An explicitly named file (--config); a missing one is an error. When
  // empty, JUNCTION_CONFIG from `env` names it (also an error if missing);
  // otherwise `default_file` is read if it exists.
  std::string file = {};
  std::string default_file = "junction.toml";
  // Environment variables; only JUNCTION_* ones matter. Tests inject a map.
  std::map<std::string, std::string> env = {};
  std::vector<Flag> flags = {};
};

// The JUNCTION_* variables of this process.
std::map<std::string, std::string> ProcessEnvironment();

struct Entry {
  std::string key;
  const KeySpec* spec = nullptr;  // points into the Config's Schema
  Value value;
  Source source;
};

// The effective configuration. Immutable; safe to read from any thread.
// REQUIRES: the Schema given to Load outlives the Config.
class Config {
 public:
  // The effective value of `key`. REQUIRES: the schema knows `key` with that
  // type (kEnum reads with GetString); a wrong key or type is a bug and aborts.
  std::string GetString(std::string_view key) const;
  std::int64_t GetInt(std::string_view key) const;
  bool GetBool(std::string_view key) const;
  double GetDouble(std::string_view key) const;
  std::chrono::nanoseconds GetDuration(std::string_view key) const;
  std::uint64_t GetByteSize(std::string_view key) const;
  std::vector<std::string> GetStringList(std::string_view key) const;
  // REQUIRES: the schema knows `key`.
  Source SourceOf(std::string_view key) const;

  // The names of the tables under `prefix` that were given values, for
  // wildcard keys: TableNames("topics") -> {"orders", "payments"}.
  std::vector<std::string> TableNames(std::string_view prefix) const;

  // Every effective key, sorted: each non-wildcard schema key, and each
  // wildcard instance that a file, variable or flag set.
  std::vector<Entry> Entries() const;

 private:
  friend Result<Config> Load(const Schema& schema, const LoadOptions& options);
  explicit Config(const Schema* schema) : schema_(schema) {}
  const Entry* FindSet(std::string_view key) const;
  const Value& Get(std::string_view key, Type type) const;

  const Schema* schema_;
  std::map<std::string, Entry, std::less<>> set_;  // values not from defaults
};

// Loads defaults, the file, the environment and flags, in that order.
// Errors name the key and where it came from:
//   "junction.toml:12: unknown key 'log.levl' (did you mean 'log.level'?)"
//   "JUNCTION_LOG_FORMAT: expected one of auto, json, text; got \"xml\""
// NotFound for a missing explicitly named file; InvalidArgument otherwise.
Result<Config> Load(const Schema& schema, const LoadOptions& options);

}  // namespace junction::config
