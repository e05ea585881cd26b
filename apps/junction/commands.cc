#include "commands.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "cli.h"
#include "junction/version.h"

namespace junction::cli {
namespace {

boost::json::value ToJson(const config::Value& value) {
  return std::visit(
      [&](const auto& v) -> boost::json::value {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool> ||
                      std::is_same_v<T, std::int64_t> || std::is_same_v<T, double>) {
          return boost::json::value(v);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          boost::json::array array;
          for (const std::string& item : v) array.emplace_back(item);
          return array;
        } else {
          return boost::json::value(config::FormatValue(value));  // "250ms", "64MiB"
        }
      },
      value);
}

}  // namespace

std::string Styled(const Context& context, std::string_view style, std::string_view text) {
  if (!context.color) return std::string(text);
  return std::string(style) + std::string(text) + std::string(kReset);
}

std::string Padded(std::string text, std::size_t width) {
  text.resize(std::max(width, text.size()), ' ');
  return text;
}

void PrintTable(const Context& context, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows,
                const std::vector<std::size_t>& right) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) {
    width[i] = header[i].size();
    for (const auto& row : rows) width[i] = std::max(width[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      std::string pad(width[i] - cells[i].size(), ' ');
      bool last = i + 1 == cells.size();
      if (std::find(right.begin(), right.end(), i) != right.end()) {
        text += pad + cells[i];
      } else {
        text += cells[i] + (last ? "" : pad);
      }
      if (!last) text += "  ";
    }
    return text;
  };
  context.out << Styled(context, kBold, line(header)) << '\n';
  for (const auto& row : rows) context.out << line(row) << '\n';
}

int Fail(const Context& context, std::string_view what, const Status& status) {
  context.err << "junction: " << what << ": " << status.message() << '\n';
  return kExitFailure;
}

int RunVersion(const Context& context) {
  BuildInfo info = GetBuildInfo();
  std::string_view commit = info.git_commit.empty() ? "unknown" : info.git_commit;
  if (context.json) {
    boost::json::object object;
    object["version"] = info.version;
    object["git_commit"] = commit;
    object["build_type"] = info.build_type;
    object["compiler"] = info.compiler;
    context.out << boost::json::serialize(object) << '\n';
    return kExitOk;
  }
  context.out << Styled(context, kBold, "junction " + std::string(info.version)) << '\n'
              << "commit:     " << commit << '\n'
              << "build type: " << info.build_type << '\n'
              << "compiler:   " << info.compiler << '\n';
  return kExitOk;
}

int RunConfigPrint(const Context& context) {
  std::vector<config::Entry> entries = context.config.Entries();
  if (context.json) {
    boost::json::object object;
    for (const config::Entry& entry : entries) {
      boost::json::object item;
      item["value"] = ToJson(entry.value);
      item["source"] = entry.source.ToString();
      object[entry.key] = std::move(item);
    }
    context.out << boost::json::serialize(object) << '\n';
    return kExitOk;
  }
  struct Row {
    std::string key, value, source;
    bool is_default;
  };
  std::vector<Row> rows;
  std::size_t key_width = 3;
  std::size_t value_width = 5;
  for (const config::Entry& entry : entries) {
    std::string value = config::FormatValue(entry.value);
    if (value.empty()) value = "\"\"";
    rows.push_back({entry.key, value, entry.source.ToString(),
                    entry.source.kind == config::Source::Kind::kDefault});
    key_width = std::max(key_width, entry.key.size());
    value_width = std::max(value_width, value.size());
  }
  context.out << Styled(context, kBold,
                        Padded("KEY", key_width) + "  " + Padded("VALUE", value_width) + "  SOURCE")
              << '\n';
  for (const Row& row : rows) {
    context.out << Padded(row.key, key_width) << "  " << Padded(row.value, value_width) << "  "
                << (row.is_default ? Styled(context, kDim, row.source) : row.source) << '\n';
  }
  return kExitOk;
}

}  // namespace junction::cli
