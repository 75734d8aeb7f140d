#pragma once
/// Splits a byte stream into JSON-object frames.
///
/// Wire format (docs/protocol.md, "Framing"): JSON objects back to back, usually each
/// followed by '\n', but whitespace between objects is optional:
///
///     {"type":"PING"}\n{"type":"TASK",...}{"type":"STATS"}   <- three frames
///     ^pos_            ^frame 2 starts here
///
/// The decoder finds where an object ends by matching brackets outside strings (a '}'
/// that closes a '[' is an error at once); it does not validate the JSON otherwise
/// (proto::decode does). Scanning resumes where it stopped,
/// so input dribbled one byte at a time costs O(n), not O(n^2).
/// Resynchronisation (as beanstalkd does for over-long lines): on a frame that cannot be
/// a JSON object, the decoder reports bad_json and drops bytes up to the next newline.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "proto/error_code.hpp"

namespace sd::proto {

/// One result of FrameDecoder::next().
struct Frame {
  enum class Kind {
    incomplete,  ///< need more bytes
    message,     ///< `text` is one complete JSON object candidate
    error,       ///< `error` says why; `fatal` means the connection cannot recover
  };
  Kind kind = Kind::incomplete;
  std::string_view text;  ///< valid until the next call to feed()
  ErrorCode error = ErrorCode::bad_json;
  std::string_view detail;  ///< a human-readable reason, static storage
  bool fatal = false;
};

/// Thread-safety: none; one decoder per connection.
class FrameDecoder {
 public:
  static constexpr std::size_t kDefaultMaxMessageBytes = 16u * 1024u * 1024u;

  explicit FrameDecoder(std::size_t max_message_bytes = kDefaultMaxMessageBytes);

  /// Appends received bytes. Invalidates the text of frames returned earlier.
  void feed(std::string_view bytes);

  /// The next frame, an error, or Kind::incomplete when more bytes are needed.
  Frame next();

  /// Bytes held that do not yet form a frame.
  [[nodiscard]] std::size_t buffered() const noexcept { return committed_ - pos_; }

  /// Direct access for zero-copy reads: make room for `n` bytes at the end, read into
  /// the returned pointer, then commit() what was actually read. The room is not
  /// zeroed: asking for a large chunk costs nothing until bytes are read into it.
  char* prepare(std::size_t n);
  void commit(std::size_t n);

 private:
  void compact();
  Frame fail(std::string_view detail, bool fatal);

  /// Holds bytes [0, committed_); grows geometrically and never shrinks. Not a
  /// std::string, whose resize() would zero every byte of room that prepare() makes.
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t pos_ = 0;   ///< start of the unconsumed bytes
  std::size_t scan_ = 0;  ///< where scanning of the current frame resumes
  std::size_t committed_ = 0;  ///< bytes of buffer_ that hold data (rest is prepared space)
  std::size_t max_message_bytes_;
  std::string open_;  ///< the brackets open in the current frame, innermost last
  bool in_frame_ = false;
  bool in_string_ = false;
  bool escape_ = false;
  bool skipping_ = false;  ///< dropping bytes up to the next newline after an error
  bool broken_ = false;    ///< a fatal error happened; nothing more is decoded
};

}  // namespace sd::proto
