#pragma once

// What messaging.cc and admin_commands.cc share: opening the Bus and running
// a command's coroutine on it, building messages from the flags, parsing
// durations and start positions.

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "junction/bus.h"
#include "junction/deadline.h"
#include "junction/message.h"
#include "junction/result.h"
#include "messaging.h"

namespace junction::cli {

// A command's body: runs on the main thread's io_context with the open bus;
// `stop` turns true on SIGINT/SIGTERM when the command asked for it. Returns
// the exit code.
using BusCommand = Awaitable<int> (*)(const Context& context, Bus& bus,
                                      const MessagingOptions& options,
                                      const std::atomic<bool>& stop);

// Opens the Bus of --server (else the `url` key), runs `command`, closes the
// bus. With `stop_on_signal` the first SIGINT/SIGTERM sets `stop` (a second
// one kills the process, as the default action does).
int RunOnBus(const Context& context, const MessagingOptions& options, BusCommand command,
             bool stop_on_signal);

// A message of the flags (--type, --source, --subject, --content-type, --key,
// -H) with `data`. Its id: --id when `total` is 1, "<--id>-<n>" when more,
// and "<stem>-<n>" without --id. InvalidArgument for a bad header or an
// attribute Message::Validate refuses.
Result<Message> BuildMessage(const MessagingOptions& options, std::string data, std::uint64_t n,
                             std::uint64_t total, const std::string& stem);

// The reply of `reply` to `request`: the --command's stdout, else the fixed
// body, else the request's body.
Result<Message> AnswerFor(const Context& context, const MessagingOptions& options,
                          const Message& request, const std::string& stem, std::uint64_t n);

// "5s", "250ms", "2m" (the configuration's duration syntax).
Result<Duration> ParseDuration(std::string_view text);
// --wait: Infinite when empty.
Result<Deadline> WaitDeadline(std::string_view text);
// earliest | latest | <offset> | <RFC 3339 time>; offsets only when
// `allow_offset`.
Result<StartPosition> ParseStart(std::string_view text, bool allow_offset = false);

// One message as `sub` prints it: the body alone (--raw), a JSON line
// (--json), or a line saying where it is (`attempt` when delivered), its
// headers, and its body.
void PrintMessage(const Context& context, const MessagingOptions& options, std::string_view topic,
                  PartitionId partition, Offset offset, std::optional<DeliveryCount> attempt,
                  const Message& message, std::uint64_t number);
// "0.52 s", "12.3 ms".
std::string FormatSeconds(double seconds);

// topics, groups and dlq (admin_commands.cc). `server` adds --server.
void AddAdminCommands(CLI::App& app, MessagingOptions& options,
                      const std::function<void(CLI::App*)>& server);
int RunAdmin(const Context& context, const CLI::App& app, const MessagingOptions& options);

}  // namespace junction::cli
