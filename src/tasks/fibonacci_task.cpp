#include "tasks/fibonacci_task.hpp"

#include <gmp.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "tasks/task_data.hpp"

namespace sd::tasks {
namespace {

constexpr std::int64_t kMaxN = 10000;
constexpr std::int64_t kDefaultN = 10;

// Owns one GMP integer.
class BigInt {
 public:
  explicit BigInt(unsigned long value) { mpz_init_set_ui(value_, value); }
  ~BigInt() { mpz_clear(value_); }
  BigInt(const BigInt&) = delete;
  BigInt& operator=(const BigInt&) = delete;

  mpz_ptr get() { return value_; }

 private:
  mpz_t value_;
};

// Appends `value` in decimal to `out`, writing the digits in place.
void append_decimal(std::string& out, mpz_srcptr value) {
  const std::size_t old_size = out.size();
  // mpz_sizeinbase may overshoot by one; +2 leaves room for a sign and the NUL.
  out.resize(old_size + mpz_sizeinbase(value, 10) + 2);
  mpz_get_str(out.data() + old_size, 10, value);
  out.resize(old_size + std::strlen(out.data() + old_size));
}

// Bytes of the JSON for the first n numbers: F(k) has about 0.209 * k decimal
// digits, so the digits add up to about 0.105 * n^2; a comma each and a margin.
std::size_t estimated_size(std::int64_t n) {
  const auto count = static_cast<std::size_t>(n);
  return count * count / 9 + 2 * count + 32;
}

}  // namespace

TaskOutcome run_fibonacci(const boost::json::object& data, const TaskContext& /*ctx*/) {
  // No cancellation checks: even n=10000 takes a few tens of milliseconds.
  const auto n = optional_integer(data, "n", 0, kMaxN, kDefaultN);
  if (!n) return n.failure();

  std::string result;
  result.reserve(estimated_size(*n));
  result += R"({"sequence":[)";
  BigInt current(0);  // F(k)
  BigInt next(1);     // F(k + 1)
  for (std::int64_t k = 0; k < *n; ++k) {
    if (k > 0) result += ',';
    append_decimal(result, current.get());
    mpz_add(current.get(), current.get(), next.get());  // current = F(k + 2)
    mpz_swap(current.get(), next.get());                // current = F(k + 1)
  }
  result += "]}";
  return TaskOutcome::success(std::move(result));
}

}  // namespace sd::tasks
