#pragma once

// The messaging commands of `junction`: pub, sub, req, reply, and the
// topics/groups/dlq administration. Each opens the Bus of `--server` (else
// the `url` key: junction.toml or JUNCTION_URL; default a junctiond on
// loopback), so the same commands work on junction://, file:// and mem://.

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "junction/config.h"

namespace junction::cli {

// The default of the `url` key: junctiond's default listen address.
inline constexpr std::string_view kDefaultUrl = "junction://127.0.0.1:7522";

struct MessagingOptions {
  std::string server;  // --server; empty: the `url` key
  std::string topic;
  std::vector<std::string> body;  // pub/req/reply: the body (joined by spaces)

  // pub / req
  std::uint64_t count = 1;
  std::string key;
  std::string id;
  std::string type = "junction.cli";
  std::string source = "/junction/cli";
  std::string subject;
  std::string content_type;
  std::vector<std::string> headers;  // -H name:value
  bool lines = false;                // pub: each line of stdin is one message
  std::string timeout = "5s";        // req: how long to wait for the reply

  // sub / reply
  std::string group;
  std::string from;  // earliest | latest | RFC 3339 time; empty: the default
  bool raw = false;
  std::string wait;       // sub/reply: give up after this long (empty: forever)
  std::uint64_t max = 0;  // sub/reply --count: stop after this many (0: never)
  std::string command;    // reply: a shell command per request

  // topics / groups
  std::uint32_t partitions = 1;
  std::string retention_bytes;
  std::string retention_age;
  std::string dedupe_window;
  std::string to;           // groups seek: earliest | latest | <offset> | <RFC 3339 time>
  bool yes = false;         // topics rm|purge: really
  bool dry_run = false;     // dlq redrive
  std::uint64_t limit = 0;  // dlq peek|redrive: at most this many (0: the default)
};

// Adds the `url` key ("Bus URL of the messaging commands").
Status AddMessagingConfigKeys(config::Schema& schema);

// Adds pub, sub, req, reply, topics, groups and dlq to `app`; parsing fills
// `options`, which must outlive the parse.
void AddMessagingCommands(CLI::App& app, MessagingOptions& options);

// Runs the messaging subcommand `app` got; -1 when it got none of them.
int RunMessaging(const Context& context, const CLI::App& app, const MessagingOptions& options);

}  // namespace junction::cli
