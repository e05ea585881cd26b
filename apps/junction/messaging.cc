#include "messaging.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <exception>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>

#include "cli.h"
#include "junction/bus.h"
#include "junction/clock.h"
#include "junction/cloudevents.h"
#include "messaging_internal.h"

namespace junction::cli {
namespace {

using std::chrono::milliseconds;

// How long the commands wait to open a subscription or responder.
constexpr Duration kOpenTimeout = std::chrono::seconds(10);
// Loops that wait for messages wake this often to notice Ctrl-C.
constexpr Duration kSlice = milliseconds(200);
// pub: at most this many messages, and about this many bytes, per batch.
constexpr std::size_t kBatchMessages = 1000;
constexpr std::size_t kBatchBytes = 512 * 1024;

std::string Joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) {
    if (!text.empty()) text += ' ';
    text += word;
  }
  return text;
}

std::string ReadAll(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// "{{n}}" in a body becomes the message's number (1-based), as `nats pub
// --count` does with {{Count}}.
std::string Expand(std::string_view body, std::uint64_t n) {
  std::string out;
  std::size_t at = 0;
  while (true) {
    std::size_t found = body.find("{{n}}", at);
    out.append(body.substr(at, found - at));
    if (found == std::string_view::npos) return out;
    out += std::to_string(n);
    at = found + 5;
  }
}

// 16 random hex digits: the stem of the ids of one command's messages.
std::string RandomStem() {
  std::random_device device;
  std::uint64_t value = (std::uint64_t{device()} << 32) ^ device();
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

Awaitable<int> Publish(const Context& context, Bus& bus, const MessagingOptions& options,
                       const std::atomic<bool>& stop) {
  std::vector<std::string> bodies;
  if (!options.body.empty()) {
    bodies.push_back(Joined(options.body));
  } else if (options.lines) {
    std::string line;
    while (std::getline(std::cin, line)) bodies.push_back(line);
  } else {
    bodies.push_back(ReadAll(std::cin));
  }
  std::string stem = RandomStem();
  std::uint64_t total = options.count * bodies.size();
  std::uint64_t n = 0;
  std::uint64_t duplicates = 0;
  auto started = std::chrono::steady_clock::now();
  std::vector<Message> batch;
  std::vector<std::string> ids;
  std::size_t batch_bytes = 0;
  while (n < total && !stop) {
    batch.clear();
    batch_bytes = 0;
    while (n < total && batch.size() < kBatchMessages && batch_bytes < kBatchBytes) {
      ++n;
      const std::string& body = bodies[(n - 1) % bodies.size()];
      Result<Message> message = BuildMessage(options, Expand(body, n), n, total, stem);
      if (!message.ok()) co_return Fail(context, "pub", message.status());
      batch_bytes += message->data.size();
      batch.push_back(std::move(*message));
    }
    ids.clear();
    for (const Message& message : batch) ids.push_back(message.id);
    Result<std::vector<PublishResult>> results =
        co_await bus.PublishBatch(options.topic, std::move(batch), {},
                                  Deadline::After(RealClock(), std::chrono::seconds(30)));
    if (!results.ok()) {
      context.err << "junction: pub: " << (n - ids.size()) << " of " << total
                  << " messages were published before: " << results.status().message() << '\n';
      co_return kExitFailure;
    }
    for (std::size_t i = 0; i < results->size(); ++i) {
      const PublishResult& result = (*results)[i];
      duplicates += result.duplicate ? 1 : 0;
      if (context.json) {
        boost::json::object object;
        object["topic"] = options.topic;
        object["partition"] = result.partition.value();
        object["offset"] = result.offset.value();
        object["id"] = ids[i];
        object["duplicate"] = result.duplicate;
        context.out << boost::json::serialize(object) << '\n';
      } else if (total == 1) {
        context.out << "published " << ids[i] << " to " << options.topic << " partition "
                    << result.partition.value() << " offset " << result.offset.value()
                    << (result.duplicate ? " (duplicate: stored before, not again)" : "") << '\n';
      }
    }
  }
  if (!context.json && total > 1) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    context.out << "published " << n << " messages to " << options.topic << " in "
                << FormatSeconds(seconds);
    if (duplicates > 0) context.out << " (" << duplicates << " duplicates, not stored again)";
    context.out << '\n';
  }
  co_return n == total ? kExitOk : kExitFailure;
}

Awaitable<int> Subscribe(const Context& context, Bus& bus, const MessagingOptions& options,
                         const std::atomic<bool>& stop) {
  SubscribeOptions subscribe;
  subscribe.group = options.group;
  if (!options.from.empty() && options.group.empty()) {
    co_return Fail(context, "sub: --from",
                   InvalidArgumentError("needs --group: a subscription without a group starts "
                                        "now and keeps no position"));
  }
  if (!options.from.empty()) {
    Result<StartPosition> start = ParseStart(options.from);
    if (!start.ok()) co_return Fail(context, "sub: --from", start.status());
    subscribe.start = *start;
  } else {
    subscribe.start = StartPosition::Latest();
  }
  Result<Deadline> wait = WaitDeadline(options.wait);
  if (!wait.ok()) co_return Fail(context, "sub: --wait", wait.status());
  Result<std::unique_ptr<Subscription>> subscription = co_await bus.Subscribe(
      options.topic, std::move(subscribe), Deadline::After(RealClock(), kOpenTimeout));
  if (!subscription.ok()) co_return Fail(context, "sub " + options.topic, subscription.status());
  std::uint64_t received = 0;
  int code = kExitOk;
  while (!stop && (options.max == 0 || received < options.max)) {
    if (wait->Expired(RealClock())) {
      if (options.max != 0) {
        context.err << "junction: sub: " << received << " of " << options.max
                    << " messages within --wait " << options.wait << '\n';
        code = kExitFailure;
      }
      break;
    }
    Deadline slice = std::min(Deadline::After(RealClock(), kSlice), *wait);
    Result<Delivery> delivery = co_await (*subscription)->Next(slice);
    if (!delivery.ok()) {
      if (delivery.status().code() == StatusCode::kDeadlineExceeded) continue;
      code = Fail(context, "sub " + options.topic, delivery.status());
      break;
    }
    ++received;
    PrintMessage(context, options, delivery->topic(), delivery->partition(), delivery->offset(),
                 delivery->attempt(), delivery->message(), received);
    if (!options.group.empty()) {
      Status acked = co_await delivery->Ack();
      if (!acked.ok()) context.err << "junction: sub: ack: " << acked.message() << '\n';
    }
  }
  Status closed = co_await (*subscription)->Close();
  if (!closed.ok() && code == kExitOk) code = Fail(context, "sub: leaving the group", closed);
  co_return code;
}

Awaitable<int> Request(const Context& context, Bus& bus, const MessagingOptions& options,
                       const std::atomic<bool>& /*stop*/) {
  Result<Duration> timeout = ParseDuration(options.timeout);
  if (!timeout.ok()) co_return Fail(context, "req: --timeout", timeout.status());
  std::string body = options.body.empty() ? ReadAll(std::cin) : Joined(options.body);
  Result<Message> request = BuildMessage(options, std::move(body), 1, 1, RandomStem());
  if (!request.ok()) co_return Fail(context, "req", request.status());
  Result<Message> reply = co_await bus.Request(options.topic, std::move(*request),
                                               Deadline::After(RealClock(), *timeout));
  if (!reply.ok()) {
    if (IsNoResponders(reply.status())) {
      co_return Fail(context, "req", UnavailableError("no responders on '" + options.topic + "'"));
    }
    if (reply.status().code() == StatusCode::kDeadlineExceeded) {
      co_return Fail(context, "req", DeadlineExceededError("no reply within " + options.timeout));
    }
    co_return Fail(context, "req " + options.topic, reply.status());
  }
  if (context.json) {
    boost::json::object object;
    object["event"] = boost::json::parse(cloudevents::EncodeJson(*reply));
    boost::json::object headers;
    for (const auto& [name, value] : reply->headers) headers[name] = value;
    object["headers"] = std::move(headers);
    context.out << boost::json::serialize(object) << '\n';
  } else {
    context.out << reply->data;
    if (reply->data.empty() || reply->data.back() != '\n') context.out << '\n';
  }
  co_return kExitOk;
}

Awaitable<int> Reply(const Context& context, Bus& bus, const MessagingOptions& options,
                     const std::atomic<bool>& stop) {
  Result<Deadline> wait = WaitDeadline(options.wait);
  if (!wait.ok()) co_return Fail(context, "reply: --wait", wait.status());
  Result<std::unique_ptr<Responder>> responder =
      co_await bus.Respond(options.topic, Deadline::After(RealClock(), kOpenTimeout));
  if (!responder.ok()) co_return Fail(context, "reply " + options.topic, responder.status());
  context.err << "junction: answering requests on '" << options.topic << "'"
              << (options.command.empty() ? "" : " with `" + options.command + "`")
              << " (Ctrl-C stops)" << std::endl;
  std::string stem = RandomStem();
  std::uint64_t answered = 0;
  int code = kExitOk;
  while (!stop && (options.max == 0 || answered < options.max) && !wait->Expired(RealClock())) {
    Deadline slice = std::min(Deadline::After(RealClock(), kSlice), *wait);
    Result<std::unique_ptr<IncomingRequest>> request = co_await (*responder)->Next(slice);
    if (!request.ok()) {
      if (request.status().code() == StatusCode::kDeadlineExceeded) continue;
      code = Fail(context, "reply " + options.topic, request.status());
      break;
    }
    ++answered;
    Result<Message> reply = AnswerFor(context, options, (*request)->message(), stem, answered);
    if (!reply.ok()) {
      context.err << "junction: reply: " << reply.status().message() << '\n';
      continue;  // no answer: the requester's deadline tells it
    }
    std::size_t bytes = reply->data.size();
    Status sent = co_await (*request)->Reply(std::move(*reply));
    if (!sent.ok()) {
      context.err << "junction: reply: " << sent.message() << '\n';
    } else if (context.json) {
      boost::json::object object;
      object["request_id"] = (*request)->message().id;
      object["reply_bytes"] = bytes;
      context.out << boost::json::serialize(object) << std::endl;
    } else {
      context.out << '[' << answered << "] answered " << (*request)->message().id << " (" << bytes
                  << " bytes)" << std::endl;
    }
  }
  Status closed = co_await (*responder)->Close();
  if (!closed.ok() && code == kExitOk) code = Fail(context, "reply: closing", closed);
  co_return code;
}

}  // namespace

Status AddMessagingConfigKeys(config::Schema& schema) {
  return schema.Add(config::StringKey(
      "url", std::string(kDefaultUrl),
      "Bus URL of the messaging commands (pub, sub, req, reply, topics, groups, bench)"));
}

void AddMessagingCommands(CLI::App& app, MessagingOptions& options) {
  auto server = [&](CLI::App* command) {
    command->add_option(
        "-s,--server", options.server,
        "Bus URL (default: the `url` key, JUNCTION_URL, " + std::string(kDefaultUrl) + ")");
  };
  auto message_flags = [&](CLI::App* command) {
    command->add_option("-k,--key", options.key, "Ordering and partitioning key");
    command->add_option("--id", options.id,
                        "Message id (dedupe); with --count N each gets -<n> appended");
    command->add_option("-H,--header", options.headers, "Header name:value (repeatable)");
    command->add_option("--type", options.type, "CloudEvents type");
    command->add_option("--source", options.source, "CloudEvents source");
    command->add_option("--subject", options.subject, "CloudEvents subject");
    command->add_option("--content-type", options.content_type,
                        "CloudEvents datacontenttype (\"application/json\")");
  };

  CLI::App* pub = app.add_subcommand("pub", "Publish messages to a topic");
  server(pub);
  pub->add_option("topic", options.topic, "Topic")->required();
  pub->add_option("body", options.body,
                  "Body ({{n}} becomes the message number); none: read stdin");
  pub->add_option("-c,--count", options.count, "Publish the body this many times")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}));
  pub->add_flag("--lines", options.lines, "Each line of stdin is a message of its own");
  message_flags(pub);

  CLI::App* sub = app.add_subcommand("sub", "Receive messages of a topic (Ctrl-C stops)");
  server(sub);
  sub->add_option("topic", options.topic, "Topic")->required();
  sub->add_option("-g,--group", options.group,
                  "Durable group to join, acking each message printed (none: ephemeral, "
                  "from now)");
  sub->add_option("-c,--count", options.max, "Stop after this many messages");
  sub->add_option("--from", options.from,
                  "earliest | latest | RFC 3339 time: where a new group starts (needs --group)");
  sub->add_flag("--raw", options.raw, "Print each body on its own line, nothing else");
  sub->add_option("--wait", options.wait,
                  "Give up after this long (\"10s\"); with --count a shortfall exits 1");

  CLI::App* req = app.add_subcommand("req", "Send a request and print the reply");
  server(req);
  req->add_option("topic", options.topic, "Topic")->required();
  req->add_option("body", options.body, "Body; none: read stdin");
  req->add_option("-t,--timeout", options.timeout, "How long to wait for the reply");
  message_flags(req);

  CLI::App* reply = app.add_subcommand("reply", "Answer requests on a topic (Ctrl-C stops)");
  server(reply);
  reply->add_option("topic", options.topic, "Topic")->required();
  reply->add_option("body", options.body, "Fixed reply body; none: echo each request");
  reply->add_option("--command", options.command,
                    "Run this shell command per request: the request body on its stdin, its "
                    "stdout the reply (JUNCTION_REQUEST_ID and _TYPE set)");
  reply->add_option("-c,--count", options.max, "Stop after this many requests");
  reply->add_option("--wait", options.wait, "Stop after this long (\"10s\")");
  reply->add_option("--type", options.type, "CloudEvents type of the replies");
  reply->add_option("--source", options.source, "CloudEvents source of the replies");

  AddAdminCommands(app, options, server);
}

int RunMessaging(const Context& context, const CLI::App& app, const MessagingOptions& options) {
  if (app.got_subcommand("pub")) return RunOnBus(context, options, Publish, false);
  if (app.got_subcommand("sub")) return RunOnBus(context, options, Subscribe, true);
  if (app.got_subcommand("req")) return RunOnBus(context, options, Request, false);
  if (app.got_subcommand("reply")) return RunOnBus(context, options, Reply, true);
  return RunAdmin(context, app, options);
}

}  // namespace junction::cli
