/// Micro-benchmarks of the wire protocol layer: what the server pays per message before
/// any networking. Run: build/bin/sd-micro --benchmark_filter=Proto
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>
#include <variant>

#include "proto/frame_decoder.hpp"
#include "proto/messages.hpp"

namespace {

using namespace sd::proto;

/// A TASK line as sd-bench and the seed's clients send it.
constexpr std::string_view kTaskLine =
    R"({"type":"TASK","task_id":"5f1c09ab2e31.m.123456","task_type":"reverse","task_data":{"text":"hola mundo"}})"
    "\n";
/// A RESULT line as a worker sends it.
constexpr std::string_view kResultLine =
    R"({"type":"RESULT","task_id":"5f1c09ab2e31.m.123456","status":"success","result":{"reversed":"odnum aloh"},"worker_id":"worker_1","processing_time":0.000012,"attempt":1})"
    "\n";

/// Framing of one read holding many TASK lines, the shape of a pipelined client's burst.
void BM_Proto_FrameDecoder_ManyTasks(benchmark::State& state) {
  const auto lines = static_cast<std::size_t>(state.range(0));
  std::string buffer;
  for (std::size_t i = 0; i < lines; ++i) buffer += kTaskLine;
  FrameDecoder decoder;
  std::size_t frames = 0;
  for (auto _ : state) {
    decoder.feed(buffer);
    for (Frame f = decoder.next(); f.kind == Frame::Kind::message; f = decoder.next()) {
      benchmark::DoNotOptimize(f.text.data());
      ++frames;
    }
  }
  if (frames != lines * static_cast<std::size_t>(state.iterations())) state.SkipWithError("lost frames");
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.SetBytesProcessed(static_cast<std::int64_t>(buffer.size()) * state.iterations());
}
BENCHMARK(BM_Proto_FrameDecoder_ManyTasks)->Arg(1)->Arg(256)->Arg(4096);

/// The same buffer dribbled in 7-byte reads: scanning must resume, not restart.
void BM_Proto_FrameDecoder_Dribbled(benchmark::State& state) {
  std::string buffer;
  for (int i = 0; i < 64; ++i) buffer += kTaskLine;
  FrameDecoder decoder;
  for (auto _ : state) {
    for (std::size_t pos = 0; pos < buffer.size(); pos += 7) {
      decoder.feed(std::string_view(buffer).substr(pos, 7));
      for (Frame f = decoder.next(); f.kind == Frame::Kind::message; f = decoder.next()) {
        benchmark::DoNotOptimize(f.text.data());
      }
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(buffer.size()) * state.iterations());
}
BENCHMARK(BM_Proto_FrameDecoder_Dribbled);

void decode_bench(benchmark::State& state, std::string_view line, std::size_t want_index) {
  const std::string_view frame = line.substr(0, line.size() - 1);  // without '\n'
  for (auto _ : state) {
    auto decoded = decode(frame);
    benchmark::DoNotOptimize(decoded);
    auto* env = std::get_if<Envelope>(&decoded);
    if (env == nullptr || env->message.index() != want_index) {
      state.SkipWithError("decode failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Proto_Decode_Task(benchmark::State& state) { decode_bench(state, kTaskLine, 0); }
BENCHMARK(BM_Proto_Decode_Task);

void BM_Proto_Decode_Result(benchmark::State& state) { decode_bench(state, kResultLine, 1); }
BENCHMARK(BM_Proto_Decode_Result);

void BM_Proto_Encode_Task(benchmark::State& state) {
  TaskMsg t;
  t.task_id = "5f1c09ab2e31.m.123456";
  t.task_type = "reverse";
  t.task_data = R"({"text":"hola mundo"})";
  t.attempt = 1;
  std::string out;
  for (auto _ : state) {
    out.clear();  // keeps its capacity, as a connection's output buffer does
    encode(out, t);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Proto_Encode_Task);

void BM_Proto_Encode_Result(benchmark::State& state) {
  ResultMsg r;
  r.task_id = "5f1c09ab2e31.m.123456";
  r.ok = true;
  r.result = R"({"reversed":"odnum aloh"})";
  r.worker_id = "worker_1";
  r.processing_time = 0.000012;
  std::string out;
  for (auto _ : state) {
    out.clear();
    encode(out, r);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Proto_Encode_Result);

}  // namespace
