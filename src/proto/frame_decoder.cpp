#include "proto/frame_decoder.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace sd::proto {

namespace {

/// A table of the bytes that end a run of "nothing to do here".
constexpr std::array<bool, 256> stops(std::string_view chars) {
  std::array<bool, 256> t{};
  for (const char c : chars) t[static_cast<unsigned char>(c)] = true;
  return t;
}
/// Inside a string: its end, an escape, or a raw newline (an error).
constexpr auto kStopsInString = stops("\"\\\n");
/// Outside strings: a string's start, and brackets.
constexpr auto kStopsOutside = stops("\"{}[]");

/// The first position at or after `i` whose byte is in `stops` (or `end`).
inline std::size_t skip(const std::array<bool, 256>& stops, const char* data, std::size_t i, std::size_t end) {
  while (i < end && !stops[static_cast<unsigned char>(data[i])]) ++i;
  return i;
}

}  // namespace

FrameDecoder::FrameDecoder(std::size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

void FrameDecoder::compact() {
  if (pos_ == 0) return;
  if (pos_ == committed_) {
    committed_ = 0;
    scan_ = 0;
    pos_ = 0;
    return;
  }
  // Move the tail to the front only when that frees a good part of the buffer.
  if (pos_ < 4096 && pos_ * 2 < committed_) return;
  std::memmove(buffer_.get(), buffer_.get() + pos_, committed_ - pos_);
  committed_ -= pos_;
  scan_ -= pos_;
  pos_ = 0;
}

char* FrameDecoder::prepare(std::size_t n) {
  compact();
  if (capacity_ - committed_ < n) {
    const std::size_t capacity = std::max(committed_ + n, capacity_ * 2);
    auto grown = std::make_unique_for_overwrite<char[]>(capacity);
    if (committed_ != 0) std::memcpy(grown.get(), buffer_.get(), committed_);
    buffer_ = std::move(grown);
    capacity_ = capacity;
  }
  return buffer_.get() + committed_;
}

void FrameDecoder::commit(std::size_t n) { committed_ += n; }

void FrameDecoder::feed(std::string_view bytes) {
  if (bytes.empty()) return;  // an empty view may have a null data(): memcpy must not see it
  char* dst = prepare(bytes.size());
  std::memcpy(dst, bytes.data(), bytes.size());
  commit(bytes.size());
}

Frame FrameDecoder::fail(std::string_view detail, bool fatal) {
  Frame f;
  f.kind = Frame::Kind::error;
  f.error = fatal ? ErrorCode::message_too_large : ErrorCode::bad_json;
  f.detail = detail;
  f.fatal = fatal;
  in_frame_ = false;
  if (fatal) {
    broken_ = true;
    pos_ = scan_ = committed_;
  } else {
    skipping_ = true;
  }
  return f;
}

Frame FrameDecoder::next() {
  const char* data = buffer_.get();
  for (;;) {
    if (broken_) return {};
    if (skipping_) {
      const void* nl = scan_ < committed_ ? std::memchr(data + scan_, '\n', committed_ - scan_) : nullptr;
      if (nl == nullptr) {
        pos_ = scan_ = committed_;
        return {};
      }
      pos_ = scan_ = static_cast<std::size_t>(static_cast<const char*>(nl) - data) + 1;
      skipping_ = false;
    }
    if (!in_frame_) {
      while (pos_ < committed_) {
        const char c = data[pos_];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        ++pos_;
      }
      if (pos_ == committed_) {
        scan_ = pos_;
        return {};
      }
      if (data[pos_] != '{') {
        scan_ = pos_;
        return fail("a message must be a JSON object", false);
      }
      in_frame_ = true;
      open_.clear();
      in_string_ = false;
      escape_ = false;
      scan_ = pos_;
    }
    // Scan for the end of the object: runs of bytes that change nothing (most of a
    // line) are skipped by table lookups, and the state lives in locals meanwhile.
    std::size_t i = scan_;
    const std::size_t end = committed_;
    bool in_string = in_string_;
    bool escape = escape_;  // (both are reset when the next frame starts)
    while (i < end) {
      if (in_string) {
        if (escape) {
          escape = false;
          ++i;
          continue;
        }
        i = skip(kStopsInString, data, i, end);
        if (i == end) break;
        const char c = data[i];
        if (c == '\\') {
          escape = true;
        } else if (c == '"') {
          in_string = false;
        } else {
          // A raw newline cannot be inside a JSON string: the frame is broken.
          scan_ = i;
          return fail("unterminated string", false);
        }
        ++i;
        continue;
      }
      i = skip(kStopsOutside, data, i, end);
      if (i == end) break;
      const char c = data[i];
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        open_.push_back(c);
      } else {
        // A '}' must close a '{' and a ']' a '[': otherwise the object would never end
        // ({"a":[} waits forever), so say so now and resynchronise.
        if (open_.empty() || open_.back() != (c == '}' ? '{' : '[')) {
          scan_ = i;
          return fail("mismatched brackets", false);
        }
        open_.pop_back();
        if (open_.empty()) {
          Frame f;
          f.kind = Frame::Kind::message;
          f.text = std::string_view(data + pos_, i + 1 - pos_);
          pos_ = scan_ = i + 1;
          in_frame_ = false;
          if (f.text.size() > max_message_bytes_) {
            return fail("message exceeds the maximum size", true);
          }
          return f;
        }
      }
      ++i;
    }
    in_string_ = in_string;
    escape_ = escape;
    scan_ = i;
    if (scan_ - pos_ > max_message_bytes_) return fail("message exceeds the maximum size", true);
    return {};
  }
}

}  // namespace sd::proto
