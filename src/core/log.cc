#include "junction/log.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <utility>

#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "core/text.h"

namespace junction::log {
namespace {

constexpr std::array<std::string_view, 7> kLevelNames = {"trace", "debug",    "info", "warn",
                                                         "error", "critical", "off"};
constexpr std::array<std::string_view, 6> kTextLevelNames = {"TRACE", "DEBUG", "INFO ",
                                                             "WARN ", "ERROR", "CRIT "};

// ---- Formatting -----------------------------------------------------------

void AppendQuoted(std::string& out, std::string_view s) {
  out += '"';
  text::AppendJsonEscaped(out, s);
  out += '"';
}

template <typename T>
void AppendNumber(std::string& out, T value) {
  std::array<char, 32> buffer;
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  out.append(buffer.data(), ec == std::errc() ? end : buffer.data());
}

void AppendDouble(std::string& out, double value, bool json) {
  if (std::isnan(value)) {
    out += json ? "\"NaN\"" : "NaN";
  } else if (std::isinf(value)) {
    out +=
        value > 0 ? (json ? "\"Infinity\"" : "Infinity") : (json ? "\"-Infinity\"" : "-Infinity");
  } else {
    AppendNumber(out, value);
  }
}

// RFC 3339, UTC, microseconds: 2026-01-01T00:00:00.000000Z.
void AppendTimestamp(std::string& out, WallTime time) {
  using std::chrono::days;
  using std::chrono::floor;
  using std::chrono::hh_mm_ss;
  using std::chrono::microseconds;
  using std::chrono::year_month_day;
  auto micros = floor<microseconds>(time);
  auto day = floor<days>(micros);
  year_month_day date(day);
  hh_mm_ss clock(micros - day);
  std::array<char, 40> buffer;
  int n = std::snprintf(buffer.data(), buffer.size(), "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ",
                        static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                        static_cast<unsigned>(date.day()), static_cast<int>(clock.hours().count()),
                        static_cast<int>(clock.minutes().count()),
                        static_cast<int>(clock.seconds().count()),
                        static_cast<long long>(clock.subseconds().count()));
  out.append(buffer.data(), static_cast<std::size_t>(n));
}

bool IsFixedKey(std::string_view key) {
  return key == "ts" || key == "level" || key == "msg" || key == "service";
}

bool IsTraceKey(std::string_view key) { return key == "trace_id" || key == "span_id"; }

const std::string_view* AsString(const Field& field) {
  return std::get_if<std::string_view>(&field.value());
}

// Text values are bare unless they need quoting to stay one token.
bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || c == '"' || c == '=' || c == '\\' || u == 0x7f || u >= 0x80) return true;
  }
  return false;
}

void AppendValue(std::string& out, const Field::Value& value, bool json) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          if (json || NeedsQuotes(v)) {
            AppendQuoted(out, v);
          } else {
            out += v;
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          AppendDouble(out, v, json);
        } else {
          AppendNumber(out, v);
        }
      },
      value);
}

struct TraceIds {
  std::string_view trace_id;
  std::string_view span_id;
};

TraceIds ResolveTrace(std::span<const Field> fields) {
  TraceIds ids;
  if (const TraceScope* scope = TraceScope::Current()) {
    ids.trace_id = scope->trace_id();
    ids.span_id = scope->span_id();
  }
  for (const Field& field : fields) {
    const std::string_view* s = AsString(field);
    if (s == nullptr) continue;
    if (field.key() == "trace_id") ids.trace_id = *s;
    if (field.key() == "span_id") ids.span_id = *s;
  }
  return ids;
}

// A field that cannot be written under its own key gets a leading underscore.
bool Renamed(const Field& field) {
  return IsFixedKey(field.key()) || (IsTraceKey(field.key()) && AsString(field) == nullptr);
}

std::string FormatJson(WallTime time, Level level, std::string_view service, std::string_view msg,
                       std::span<const Field> fields) {
  std::string out;
  out.reserve(160 + msg.size());
  out += "{\"ts\":\"";
  AppendTimestamp(out, time);
  out += "\",\"level\":\"";
  out += kLevelNames[static_cast<std::size_t>(level)];
  out += "\",\"msg\":";
  AppendQuoted(out, msg);
  out += ",\"service\":";
  AppendQuoted(out, service);
  TraceIds ids = ResolveTrace(fields);
  if (!ids.trace_id.empty()) {
    out += ",\"trace_id\":";
    AppendQuoted(out, ids.trace_id);
  }
  if (!ids.span_id.empty()) {
    out += ",\"span_id\":";
    AppendQuoted(out, ids.span_id);
  }
  for (const Field& field : fields) {
    bool renamed = Renamed(field);
    if (!renamed && IsTraceKey(field.key())) continue;  // written above
    out += ",\"";
    if (renamed) out += '_';
    text::AppendJsonEscaped(out, field.key());
    out += "\":";
    AppendValue(out, field.value(), /*json=*/true);
  }
  out += '}';
  return out;
}

// 2026-01-01T00:00:00.000000Z INFO  partition opened topic=orders bytes=12 trace_id=...
std::string FormatText(WallTime time, Level level, std::string_view msg,
                       std::span<const Field> fields) {
  std::string out;
  out.reserve(120 + msg.size());
  AppendTimestamp(out, time);
  out += ' ';
  out += kTextLevelNames[static_cast<std::size_t>(level)];
  out += ' ';
  text::AppendJsonEscaped(out, msg);
  for (const Field& field : fields) {
    if (!Renamed(field) && IsTraceKey(field.key())) continue;
    out += ' ';
    if (Renamed(field)) out += '_';
    text::AppendJsonEscaped(out, field.key());
    out += '=';
    AppendValue(out, field.value(), /*json=*/false);
  }
  TraceIds ids = ResolveTrace(fields);
  if (!ids.trace_id.empty()) {
    out += " trace_id=";
    text::AppendJsonEscaped(out, ids.trace_id);
  }
  if (!ids.span_id.empty()) {
    out += " span_id=";
    text::AppendJsonEscaped(out, ids.span_id);
  }
  return out;
}

// ---- Sinks and process state ----------------------------------------------

// Wraps the real sink so that Flush() can wait for the async writer: flushes
// are queued in ticket order and the single writer thread completes them in
// that order, so `completed >= ticket` means every earlier line is written.
class FlushTrackingSink final : public spdlog::sinks::sink {
 public:
  explicit FlushTrackingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& msg) override { inner_->log(msg); }
  void flush() override {
    inner_->flush();
    std::lock_guard lock(mutex_);  // notify under the lock: a waiter may destroy us
    ++completed_;
    done_.notify_all();
  }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

  void WaitFor(std::uint64_t ticket) {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return completed_ >= ticket; });
  }

 private:
  spdlog::sink_ptr inner_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::uint64_t completed_ = 0;  // guarded by mutex_
};

// One configured logger. Immutable after construction except through the
// spdlog objects, which are thread-safe. Destroying it drains the async queue
// (the thread pool joins after writing what was queued).
struct State {
  std::string service;
  bool json = true;
  const Clock* clock = nullptr;
  std::shared_ptr<FlushTrackingSink> tracking;  // async only
  std::shared_ptr<spdlog::logger> logger;
  // Async only. Declared last so that it is destroyed first: its destructor
  // writes what is queued and joins the writer thread before the sinks go.
  std::shared_ptr<spdlog::details::thread_pool> pool;
  std::mutex flush_mutex;          // orders flush requests with their tickets
  std::uint64_t flush_ticket = 0;  // guarded by flush_mutex

  void Flush() {
    if (tracking == nullptr) {
      logger->flush();
      return;
    }
    std::uint64_t ticket;
    {
      std::lock_guard lock(flush_mutex);
      ticket = ++flush_ticket;
      logger->flush();
    }
    tracking->WaitFor(ticket);
  }
};

std::shared_ptr<State> MakeState(const Options& options) {
  auto state = std::make_shared<State>();
  state->service = options.service;
  state->clock = options.clock != nullptr ? options.clock : &RealClock();
  spdlog::sink_ptr sink;
  if (options.output != nullptr) {
    sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*options.output);
    state->json = options.format != Format::kText;
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    state->json = options.format == Format::kJson ||
                  (options.format == Format::kAuto && ::isatty(STDERR_FILENO) == 0);
  }
  sink->set_pattern("%v");
  if (options.async) {
    state->pool = std::make_shared<spdlog::details::thread_pool>(
        std::max<std::size_t>(options.async_queue_size, 1), 1);
    state->tracking = std::make_shared<FlushTrackingSink>(sink);
    state->logger = std::make_shared<spdlog::async_logger>("junction", state->tracking, state->pool,
                                                           spdlog::async_overflow_policy::block);
  } else {
    state->logger = std::make_shared<spdlog::logger>("junction", sink);
  }
  state->logger->set_level(spdlog::level::trace);
  return state;
}

std::atomic<Level> g_level{Level::kInfo};

std::mutex& StateMutex() {
  static std::mutex mutex;
  return mutex;
}

// Guarded by StateMutex(). Lazily holds the default logger.
std::shared_ptr<State>& StateSlot() {
  static std::shared_ptr<State> state;
  return state;
}

std::shared_ptr<State> CurrentState() {
  std::lock_guard lock(StateMutex());
  std::shared_ptr<State>& slot = StateSlot();
  if (slot == nullptr) slot = MakeState(Options{});
  return slot;
}

// Installs `next` and returns once the previous logger has written everything.
void Replace(std::shared_ptr<State> next) {
  std::shared_ptr<State> previous;
  {
    std::lock_guard lock(StateMutex());
    previous = std::exchange(StateSlot(), std::move(next));
  }
  if (previous != nullptr) previous->Flush();
}

thread_local const TraceScope* t_current_scope = nullptr;

}  // namespace

std::string_view LevelName(Level level) { return kLevelNames[static_cast<std::size_t>(level)]; }

Result<Level> ParseLevel(std::string_view name) {
  for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
    if (name == kLevelNames[i]) return static_cast<Level>(i);
  }
  if (name == "warning") return Level::kWarn;
  return InvalidArgumentError(
      "expected one of trace, debug, info, warn, error, critical, off; got \"" + std::string(name) +
      "\"");
}

std::string_view FormatName(Format format) {
  switch (format) {
    case Format::kJson:
      return "json";
    case Format::kText:
      return "text";
    case Format::kAuto:
      break;
  }
  return "auto";
}

Result<Format> ParseFormat(std::string_view name) {
  for (Format f : {Format::kAuto, Format::kJson, Format::kText}) {
    if (name == FormatName(f)) return f;
  }
  return InvalidArgumentError("expected one of auto, json, text; got \"" + std::string(name) +
                              "\"");
}

Status Init(const Options& options) {
  std::shared_ptr<State> next;
  try {
    next = MakeState(options);
  } catch (const std::exception& e) {
    return InternalError(std::string("cannot start logger: ") + e.what());
  }
  g_level.store(options.level, std::memory_order_relaxed);
  Replace(std::move(next));
  return OkStatus();
}

void Shutdown() {
  g_level.store(Options{}.level, std::memory_order_relaxed);
  Replace(nullptr);
}

void Flush() { CurrentState()->Flush(); }

void SetLevel(Level level) { g_level.store(level, std::memory_order_relaxed); }

Level GetLevel() { return g_level.load(std::memory_order_relaxed); }

bool Enabled(Level level) { return level != Level::kOff && level >= GetLevel(); }

void Log(Level level, std::string_view msg, std::span<const Field> fields) {
  if (!Enabled(level)) return;
  std::shared_ptr<State> state = CurrentState();
  WallTime now = state->clock->WallNow();
  std::string line = state->json ? FormatJson(now, level, state->service, msg, fields)
                                 : FormatText(now, level, msg, fields);
  state->logger->log(static_cast<spdlog::level::level_enum>(level), std::string_view(line));
}

TraceScope::TraceScope(std::string_view trace_id_hex, std::string_view span_id_hex)
    : trace_id_(trace_id_hex), span_id_(span_id_hex), previous_(t_current_scope) {
  t_current_scope = this;
}

TraceScope::~TraceScope() { t_current_scope = previous_; }

const TraceScope* TraceScope::Current() { return t_current_scope; }

}  // namespace junction::log
