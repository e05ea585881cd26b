#pragma once

// Structured logging: one line per event, JSON by default, to stderr.
//
//   log::Info("partition opened", {{"topic", topic}, {"bytes", n}});
//
// writes
//
//   {"ts":"2026-01-01T00:00:00.000000Z","level":"info","msg":"partition opened",
//    "service":"junctiond","trace_id":"4bf9...","span_id":"00f0...","topic":"orders","bytes":12}
//
// (on one line). `trace_id`/`span_id` come from the innermost TraceScope of the
// calling thread, or from string fields of those names, and are omitted when
// unknown. A field named like a fixed key (ts, level, msg, service) is written
// with a leading underscore ("_msg") so that every key of a line is unique.
//
// Thread-safe: every function may be called from any thread; one event is one
// line, never interleaved with another thread's.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "junction/clock.h"
#include "junction/result.h"
#include "junction/status.h"

namespace junction::log {

enum class Level : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };

// "trace", "debug", "info", "warn", "error", "critical", "off".
std::string_view LevelName(Level level);
// Inverse of LevelName (case-sensitive; "warning" is accepted for kWarn).
// InvalidArgument: "expected one of trace, debug, ...; got \"loud\"".
Result<Level> ParseLevel(std::string_view name);

// kAuto: text when the output is stderr and stderr is a terminal, else JSON.
enum class Format : std::uint8_t { kAuto, kJson, kText };

// "auto", "json", "text".
std::string_view FormatName(Format format);
Result<Format> ParseFormat(std::string_view name);

// One key/value pair of an event. A Field borrows its key and string value:
// build it in the argument list of the logging call, never keep it.
class Field {
 public:
  using Value = std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool>;

  Field(std::string_view key, std::string_view value) : key_(key), value_(value) {}
  Field(std::string_view key, const std::string& value) : key_(key), value_(value) {}
  Field(std::string_view key, const char* value)
      : key_(key), value_(value == nullptr ? std::string_view() : std::string_view(value)) {}
  Field(std::string_view key, bool value) : key_(key), value_(value) {}
  Field(std::string_view key, double value) : key_(key), value_(value) {}
  template <std::signed_integral T>
  requires(!std::same_as<T, bool>) Field(std::string_view key, T value)
      : key_(key), value_(static_cast<std::int64_t>(value)) {}
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) Field(std::string_view key, T value)
      : key_(key), value_(static_cast<std::uint64_t>(value)) {}

  std::string_view key() const { return key_; }
  const Value& value() const { return value_; }

 private:
  std::string_view key_;
  Value value_;
};

struct Options {
  std::string service = "junction";
  Level level = Level::kInfo;
  Format format = Format::kAuto;
  // Async mode: the calling thread formats the line and queues it; one
  // background thread writes. The queue holds at most async_queue_size lines;
  // a caller blocks while it is full (nothing is dropped).
  bool async = false;
  std::size_t async_queue_size = 8192;
  // Test hook: write lines here instead of stderr (kAuto then means JSON).
  // Must outlive logging until the next Init or Shutdown.
  std::ostream* output = nullptr;
  // Source of `ts`; nullptr means RealClock(). Same lifetime as `output`.
  const Clock* clock = nullptr;
};

// Replaces the process's logger. Lines logged before Init returns go to the
// previous logger, which is flushed (async queue drained) before Init returns.
// Until the first Init, logging uses Options{} (JSON or text on stderr, info).
Status Init(const Options& options);
// Drains and flushes, then returns to the default logger (Options{}).
void Shutdown();
// Returns once every line logged before the call has been written.
void Flush();

void SetLevel(Level level);
Level GetLevel();
// True when events at `level` are written; use it to skip costly fields.
bool Enabled(Level level);

void Log(Level level, std::string_view msg, std::span<const Field> fields = {});

inline void Trace(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kTrace, msg, std::span<const Field>(fields.begin(), fields.size()));
}
inline void Debug(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kDebug, msg, std::span<const Field>(fields.begin(), fields.size()));
}
inline void Info(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kInfo, msg, std::span<const Field>(fields.begin(), fields.size()));
}
inline void Warn(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kWarn, msg, std::span<const Field>(fields.begin(), fields.size()));
}
inline void Error(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kError, msg, std::span<const Field>(fields.begin(), fields.size()));
}
inline void Critical(std::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kCritical, msg, std::span<const Field>(fields.begin(), fields.size()));
}

// Sets the calling thread's trace context for its lifetime; scopes nest and
// the previous context returns on destruction. IDs are lowercase hex as in
// W3C traceparent (32 and 16 digits); an empty id means "unknown".
// REQUIRES: destroyed on the thread that created it, in reverse order of
// creation (use it as a local variable).
class TraceScope {
 public:
  TraceScope(std::string_view trace_id_hex, std::string_view span_id_hex);
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

  // The calling thread's innermost scope, or nullptr.
  static const TraceScope* Current();
  const std::string& trace_id() const { return trace_id_; }
  const std::string& span_id() const { return span_id_; }

 private:
  std::string trace_id_;
  std::string span_id_;
  const TraceScope* previous_;
};

}  // namespace junction::log
