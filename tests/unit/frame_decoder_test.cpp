#include "proto/frame_decoder.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proto/messages.hpp"

namespace sd::proto {
namespace {

/// What next() returned, copied out (a frame's text dies at the next feed()).
struct Got {
  Frame::Kind kind = Frame::Kind::incomplete;
  std::string text;
  ErrorCode error = ErrorCode::bad_json;
  bool fatal = false;

  bool operator==(const Got&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
  switch (g.kind) {
    case Frame::Kind::incomplete:
      return os << "incomplete";
    case Frame::Kind::message:
      return os << "message " << g.text;
    case Frame::Kind::error:
      return os << "error " << to_string(g.error) << (g.fatal ? " (fatal)" : "");
  }
  return os;
}

Got message(std::string_view text) { return Got{Frame::Kind::message, std::string(text), ErrorCode::bad_json, false}; }
Got bad_json() { return Got{Frame::Kind::error, {}, ErrorCode::bad_json, false}; }
Got too_large() { return Got{Frame::Kind::error, {}, ErrorCode::message_too_large, true}; }

/// Every frame next() has until it asks for more bytes. The bound stops a decoder that
/// never returns incomplete from hanging the test.
std::vector<Got> drain(FrameDecoder& decoder) {
  std::vector<Got> out;
  for (int guard = 0; guard < 100'000; ++guard) {
    const Frame f = decoder.next();
    if (f.kind == Frame::Kind::incomplete) return out;
    Got g;
    g.kind = f.kind;
    if (f.kind == Frame::Kind::message) {
      g.text = std::string(f.text);
    } else {
      g.error = f.error;
      g.fatal = f.fatal;
    }
    out.push_back(std::move(g));
  }
  ADD_FAILURE() << "next() never returned incomplete";
  return out;
}

/// Feeds `stream` cut at `cuts` (increasing offsets), draining after every piece.
std::vector<Got> decode_in_pieces(std::string_view stream, const std::vector<std::size_t>& cuts,
                                  std::size_t max_bytes = FrameDecoder::kDefaultMaxMessageBytes) {
  FrameDecoder decoder(max_bytes);
  std::vector<Got> out;
  std::size_t from = 0;
  auto feed_up_to = [&](std::size_t to) {
    decoder.feed(stream.substr(from, to - from));
    from = to;
    for (Got& g : drain(decoder)) out.push_back(std::move(g));
  };
  for (std::size_t cut : cuts) feed_up_to(cut);
  feed_up_to(stream.size());
  return out;
}

std::vector<Got> decode_all(std::string_view stream,
                            std::size_t max_bytes = FrameDecoder::kDefaultMaxMessageBytes) {
  return decode_in_pieces(stream, {}, max_bytes);
}

// ---- basic framing ----------------------------------------------------------

TEST(FrameDecoder, EmptyDecoderNeedsMoreBytes) {
  FrameDecoder decoder;
  EXPECT_EQ(decoder.next().kind, Frame::Kind::incomplete);
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, OneMessageWithItsNewlineIsOneFrameWithoutTheNewline) {
  EXPECT_EQ(decode_all("{\"type\":\"PING\"}\n"), std::vector<Got>{message(R"({"type":"PING"})")});
}

TEST(FrameDecoder, MessageWithoutNewlineIsDeliveredAtItsClosingBrace) {
  // The seed client sends json.dumps(task) with no newline and then waits.
  FrameDecoder decoder;
  decoder.feed(R"({"type":"TASK","task_type":"hash","task_data":{"text":"ejemplo"}})");
  const Frame f = decoder.next();
  ASSERT_EQ(f.kind, Frame::Kind::message);
  EXPECT_EQ(f.text, R"({"type":"TASK","task_type":"hash","task_data":{"text":"ejemplo"}})");
  EXPECT_EQ(decoder.next().kind, Frame::Kind::incomplete);
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, MessageFedOneByteAtATimeIsDecodedOnceWhenItsLastByteArrives) {
  const std::string msg = R"({"type":"TASK","task_data":{"a":[1,{"b":"}"}]}})";
  FrameDecoder decoder;
  std::vector<Got> got;
  for (std::size_t i = 0; i < msg.size(); ++i) {
    decoder.feed(msg.substr(i, 1));
    auto frames = drain(decoder);
    if (i + 1 < msg.size()) {
      EXPECT_TRUE(frames.empty()) << "a frame came out after byte " << i;
      EXPECT_EQ(decoder.buffered(), i + 1);
    }
    for (Got& g : frames) got.push_back(std::move(g));
  }
  EXPECT_EQ(got, std::vector<Got>{message(msg)});
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, ManyMessagesInOneBufferComeOutInOrder) {
  std::string stream;
  std::vector<Got> expected;
  for (int i = 0; i < 100; ++i) {
    const std::string msg = R"({"type":"TASK","task_id":"t)" + std::to_string(i) + R"("})";
    stream += msg + "\n";
    expected.push_back(message(msg));
  }
  EXPECT_EQ(decode_all(stream), expected);
}

TEST(FrameDecoder, ObjectsBackToBackWithoutNewlinesAreSeparateFrames) {
  EXPECT_EQ(decode_all(R"({"type":"PING"}{"type":"PONG"}{"type":"STATS"})"),
            (std::vector<Got>{message(R"({"type":"PING"})"), message(R"({"type":"PONG"})"),
                              message(R"({"type":"STATS"})")}));
}

TEST(FrameDecoder, WhitespaceAroundAndBetweenObjectsIsSkipped) {
  EXPECT_EQ(decode_all(" \t\r\n{\"type\":\"PING\"} \r\n\t\n\n  {\"type\":\"PONG\"}\r\n   "),
            (std::vector<Got>{message(R"({"type":"PING"})"), message(R"({"type":"PONG"})")}));
}

TEST(FrameDecoder, WhitespaceAloneIsConsumedWithoutFrames) {
  FrameDecoder decoder;
  decoder.feed(" \r\n\t \n");
  EXPECT_TRUE(drain(decoder).empty());
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, WhitespaceInsideAnObjectIncludingNewlinesBelongsToTheFrame) {
  // Pretty-printed JSON is still one object; the frame ends at the matching brace.
  const std::string msg = "{\n  \"type\": \"PING\",\n  \"x\": [1,\n 2]\n}";
  EXPECT_EQ(decode_all(msg + "\n"), std::vector<Got>{message(msg)});
}

// ---- strings ----------------------------------------------------------------

TEST(FrameDecoder, BracesAndEscapedQuotesInsideStringsDoNotEndTheFrame) {
  const std::string tricky = R"({"a":"}\"{"})";
  const std::string more = R"({"b":"[[[","c":"]]]}}}","d":"\\"})";
  EXPECT_EQ(decode_all(tricky + more + "\n"), (std::vector<Got>{message(tricky), message(more)}));
}

TEST(FrameDecoder, EscapedBackslashBeforeAQuoteEndsTheString) {
  // "x\\" is the string x\ ; the quote after the two backslashes closes it.
  const std::string msg = R"({"a":"x\\","b":"}"})";
  EXPECT_EQ(decode_all(msg), std::vector<Got>{message(msg)});
}

TEST(FrameDecoder, EscapeSplitAcrossFeedsIsRemembered) {
  FrameDecoder decoder;
  decoder.feed(R"({"a":"\)");
  EXPECT_TRUE(drain(decoder).empty());
  decoder.feed(R"("}"})");
  EXPECT_EQ(drain(decoder), std::vector<Got>{message(R"({"a":"\"}"})")});
}

TEST(FrameDecoder, NestedObjectsAndArraysEndAtTheMatchingBrace) {
  const std::string msg = R"({"a":{"b":{"c":[[],[{}],{"d":[1,2,{"e":{}}]}]}},"f":[]})";
  EXPECT_EQ(decode_all(msg + msg), (std::vector<Got>{message(msg), message(msg)}));
}

// ---- split at every offset ---------------------------------------------------

const std::string kThreeMessages =
    "{\"type\":\"TASK\",\"task_id\":\"a\",\"task_data\":{\"s\":\"}\\\"{\\\\\"}}\n"
    "{\"type\":\"PING\"}"
    "  {\"type\":\"RESULT\",\"result\":{\"sequence\":[0,1,218922995834555169026]}}\r\n";

TEST(FrameDecoder, MessageSplitAtEveryOffsetIsDecodedOnce) {
  const auto reference = decode_all(kThreeMessages);
  ASSERT_EQ(reference.size(), 3u);
  for (std::size_t cut = 0; cut <= kThreeMessages.size(); ++cut) {
    EXPECT_EQ(decode_in_pieces(kThreeMessages, {cut}), reference) << "cut at " << cut;
  }
}

TEST(FrameDecoder, StreamSplitAtEveryPairOfOffsetsGivesTheSameFrames) {
  const auto reference = decode_all(kThreeMessages);
  for (std::size_t i = 0; i <= kThreeMessages.size(); ++i) {
    for (std::size_t j = i; j <= kThreeMessages.size(); ++j) {
      const auto got = decode_in_pieces(kThreeMessages, {i, j});
      if (got != reference) {
        ADD_FAILURE() << "cuts at " << i << " and " << j;
        return;
      }
    }
  }
}

TEST(FrameDecoder, StreamWithErrorsSplitAtRandomOffsetsGivesTheSameFrames) {
  // Garbage lines and a raw newline inside a string are part of the stream too: how
  // the bytes are cut must not change which errors and frames come out.
  const std::string stream =
      "garbage line\n"
      "{\"type\":\"PING\"}\n"
      "{\"a\":\"raw\nnewline\"}\n"
      "[1,2,3]\n"
      "{\"type\":\"PONG\"}{\"x\":\"}{\"}\n"
      "  \"just a string\"  \n"
      "{\"type\":\"STATS\"}";
  const auto reference = decode_all(stream);
  ASSERT_EQ(reference,
            (std::vector<Got>{bad_json(), message(R"({"type":"PING"})"),
                              bad_json(),  // the raw newline inside the string
                              bad_json(),  // the rest of that message, on the next line
                              bad_json(),  // [1,2,3]
                              message(R"({"type":"PONG"})"), message(R"({"x":"}{"})"), bad_json(),
                              message(R"({"type":"STATS"})")}));
  std::mt19937 rng(12345);
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::size_t> cuts;
    std::size_t at = 0;
    while (true) {
      at += std::uniform_int_distribution<std::size_t>(0, 9)(rng);
      if (at >= stream.size()) break;
      cuts.push_back(at);
    }
    ASSERT_EQ(decode_in_pieces(stream, cuts), reference) << "round " << round;
  }
}

TEST(FrameDecoder, LongStreamInUnalignedChunksLosesNothing) {
  // Chunks that end mid-message while many bytes were already consumed exercise the
  // compaction of the buffer.
  std::string stream;
  std::vector<Got> expected;
  for (int i = 0; i < 3000; ++i) {
    const std::string msg = R"({"type":"TASK","task_id":"id-)" + std::to_string(i) + R"(","task_data":{"n":)" +
                            std::to_string(i * 7) + "}}";
    stream += msg;
    if (i % 3 == 0) stream += "\n";
    expected.push_back(message(msg));
  }
  for (std::size_t chunk : {1000u, 4097u, 65536u}) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = chunk; at < stream.size(); at += chunk) cuts.push_back(at);
    EXPECT_EQ(decode_in_pieces(stream, cuts), expected) << "chunks of " << chunk;
  }
}

// ---- errors and resynchronisation --------------------------------------------

TEST(FrameDecoder, NonObjectGarbageIsBadJsonAndTheMessageAfterTheNewlineIsDecoded) {
  EXPECT_EQ(decode_all("hello there\n{\"type\":\"PING\"}\n"),
            (std::vector<Got>{bad_json(), message(R"({"type":"PING"})")}));
}

TEST(FrameDecoder, BadJsonIsNotFatal) {
  FrameDecoder decoder;
  decoder.feed("nope\n");
  const Frame f = decoder.next();
  ASSERT_EQ(f.kind, Frame::Kind::error);
  EXPECT_EQ(f.error, ErrorCode::bad_json);
  EXPECT_FALSE(f.fatal);
  EXPECT_FALSE(f.detail.empty());
}

TEST(FrameDecoder, TopLevelArraysStringsAndNumbersAreBadJson) {
  EXPECT_EQ(decode_all("[{\"type\":\"PING\"}]\n\"PING\"\n42\nnull\n}\n{\"type\":\"PING\"}\n"),
            (std::vector<Got>{bad_json(), bad_json(), bad_json(), bad_json(), bad_json(),
                              message(R"({"type":"PING"})")}));
}

TEST(FrameDecoder, GarbageAfterAMessageDropsTheRestOfThatLine) {
  // Resynchronisation skips to the next newline, like beanstalkd: an object on the same
  // line after the garbage is dropped with it.
  EXPECT_EQ(decode_all("{\"type\":\"PING\"}xyz{\"type\":\"PONG\"}\n{\"type\":\"STATS\"}\n"),
            (std::vector<Got>{message(R"({"type":"PING"})"), bad_json(), message(R"({"type":"STATS"})")}));
}

TEST(FrameDecoder, RawNewlineInsideAStringIsBadJsonAndDecodingResumesAfterIt) {
  EXPECT_EQ(decode_all("{\"type\":\"TASK\",\"text\":\"line one\n{\"type\":\"PING\"}\n"),
            (std::vector<Got>{bad_json(), message(R"({"type":"PING"})")}));
}

TEST(FrameDecoder, GarbageWithoutNewlineIsDroppedAsItArrivesAndReportedOnce) {
  FrameDecoder decoder;
  decoder.feed(std::string(1 << 20, 'x'));
  EXPECT_EQ(drain(decoder), std::vector<Got>{bad_json()});
  EXPECT_EQ(decoder.buffered(), 0u);
  for (int i = 0; i < 16; ++i) {
    decoder.feed(std::string(1 << 16, 'y'));
    EXPECT_TRUE(drain(decoder).empty());
    EXPECT_EQ(decoder.buffered(), 0u);
  }
  decoder.feed("zzz\n{\"type\":\"PING\"}\n");
  EXPECT_EQ(drain(decoder), std::vector<Got>{message(R"({"type":"PING"})")});
}

TEST(FrameDecoder, MillionOpenBracketsAreRejectedWithoutBeingBuffered) {
  FrameDecoder decoder;
  decoder.feed(std::string(1'000'000, '['));
  EXPECT_EQ(drain(decoder), std::vector<Got>{bad_json()});
  EXPECT_EQ(decoder.buffered(), 0u);
  decoder.feed("\n{\"type\":\"PING\"}\n");
  EXPECT_EQ(drain(decoder), std::vector<Got>{message(R"({"type":"PING"})")});
}

TEST(FrameDecoder, MillionOpenBracketsInsideAnObjectStopAtTheSizeLimit) {
  FrameDecoder decoder(64 * 1024);
  for (int i = 0; i < 1000; ++i) {
    decoder.feed(i == 0 ? "{\"a\":" + std::string(995, '[') : std::string(1000, '['));
    auto frames = drain(decoder);
    EXPECT_LE(decoder.buffered(), 64u * 1024u + 1000u);
    if (!frames.empty()) {
      EXPECT_EQ(frames, std::vector<Got>{too_large()});
      EXPECT_EQ(decoder.buffered(), 0u);
      return;
    }
  }
  ADD_FAILURE() << "a million '[' never hit the 64 KiB limit";
}

TEST(FrameDecoder, DeeplyNestedObjectWithinTheLimitIsFramedAndDecodeRejectsIt) {
  const std::string deep = "{\"a\":" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
  const auto frames = decode_all(deep);
  ASSERT_EQ(frames, std::vector<Got>{message(deep)});
  const auto decoded = decode(frames[0].text);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  EXPECT_EQ(std::get<DecodeError>(decoded).code, ErrorCode::bad_json);
}

// ---- size limit ---------------------------------------------------------------

std::string message_of_size(std::size_t n) {
  // {"p":"xxx..."} has 8 bytes of syntax.
  return "{\"p\":\"" + std::string(n - 8, 'x') + "\"}";
}

TEST(FrameDecoder, MessageExactlyAtTheLimitIsAccepted) {
  const std::string msg = message_of_size(100);
  ASSERT_EQ(msg.size(), 100u);
  EXPECT_EQ(decode_all(msg + "\n", 100), std::vector<Got>{message(msg)});
}

TEST(FrameDecoder, MessageExactlyAtTheLimitFedByteByByteIsAccepted) {
  const std::string msg = message_of_size(100);
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < msg.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(decode_in_pieces(msg, cuts, 100), std::vector<Got>{message(msg)});
}

TEST(FrameDecoder, MessageOneByteOverTheLimitIsFatalMessageTooLarge) {
  const std::string msg = message_of_size(101);
  EXPECT_EQ(decode_all(msg + "\n{\"type\":\"PING\"}\n", 100), std::vector<Got>{too_large()});
}

TEST(FrameDecoder, IncompleteMessageOverTheLimitIsFatalBeforeItEnds) {
  FrameDecoder decoder(100);
  decoder.feed("{\"p\":\"" + std::string(94, 'x'));  // exactly 100 bytes, not yet closed
  EXPECT_TRUE(drain(decoder).empty());
  decoder.feed("x");  // 101 bytes and still open
  EXPECT_EQ(drain(decoder), std::vector<Got>{too_large()});
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, WhitespaceBeforeAMessageDoesNotCountTowardTheLimit) {
  const std::string msg = message_of_size(50);
  EXPECT_EQ(decode_all(std::string(200, '\n') + msg + std::string(200, ' '), 50), std::vector<Got>{message(msg)});
}

TEST(FrameDecoder, EachMessageIsMeasuredOnItsOwn) {
  const std::string msg = message_of_size(50);
  std::string stream;
  for (int i = 0; i < 10; ++i) stream += msg;
  EXPECT_EQ(decode_all(stream, 50), std::vector<Got>(10, message(msg)));
}

TEST(FrameDecoder, AfterAFatalErrorNothingMoreIsDecoded) {
  FrameDecoder decoder(20);
  decoder.feed(message_of_size(30) + "\n");
  EXPECT_EQ(drain(decoder), std::vector<Got>{too_large()});
  decoder.feed("{\"type\":\"PING\"}\n");
  EXPECT_TRUE(drain(decoder).empty());
  EXPECT_EQ(decoder.next().kind, Frame::Kind::incomplete);
}

TEST(FrameDecoder, DefaultLimitIsSixteenMebibytes) {
  EXPECT_EQ(FrameDecoder::kDefaultMaxMessageBytes, 16u * 1024u * 1024u);
}

// ---- bytes ---------------------------------------------------------------------

TEST(FrameDecoder, InvalidUtf8PassesFramingAndDecodeRejectsIt) {
  const std::string msg = "{\"type\":\"PING\",\"x\":\"\xff\xfe\xc0\xaf\"}";
  const auto frames = decode_all(msg + "\n");
  ASSERT_EQ(frames, std::vector<Got>{message(msg)});
  const auto decoded = decode(frames[0].text);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(decoded));
  EXPECT_EQ(std::get<DecodeError>(decoded).code, ErrorCode::bad_json);
}

TEST(FrameDecoder, NulBytesInsideAStringAreFramed) {
  const std::string msg("{\"a\":\"x\0y\"}", 11);
  EXPECT_EQ(decode_all(msg), std::vector<Got>{message(msg)});
}

TEST(FrameDecoder, BufferedCountsBytesNotYetFramed) {
  FrameDecoder decoder;
  decoder.feed("{\"type\":\"PING\"}\n{\"type\"");
  ASSERT_EQ(decoder.next().kind, Frame::Kind::message);
  EXPECT_EQ(decoder.next().kind, Frame::Kind::incomplete);
  EXPECT_EQ(decoder.buffered(), std::strlen("{\"type\""));
}

TEST(FrameDecoder, PrepareAndCommitDeliverTheSameFramesAsFeed) {
  FrameDecoder decoder;
  std::vector<Got> got;
  const std::string_view stream = kThreeMessages;
  std::size_t at = 0;
  while (at < stream.size()) {
    // Ask for more room than is used, as a socket read would.
    char* dst = decoder.prepare(64);
    const std::size_t n = std::min<std::size_t>(13, stream.size() - at);
    std::memcpy(dst, stream.data() + at, n);
    decoder.commit(n);
    at += n;
    for (Got& g : drain(decoder)) got.push_back(std::move(g));
  }
  EXPECT_EQ(got, decode_all(kThreeMessages));
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, CommittingNothingAddsNothing) {
  FrameDecoder decoder;
  decoder.feed("{\"a\":");
  (void)decoder.prepare(4096);
  decoder.commit(0);
  EXPECT_EQ(decoder.next().kind, Frame::Kind::incomplete);
  decoder.feed("1}");
  EXPECT_EQ(drain(decoder), std::vector<Got>{message(R"({"a":1})")});
}

// The buffer keeps room that prepare() made (it never shrinks); only committed bytes count.
TEST(FrameDecoder, BufferedCountsOnlyCommittedBytes) {
  FrameDecoder decoder;
  decoder.feed("{\"a\":");
  (void)decoder.prepare(4096);
  decoder.commit(0);
  EXPECT_EQ(decoder.buffered(), 5u);

  FrameDecoder dropping;
  dropping.feed(std::string(1 << 20, 'x'));
  EXPECT_EQ(drain(dropping), std::vector<Got>{bad_json()});
  dropping.feed(std::string(1 << 16, 'y'));  // still skipping to a newline
  EXPECT_TRUE(drain(dropping).empty());
  EXPECT_EQ(dropping.buffered(), 0u);
}

}  // namespace
}  // namespace sd::proto

namespace sd::proto {
namespace {

TEST(FrameDecoder, MismatchedBracketsAreAnErrorAtOnceAndTheNextLineIsRead) {
  FrameDecoder d;
  d.feed("{\"a\":[}\n{\"type\":\"PING\"}\n");
  Frame f = d.next();
  ASSERT_EQ(f.kind, Frame::Kind::error);
  EXPECT_EQ(f.error, ErrorCode::bad_json);
  EXPECT_EQ(f.detail, "mismatched brackets");
  EXPECT_FALSE(f.fatal);
  f = d.next();
  ASSERT_EQ(f.kind, Frame::Kind::message);
  EXPECT_EQ(f.text, "{\"type\":\"PING\"}");
}

TEST(FrameDecoder, BracketsInsideStringsDoNotCount) {
  FrameDecoder d;
  d.feed(R"({"a":"[}]{","b":[{"c":"]"}]})");
  Frame f = d.next();
  ASSERT_EQ(f.kind, Frame::Kind::message);
  EXPECT_EQ(f.text, R"({"a":"[}]{","b":[{"c":"]"}]})");
}

}  // namespace
}  // namespace sd::proto
