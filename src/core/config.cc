// The loading half of junction/config.h: file, environment, flags; Config.
// Key specs and value syntax live in config_schema.cc.

#include "junction/config.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <set>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "core/config_internal.h"
#include "core/env.h"

extern char** environ;  // NOLINT: POSIX

namespace junction::config {
namespace {

using internal::Quote;
using EntryMap = std::map<std::string, Entry, std::less<>>;

// ---- Environment ----------------------------------------------------------

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Matches `rest` (a variable name without "JUNCTION_") against the key
// pattern from segment `i` on, filling wildcard segments of `key`.
bool MatchEnv(std::string_view rest, const std::vector<std::string>& pattern, std::size_t i,
              std::vector<std::string>& key) {
  if (i == pattern.size()) return rest.empty();
  if (i > 0) {
    if (!rest.starts_with('_')) return false;
    rest.remove_prefix(1);
  }
  if (pattern[i] != "*") {
    std::string upper = EnvVarName(pattern[i]).substr(std::string_view("JUNCTION_").size());
    if (!rest.starts_with(upper)) return false;
    key[i] = pattern[i];
    return MatchEnv(rest.substr(upper.size()), pattern, i + 1, key);
  }
  for (std::size_t length = 1; length <= rest.size(); ++length) {
    if (MatchEnv(rest.substr(length), pattern, i + 1, key)) {
      key[i] = Lowercase(rest.substr(0, length));
      return true;
    }
  }
  return false;
}

// The key a JUNCTION_* variable sets, or empty when the schema has none.
std::string KeyForEnvVar(const Schema& schema, std::string_view name) {
  std::string_view rest = name.substr(std::string_view("JUNCTION_").size());
  for (const KeySpec& spec : schema.keys()) {
    std::vector<std::string> pattern = internal::SplitKey(spec.name);
    std::vector<std::string> key(pattern.size());
    if (MatchEnv(rest, pattern, 0, key)) return internal::JoinKey(key);
  }
  return "";
}

Status UnknownEnvVar(const Schema& schema, std::string_view name) {
  std::string message = std::string(name) + ": unknown configuration variable";
  std::string best;
  std::size_t best_distance = std::string::npos;
  for (const KeySpec& spec : schema.keys()) {
    std::string candidate = EnvVarName(spec.name);
    std::size_t distance = internal::EditDistance(name, candidate);
    if (internal::CloseEnough(name, candidate) && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (!best.empty()) message += " (did you mean " + best + "?)";
  return InvalidArgumentError(message);
}

// ---- File -----------------------------------------------------------------

std::string Describe(const toml::node& node) {
  if (const auto* s = node.as_string()) return Quote(s->get());
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  if (const auto* f = node.as_floating_point()) {
    std::ostringstream out;
    out << f->get();
    return out.str();
  }
  if (node.is_array()) return "an array";
  if (node.is_table()) return "a table";
  return "a date or time";
}

Result<Value> FromToml(const KeySpec& spec, const toml::node& node) {
  const auto* string = node.as_string();
  switch (spec.type) {
    case Type::kString:
    case Type::kEnum:
    case Type::kDuration:
    case Type::kByteSize:
      if (string != nullptr) return ParseValue(spec, string->get());
      if (const auto* i = node.as_integer(); i != nullptr && spec.type == Type::kByteSize) {
        if (i->get() >= 0) return Value(ByteSize{static_cast<std::uint64_t>(i->get())});
      }
      break;
    case Type::kInt:
      if (const auto* i = node.as_integer(); i != nullptr) {
        if (i->get() >= spec.min && i->get() <= spec.max) return Value(i->get());
      }
      break;
    case Type::kBool:
      if (const auto* b = node.as_boolean()) return Value(b->get());
      break;
    case Type::kDouble:
      if (const auto* f = node.as_floating_point()) return Value(f->get());
      if (const auto* i = node.as_integer()) return Value(static_cast<double>(i->get()));
      break;
    case Type::kStringList:
      if (const auto* array = node.as_array()) {
        std::vector<std::string> items;
        for (const toml::node& item : *array) {
          const auto* s = item.as_string();
          if (s == nullptr) {
            return InvalidArgumentError("expected a list of strings; got an item " +
                                        Describe(item));
          }
          items.push_back(s->get());
        }
        return Value(std::move(items));
      }
      break;
  }
  return InvalidArgumentError("expected " + internal::Describe(spec) + "; got " + Describe(node));
}

class FileLoader {
 public:
  FileLoader(const Schema& schema, const std::string& file, EntryMap& entries)
      : schema_(schema), file_(file), entries_(entries) {}

  Status Load(std::string_view content) {
    toml::table root;
    try {
      root = toml::parse(content, file_);
    } catch (const toml::parse_error& e) {
      const toml::source_position& at = e.source().begin;
      return InvalidArgumentError(file_ + ":" + std::to_string(at.line) + ":" +
                                  std::to_string(at.column) + ": " + std::string(e.description()));
    } catch (const std::exception& e) {
      return InvalidArgumentError(file_ + ": " + e.what());
    }
    std::vector<std::string> path;
    return Walk(root, path);
  }

 private:
  Status Walk(const toml::table& table, std::vector<std::string>& path) {
    for (auto&& [name, node] : table) {
      path.emplace_back(name.str());
      Status status = Visit(name, node, path);
      path.pop_back();
      JUNCTION_RETURN_IF_ERROR(status);
    }
    return OkStatus();
  }

  Status Visit(const toml::key& name, const toml::node& node, std::vector<std::string>& path) {
    int line = static_cast<int>(name.source().begin.line);
    if (line == 0) line = static_cast<int>(node.source().begin.line);
    std::string key = internal::JoinKey(path);
    const KeySpec* spec = schema_.Find(key);
    if (spec == nullptr) {
      if (const toml::table* sub = node.as_table()) return Walk(*sub, path);
      std::string message = "unknown key '" + key + "'";
      std::string suggestion = schema_.Suggest(key);
      if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
      return InvalidArgumentError(Where(line) + message);
    }
    Result<Value> value = FromToml(*spec, node);
    if (!value.ok()) {
      return InvalidArgumentError(Where(line) + key + ": " + value.status().message());
    }
    entries_[key] = Entry{key, spec, std::move(*value), Source{Source::Kind::kFile, file_, line}};
    return OkStatus();
  }

  std::string Where(int line) const { return file_ + ":" + std::to_string(line) + ": "; }

  const Schema& schema_;
  const std::string& file_;
  EntryMap& entries_;
};

// Reads the whole file through the Env seam; NotFound when it does not exist.
Result<std::string> ReadFile(const std::string& path) {
  Env& env = PosixEnv();
  if (!env.FileExists(path)) return NotFoundError(path + ": config file not found");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError(path + ": config file is a directory");
  }
  return ReadFileToString(env, path);
}

// Which file to read, if any: (path, must exist).
std::pair<std::string, bool> ChooseFile(const LoadOptions& options) {
  if (!options.file.empty()) return {options.file, true};
  auto it = options.env.find(std::string(kConfigEnvVar));
  if (it != options.env.end() && !it->second.empty()) return {it->second, true};
  std::error_code ec;
  if (!options.default_file.empty() && std::filesystem::exists(options.default_file, ec)) {
    return {options.default_file, true};
  }
  return {"", false};
}

}  // namespace

std::string Source::ToString() const {
  switch (kind) {
    case Kind::kDefault:
      return "default";
    case Kind::kFile:
      return name + ":" + std::to_string(line);
    case Kind::kEnv:
    case Kind::kFlag:
      return name;
  }
  return name;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    if (!text.starts_with("JUNCTION_")) continue;
    std::size_t equals = text.find('=');
    if (equals == std::string_view::npos) continue;
    env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

Result<Config> Load(const Schema& schema, const LoadOptions& options) {
  Config config(&schema);
  if (auto [path, read] = ChooseFile(options); read) {
    JUNCTION_ASSIGN_OR_RETURN(std::string content, ReadFile(path));
    JUNCTION_RETURN_IF_ERROR(FileLoader(schema, path, config.set_).Load(content));
  }
  for (const auto& [name, text] : options.env) {
    if (!name.starts_with("JUNCTION_") || name == kConfigEnvVar) continue;
    std::string key = KeyForEnvVar(schema, name);
    if (key.empty()) return UnknownEnvVar(schema, name);
    const KeySpec* spec = schema.Find(key);
    Result<Value> value = ParseValue(*spec, text);
    if (!value.ok()) return InvalidArgumentError(name + ": " + value.status().message());
    config.set_[key] = Entry{key, spec, std::move(*value), Source{Source::Kind::kEnv, name, 0}};
  }
  for (const Flag& flag : options.flags) {
    const KeySpec* spec = schema.Find(flag.key);
    if (spec == nullptr)
      return InvalidArgumentError(flag.flag + ": unknown key '" + flag.key + "'");
    Result<Value> value = ParseValue(*spec, flag.value);
    if (!value.ok()) return InvalidArgumentError(flag.flag + ": " + value.status().message());
    config.set_[flag.key] =
        Entry{flag.key, spec, std::move(*value), Source{Source::Kind::kFlag, flag.flag, 0}};
  }
  return config;
}

const Entry* Config::FindSet(std::string_view key) const {
  auto it = set_.find(key);
  return it == set_.end() ? nullptr : &it->second;
}

const Value& Config::Get(std::string_view key, Type type) const {
  const KeySpec* spec = schema_->Find(key);
  JUNCTION_CHECK(spec != nullptr) << "unknown config key '" << key << "'";
  bool same = spec->type == type || (type == Type::kString && spec->type == Type::kEnum);
  JUNCTION_CHECK(same) << "config key '" << key << "' read with the wrong type";
  const Entry* entry = FindSet(key);
  return entry != nullptr ? entry->value : spec->default_value;
}

std::string Config::GetString(std::string_view key) const {
  return std::get<std::string>(Get(key, Type::kString));
}
std::int64_t Config::GetInt(std::string_view key) const {
  return std::get<std::int64_t>(Get(key, Type::kInt));
}
bool Config::GetBool(std::string_view key) const { return std::get<bool>(Get(key, Type::kBool)); }
double Config::GetDouble(std::string_view key) const {
  return std::get<double>(Get(key, Type::kDouble));
}
std::chrono::nanoseconds Config::GetDuration(std::string_view key) const {
  return std::get<std::chrono::nanoseconds>(Get(key, Type::kDuration));
}
std::uint64_t Config::GetByteSize(std::string_view key) const {
  return std::get<ByteSize>(Get(key, Type::kByteSize)).bytes;
}
std::vector<std::string> Config::GetStringList(std::string_view key) const {
  return std::get<std::vector<std::string>>(Get(key, Type::kStringList));
}

Source Config::SourceOf(std::string_view key) const {
  JUNCTION_CHECK(schema_->Find(key) != nullptr) << "unknown config key '" << key << "'";
  const Entry* entry = FindSet(key);
  return entry != nullptr ? entry->source : Source{};
}

std::vector<std::string> Config::TableNames(std::string_view prefix) const {
  std::vector<std::string> want = internal::SplitKey(prefix);
  std::set<std::string> names;
  for (const auto& [key, entry] : set_) {
    std::vector<std::string> segments = internal::SplitKey(key);
    if (segments.size() > want.size() && std::equal(want.begin(), want.end(), segments.begin())) {
      names.insert(segments[want.size()]);
    }
  }
  return {names.begin(), names.end()};
}

std::vector<Entry> Config::Entries() const {
  std::map<std::string, Entry> all;
  for (const KeySpec& spec : schema_->keys()) {
    if (spec.name.find('*') != std::string::npos) continue;
    all[spec.name] = Entry{spec.name, &spec, spec.default_value, Source{}};
  }
  for (const auto& [key, entry] : set_) all[key] = entry;
  std::vector<Entry> entries;
  entries.reserve(all.size());
  for (auto& [key, entry] : all) entries.push_back(std::move(entry));
  return entries;
}

}  // namespace junction::config
