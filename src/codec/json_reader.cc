#include "codec/json_reader.h"

#include <cstdint>
#include <exception>
#include <functional>
#include <set>
#include <utility>

#include <boost/json/basic_parser_impl.hpp>

#include "codec/text.h"

namespace junction::cloudevents::internal {
namespace {

namespace json = boost::json;

enum class Mode { kEvent, kBatch, kValue };

// SAX handler for json::basic_parser. Containers shallower than
// member_depth_ are the structure (a batch's array, an event's object); every
// value that starts at member_depth_ is captured as compact text into one
// JsonMember. In kValue mode the whole document is that one member.
class Handler {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  Handler(Mode mode, std::size_t max_events)
      : mode_(mode),
        member_depth_(mode == Mode::kEvent   ? 1
                      : mode == Mode::kBatch ? 2
                                             : 0),
        max_events_(max_events) {}

  const Status& error() const { return error_; }
  std::vector<JsonEvent>& events() { return events_; }
  JsonMember& root() { return root_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code& ec) { return BeginContainer(true, ec); }
  bool on_object_end(std::size_t, json::error_code&) { return EndContainer(); }
  bool on_array_begin(json::error_code& ec) { return BeginContainer(false, ec); }
  bool on_array_end(std::size_t, json::error_code&) { return EndContainer(); }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key_.append(s.data(), s.size());
    return OnKey(ec);
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    string_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    string_.append(s.data(), s.size());
    return Scalar(JsonKind::kString, ec);
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_uint64(std::uint64_t, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_double(double, json::string_view s, json::error_code& ec) { return Number(s, ec); }
  bool on_bool(bool b, json::error_code& ec) {
    boolean_ = b;
    return Scalar(JsonKind::kBool, ec);
  }
  bool on_null(json::error_code& ec) { return Scalar(JsonKind::kNull, ec); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    bool is_object;
    std::size_t count = 0;
    std::set<std::string, std::less<>> keys;  // objects: every key seen so far
  };

  std::size_t depth() const { return frames_.size(); }

  bool Fail(Status status, json::error_code& ec) {
    error_ = std::move(status);
    ec = json::error::syntax;
    return false;
  }

  // "event 3: attribute 'data': " — where the reader is, for error messages.
  std::string Where() const {
    std::string where;
    if (mode_ == Mode::kBatch && !events_.empty()) {
      where = "event " + std::to_string(events_.size() - 1) + ": ";
    }
    if (mode_ != Mode::kValue && depth() > member_depth_) {
      where += "attribute " + Quote(member_key_) + ": ";
    }
    return where;
  }

  // Called as every value starts.
  bool BeginValue(JsonKind kind, json::error_code& ec) {
    std::size_t d = depth();
    if (d < member_depth_) {
      bool want_object = mode_ == Mode::kEvent || d == 1;
      JsonKind want = want_object ? JsonKind::kObject : JsonKind::kArray;
      if (kind != want) {
        std::string what = mode_ == Mode::kEvent ? "an event"
                           : d == 0              ? "a batch"
                                                 : "event " + std::to_string(events_.size());
        return Fail(InvalidArgumentError(what + " must be " + std::string(JsonKindName(want)) +
                                         ", not " + std::string(JsonKindName(kind))),
                    ec);
      }
      if (want_object) {
        if (events_.size() >= max_events_) {
          return Fail(ResourceExhaustedError("batch has more than " + std::to_string(max_events_) +
                                             " events"),
                      ec);
        }
        events_.emplace_back();
      }
      return true;
    }
    if (d == member_depth_) {
      compact_.clear();
    } else if (!frames_.back().is_object && frames_.back().count++ > 0) {
      compact_ += ',';
    }
    return true;
  }

  bool BeginContainer(bool is_object, json::error_code& ec) {
    if (!BeginValue(is_object ? JsonKind::kObject : JsonKind::kArray, ec)) return false;
    if (depth() >= member_depth_) compact_ += is_object ? '{' : '[';
    frames_.push_back(Frame{is_object, 0, {}});
    return true;
  }

  bool EndContainer() {
    bool is_object = frames_.back().is_object;
    frames_.pop_back();
    if (depth() >= member_depth_) {
      compact_ += is_object ? '}' : ']';
      if (depth() == member_depth_) FinishMember(is_object ? JsonKind::kObject : JsonKind::kArray);
    }
    return true;
  }

  bool OnKey(json::error_code& ec) {
    Frame& frame = frames_.back();
    if (!frame.keys.insert(key_).second) {
      return Fail(InvalidArgumentError(Where() + "duplicate key " + Quote(key_)), ec);
    }
    if (depth() == member_depth_) {
      member_key_ = std::move(key_);
    } else {
      if (frame.count++ > 0) compact_ += ',';
      AppendJsonString(compact_, key_);
      compact_ += ':';
    }
    key_.clear();
    return true;
  }

  bool Number(json::string_view s, json::error_code& ec) {
    number_.append(s.data(), s.size());
    return Scalar(JsonKind::kNumber, ec);
  }

  bool Scalar(JsonKind kind, json::error_code& ec) {
    if (!BeginValue(kind, ec)) return false;
    switch (kind) {
      case JsonKind::kNull:
        compact_ += "null";
        break;
      case JsonKind::kBool:
        compact_ += boolean_ ? "true" : "false";
        break;
      case JsonKind::kNumber:
        compact_ += number_;
        break;
      case JsonKind::kString:
        AppendJsonString(compact_, string_);
        break;
      case JsonKind::kObject:
      case JsonKind::kArray:
        break;
    }
    if (depth() == member_depth_) FinishMember(kind);
    number_.clear();
    string_.clear();
    return true;
  }

  void FinishMember(JsonKind kind) {
    JsonMember member;
    member.key = std::move(member_key_);
    member.kind = kind;
    member.boolean = boolean_;
    if (kind == JsonKind::kString) member.string = std::move(string_);
    member.compact = std::move(compact_);
    compact_.clear();
    member_key_.clear();
    if (mode_ == Mode::kValue) {
      root_ = std::move(member);
    } else {
      events_.back().push_back(std::move(member));
    }
  }

  Mode mode_;
  std::size_t member_depth_;
  std::size_t max_events_;
  Status error_;
  std::vector<Frame> frames_;
  std::vector<JsonEvent> events_;
  JsonMember root_;
  std::string member_key_;  // key of the member being read
  std::string compact_;     // its value so far, as compact JSON
  std::string key_, string_, number_;
  bool boolean_ = false;
};

// Runs the parser over all of `json`. OK when it holds exactly one value.
Status Parse(json::basic_parser<Handler>& parser, std::string_view json, std::size_t max_depth) {
  json::error_code ec;
  std::size_t consumed = 0;
  try {
    consumed = parser.write_some(false, json.data(), json.size(), ec);
  } catch (const std::exception& e) {
    return ResourceExhaustedError(std::string("out of memory while reading JSON: ") + e.what());
  }
  if (!parser.handler().error().ok()) return parser.handler().error();
  if (ec == json::error::too_deep) {
    return ResourceExhaustedError("JSON nested deeper than " + std::to_string(max_depth) +
                                  " levels at byte " + std::to_string(consumed));
  }
  if (ec) {
    return InvalidArgumentError("malformed JSON at byte " + std::to_string(consumed) + ": " +
                                ec.message());
  }
  if (consumed != json.size()) {
    return InvalidArgumentError("trailing characters after the JSON value at byte " +
                                std::to_string(consumed));
  }
  return OkStatus();
}

json::parse_options Options(std::size_t max_depth) {
  json::parse_options options;
  options.max_depth = max_depth;
  return options;
}

}  // namespace

std::string_view JsonKindName(JsonKind kind) {
  switch (kind) {
    case JsonKind::kNull:
      return "null";
    case JsonKind::kBool:
      return "a boolean";
    case JsonKind::kNumber:
      return "a number";
    case JsonKind::kString:
      return "a string";
    case JsonKind::kObject:
      return "a JSON object";
    case JsonKind::kArray:
      return "a JSON array";
  }
  return "?";
}

Result<std::vector<JsonEvent>> ReadJsonEvents(std::string_view json, JsonShape shape,
                                              const JsonReadLimits& limits) {
  json::basic_parser<Handler> parser(Options(limits.max_depth),
                                     shape == JsonShape::kEvent ? Mode::kEvent : Mode::kBatch,
                                     limits.max_events);
  JUNCTION_RETURN_IF_ERROR(Parse(parser, json, limits.max_depth));
  return std::move(parser.handler().events());
}

std::optional<std::string> CompactJson(std::string_view json, std::size_t max_depth) {
  json::basic_parser<Handler> parser(Options(max_depth), Mode::kValue, 0);
  if (!Parse(parser, json, max_depth).ok()) return std::nullopt;
  return std::move(parser.handler().root().compact);
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  text::AppendJsonEscaped(out, s);
  out += '"';
}

}  // namespace junction::cloudevents::internal
