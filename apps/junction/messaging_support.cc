#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>

#include "cli.h"
#include "junction/clock.h"
#include "junction/cloudevents.h"
#include "junction/config.h"
#include "messaging_internal.h"

namespace junction::cli {
namespace {

// The largest reply body a --command may produce (the broker's default
// message limit less room for the attributes).
constexpr std::size_t kMaxCommandOutput = (1u << 20) - 4096;

Awaitable<int> RunAndClose(BusCommand command, const Context& context, Bus& bus,
                           const MessagingOptions& options, const std::atomic<bool>& stop) {
  int code = co_await command(context, bus, options, stop);
  Status closed = co_await bus.Close();
  if (!closed.ok() && code == kExitOk) code = Fail(context, "closing the bus", closed);
  co_return code;
}

std::string_view Trimmed(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Runs `command` with /bin/sh, `input` on its stdin (from a temporary file,
// so that a command that writes before it reads cannot deadlock us) and the
// request's id, type and topic in REQUEST_ID, REQUEST_TYPE, REQUEST_TOPIC.
Result<std::string> RunShell(const std::string& command, const Message& request,
                             const std::string& topic) {
  char path[] = "/tmp/junction-reply-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return InternalError(std::string("mkstemp: ") + std::strerror(errno));
  std::string_view rest = request.data;
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      ::unlink(path);
      return InternalError(std::string("writing the request: ") + std::strerror(errno));
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  ::close(fd);
  ::setenv("REQUEST_ID", request.id.c_str(), 1);
  ::setenv("REQUEST_TYPE", request.type.c_str(), 1);
  ::setenv("REQUEST_TOPIC", topic.c_str(), 1);
  std::string line = "(" + command + ") < " + path;
  FILE* pipe = ::popen(line.c_str(), "r");
  if (pipe == nullptr) {
    ::unlink(path);
    return InternalError(std::string("popen: ") + std::strerror(errno));
  }
  std::string output;
  char buffer[8192];
  bool too_big = false;
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) {
    if (output.size() + n > kMaxCommandOutput) too_big = true;
    if (!too_big) output.append(buffer, n);
  }
  int status = ::pclose(pipe);
  ::unlink(path);
  if (too_big) {
    return ResourceExhaustedError("`" + command + "` wrote more than " +
                                  std::to_string(kMaxCommandOutput) + " bytes; no reply sent");
  }
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return FailedPreconditionError("`" + command + "` failed (exit status " + std::to_string(code) +
                                   ") for request " + request.id + "; no reply sent");
  }
  return output;
}

}  // namespace

int RunOnBus(const Context& context, const MessagingOptions& options, BusCommand command,
             bool stop_on_signal) {
  std::string url = options.server.empty() ? context.config.GetString("url") : options.server;
  Result<std::unique_ptr<Bus>> bus = Bus::Open(url);
  if (!bus.ok()) {
    // The transports' messages name the URL already.
    context.err << "junction: " << bus.status().message() << '\n';
    return kExitFailure;
  }
  boost::asio::io_context io;
  std::atomic<bool> stop{false};
  boost::asio::signal_set signals(io);
  if (stop_on_signal) {
    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.async_wait([&](const boost::system::error_code& error, int) {
      if (error) return;
      stop = true;
      std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
      std::signal(SIGTERM, SIG_DFL);
    });
  }
  int code = kExitFailure;
  boost::asio::co_spawn(io, RunAndClose(command, context, **bus, options, stop),
                        [&](const std::exception_ptr& error, int result) {
                          signals.cancel();
                          if (!error) {
                            code = result;
                            return;
                          }
                          try {
                            std::rethrow_exception(error);
                          } catch (const std::exception& e) {
                            context.err << "junction: " << e.what() << '\n';
                          }
                        });
  io.run();
  return code;
}

Result<Message> BuildMessage(const MessagingOptions& options, std::string data, std::uint64_t n,
                             std::uint64_t total, const std::string& stem) {
  Message message;
  if (options.id.empty()) {
    message.id = stem + "-" + std::to_string(n);
  } else {
    message.id = total == 1 ? options.id : options.id + "-" + std::to_string(n);
  }
  message.source = options.source;
  message.type = options.type;
  message.time = std::chrono::time_point_cast<std::chrono::nanoseconds>(RealClock().WallNow());
  if (!options.subject.empty()) message.subject = options.subject;
  if (!options.content_type.empty()) message.datacontenttype = options.content_type;
  if (!options.key.empty()) message.key = options.key;
  for (const std::string& header : options.headers) {
    std::size_t colon = header.find(':');
    if (colon == std::string::npos || colon == 0) {
      return InvalidArgumentError("-H '" + header + "': expected name:value");
    }
    message.headers[std::string(Trimmed(std::string_view(header).substr(0, colon)))] =
        std::string(Trimmed(std::string_view(header).substr(colon + 1)));
  }
  message.data = std::move(data);
  JUNCTION_RETURN_IF_ERROR(message.Validate());
  return message;
}

Result<Message> AnswerFor(const Context& /*context*/, const MessagingOptions& options,
                          const Message& request, const std::string& stem, std::uint64_t n) {
  std::string data;
  if (!options.command.empty()) {
    JUNCTION_ASSIGN_OR_RETURN(data, RunShell(options.command, request, options.topic));
  } else if (!options.body.empty()) {
    for (const std::string& word : options.body) {
      if (!data.empty()) data += ' ';
      data += word;
    }
  } else {
    data = request.data;
  }
  MessagingOptions reply_options;
  reply_options.type = options.type;
  reply_options.source = options.source;
  return BuildMessage(reply_options, std::move(data), n, 2, stem);
}

Result<Duration> ParseDuration(std::string_view text) {
  JUNCTION_ASSIGN_OR_RETURN(
      config::Value value,
      config::ParseValue(config::DurationKey("duration", std::chrono::seconds(0), ""), text));
  return std::chrono::duration_cast<Duration>(std::get<std::chrono::nanoseconds>(value));
}

Result<Deadline> WaitDeadline(std::string_view text) {
  if (text.empty()) return Deadline::Infinite();
  JUNCTION_ASSIGN_OR_RETURN(Duration wait, ParseDuration(text));
  return Deadline::After(RealClock(), wait);
}

Result<StartPosition> ParseStart(std::string_view text, bool allow_offset) {
  if (text == "earliest") return StartPosition::Earliest();
  if (text == "latest") return StartPosition::Latest();
  if (allow_offset && !text.empty() && text.find_first_not_of("0123456789") == text.npos) {
    std::uint64_t offset = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), offset);
    if (error != std::errc() || end != text.data() + text.size()) {
      return InvalidArgumentError("'" + std::string(text) + "': offset out of range");
    }
    return StartPosition::AtOffset(Offset(offset));
  }
  Result<Timestamp> time = ParseRfc3339(text);
  if (!time.ok()) {
    return InvalidArgumentError("'" + std::string(text) + "': expected earliest, latest" +
                                (allow_offset ? ", an offset" : "") +
                                " or an RFC 3339 time (2026-11-27T10:00:00Z)");
  }
  return StartPosition::AtTime(*time);
}

std::string FormatSeconds(double seconds) {
  char text[32];
  if (seconds < 1) {
    std::snprintf(text, sizeof text, "%.1f ms", seconds * 1000);
  } else {
    std::snprintf(text, sizeof text, "%.2f s", seconds);
  }
  return text;
}

void PrintMessage(const Context& context, const MessagingOptions& options, std::string_view topic,
                  PartitionId partition, Offset offset, std::optional<DeliveryCount> attempt,
                  const Message& message, std::uint64_t number) {
  if (options.raw) {
    context.out << message.data << '\n';
  } else if (context.json) {
    boost::json::object object;
    object["topic"] = topic;
    object["partition"] = partition.value();
    object["offset"] = offset.value();
    if (attempt) object["attempt"] = attempt->value();
    object["event"] = boost::json::parse(cloudevents::EncodeJson(message));
    boost::json::object headers;
    for (const auto& [name, value] : message.headers) headers[name] = value;
    object["headers"] = std::move(headers);
    context.out << boost::json::serialize(object) << '\n';
  } else {
    std::ostringstream line;
    line << '[' << number << "] " << topic << " partition " << partition.value() << " offset "
         << offset.value();
    if (attempt) line << " attempt " << attempt->value();
    line << "  id=" << message.id << " type=" << message.type;
    if (message.key) line << " key=" << *message.key;
    context.out << Styled(context, kDim, line.str()) << '\n';
    for (const auto& [name, value] : message.headers) {
      if (name == kHeaderAttempt) continue;  // on the line above
      std::string line = "  " + name;
      line += ": ";
      line += value;
      context.out << Styled(context, kDim, line) << '\n';
    }
    context.out << message.data << '\n';
  }
  context.out.flush();
}

}  // namespace junction::cli
