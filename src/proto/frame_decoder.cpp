#include "proto/frame_decoder.hpp"

#include <algorithm>
#include <cstring>

namespace sd::proto {

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
    // Scan for the end of the object. Strings are skipped with memchr-like loops.
    std::size_t i = scan_;
    const std::size_t end = committed_;
    while (i < end) {
      const char c = data[i];
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
        } else if (c == '\n') {
          // A raw newline cannot be inside a JSON string: the frame is broken.
          scan_ = i;
          return fail("unterminated string", false);
        }
        ++i;
        continue;
      }
      switch (c) {
        case '"':
          in_string_ = true;
          break;
        case '{':
        case '[':
          open_.push_back(c);
          break;
        case '}':
        case ']':
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
          break;
        default:
          break;
      }
      ++i;
    }
    scan_ = i;
    if (scan_ - pos_ > max_message_bytes_) return fail("message exceeds the maximum size", true);
    return {};
  }
}

}  // namespace sd::proto
