#include "client/format.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <string>

namespace sd::client {
namespace {

BatchReport report_of(std::size_t total, double elapsed_s) {
  BatchReport r;
  r.total = r.sent = r.completed = total;
  r.elapsed_s = elapsed_s;
  r.throughput = static_cast<double>(total) / elapsed_s;
  r.latency_ms.count = total;
  r.latency_ms.p50 = 12.3;
  r.latency_ms.p90 = 18;
  r.latency_ms.p99 = 20.1;
  r.latency_ms.max = 21;
  return r;
}

TEST(ClientFormat, SummaryStartsWithTheSeedsLines) {
  const auto lines = summary_lines(report_of(10, 2.45));
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0], "✓ 10 tareas completadas en 2.45s");
  EXPECT_EQ(lines[1], "✓ Promedio: 0.245s por tarea");
  EXPECT_EQ(lines[2], "throughput: 4 tareas/s");
  EXPECT_EQ(lines[3], "latencia p50: 12.30 ms  p99: 20.10 ms  max: 21.00 ms");
}

TEST(ClientFormat, SubMillisecondAveragesKeepSignificantDigits) {
  const auto lines = summary_lines(report_of(1000, 0.123));
  EXPECT_EQ(lines[0], "✓ 1000 tareas completadas en 0.12s");
  EXPECT_EQ(lines[1], "✓ Promedio: 0.000123s por tarea");
  EXPECT_EQ(format_seconds(6.72e-05, 3), "0.0000672");
  EXPECT_EQ(format_seconds(0.00456, 3), "0.00456");
  EXPECT_EQ(format_seconds(0, 3), "0.000");
  EXPECT_EQ(lines[2], "throughput: 8130 tareas/s");
}

TEST(ClientFormat, FailuresAreCountedByCode) {
  BatchReport r = report_of(10, 1.0);
  r.completed = 7;
  r.failed = 3;
  r.errors = {{"timeout", 2}, {"invalid_task_data", 1}};
  r.first_error = "timeout: took longer than 5ms";
  const auto lines = summary_lines(r);
  EXPECT_EQ(lines[0], "✓ 7 tareas completadas en 1.00s");
  EXPECT_EQ(lines[2], "✗ 3 tareas fallaron (invalid_task_data: 1, timeout: 2)");
  EXPECT_EQ(lines[3], "  primer error: timeout: took longer than 5ms");
}

TEST(ClientFormat, LostAndDuplicatedTasksAreReported) {
  BatchReport r = report_of(10, 1.0);
  r.completed = 8;
  r.lost = 2;
  r.duplicates = 1;
  const auto lines = summary_lines(r);
  EXPECT_EQ(lines[2], "✗ 2 tareas sin respuesta (se agotó la espera)");
  EXPECT_EQ(lines[3], "✗ 1 resultados duplicados");
  EXPECT_FALSE(r.all_ok());
}

TEST(ClientFormat, SummaryJsonHasCountsAndLatency) {
  BatchReport r = report_of(500, 0.5);
  r.errors = {{"timeout", 0}};
  const auto v = boost::json::parse(summary_json(r));
  EXPECT_EQ(v.at("total").to_number<int>(), 500);
  EXPECT_EQ(v.at("completed").to_number<int>(), 500);
  EXPECT_EQ(v.at("failed").to_number<int>(), 0);
  EXPECT_DOUBLE_EQ(v.at("latency_ms").at("p99").to_number<double>(), 20.1);
  EXPECT_DOUBLE_EQ(v.at("throughput").to_number<double>(), 1000.0);
  EXPECT_EQ(summary_json(r).find('\n'), std::string::npos);
}

TEST(ClientFormat, ProgressBarFillsInProportion) {
  EXPECT_EQ(progress_bar(0, 10, 4), "[░░░░]   0% (0/10)");
  EXPECT_EQ(progress_bar(5, 10, 4), "[██░░]  50% (5/10)");
  EXPECT_EQ(progress_bar(10, 10, 4), "[████] 100% (10/10)");
  EXPECT_EQ(progress_bar(12, 10, 4), "[████] 100% (10/10)");
  EXPECT_EQ(progress_bar(0, 0, 2), "[██] 100% (0/0)");
}

TEST(ClientFormat, ProgressLineForPipes) { EXPECT_EQ(progress_line(250, 1000), "Progreso: 250/1000 (25%)"); }

TEST(ClientFormat, ErrorTextIsCodeColonMessage) {
  proto::ResultMsg r;
  r.ok = false;
  r.error_code = proto::ErrorCode::invalid_task_data;
  r.error_message = "'n' must be an integer from 0 to 10000";
  EXPECT_EQ(error_text(r), "invalid_task_data: 'n' must be an integer from 0 to 10000");
}

}  // namespace
}  // namespace sd::client
